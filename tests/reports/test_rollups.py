"""The rates' monthly rollups (`huying.reports.rollups`): a report over folded months gives
the same figures, to the bit, as one that reads every request; a request inserted, changed or
deleted in a folded month (whatever writes it: the ORM, Core, the trigger sees it) sends that
month back to `requests` until it is folded again; and the worker's job, the CLI and a second
fold agree on which months are due.

The requests are copies of one submitted request with drawn departments, chains, urgencies,
escalation levels, facts and flags, received over four months of 2026 (in Asia/Shanghai)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, insert, select, update

from huying.reports import repository, rollups
from huying.reports.models import COUNTED, report_months, report_rollups
from huying.reports.schemas import GroupBy
from huying.reports.service import Period, month_of
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.conftest import World
from tests.reports.test_percentiles import copies, edge_value

LEVELS = [1, 2, 3]
GROUPINGS: list[GroupBy] = ["department", "category", "chain", "grid", "urgency"]


def _requests(rt: Runtime, client: TestClient, world: World, seed: int) -> None:
    """About 300 requests received from late July to early November 2026 (local time)."""
    rng = random.Random(seed)
    first = datetime.fromisoformat("2026-07-28T00:00:00+08:00")
    changes = [
        {
            "created_at": first + timedelta(minutes=rng.randrange(0, 100 * 24 * 60)),
            "lead_department_code": rng.choice(["GXJ", "RSJ", "STREET", None]),
            "urgency": rng.choice(["normal", "urgent"]),
            "chain_code": rng.choice(["display", None]),
            "grid_code": rng.choice(["440112013002001", "440112014001001", None]),
            "escalation_level": rng.choice([0, 0, 0, 1, 2, 3]),
            "state": rng.choice(["dispatched", "handling", "closed", "closed"]),
            "overdue": rng.random() < 0.2,
            "sign_on_time": rng.choice([None, True, False]),
            "first_reply_on_time": rng.choice([None, True, False]),
            "rating": rng.choice([None, "very_satisfied", "basically_satisfied", "dissatisfied"]),
            "resolved": rng.choice([None, True, False]),
            "enterprise_resolved": rng.choice([None, True, False]),
            "return_count": rng.choice([0, 0, 1]),
            "reopen_count": rng.choice([0, 0, 1]),
            "sign_working_seconds": edge_value(rng, "sign"),
            "first_reply_working_seconds": edge_value(rng, "reply"),
        }
        for _ in range(300)
    ]
    copies(rt, client, world, changes)


SPANS = {
    "the four months whole": ("2026-07-01", "2026-11-01"),
    "from inside July to inside October": ("2026-07-30", "2026-10-17"),
    "September alone": ("2026-09-01", "2026-10-01"),
    "a fortnight": ("2026-08-10", "2026-08-24"),
}


def _span(name: str) -> tuple[datetime, datetime]:
    a, b = SPANS[name]
    return (
        datetime.fromisoformat(f"{a}T00:00:00+08:00"),
        datetime.fromisoformat(f"{b}T00:00:00+08:00"),
    )


def _report(
    rt: Runtime,
    span: tuple[datetime, datetime],
    group_by: GroupBy,
    *,
    scope: frozenset[str] | None = None,
    live: bool = False,
    grid_len: int = 9,
) -> list[dict[str, Any]]:
    """The rates' rows; with `live`, every folded month forgotten for this call only (the
    report reads every request), rolled back after."""
    with rt.sessions() as s, s.begin() as tx:
        if live:
            s.execute(delete(report_months))
        rows = repository.rates(
            s,
            start=span[0],
            end=span[1],
            group_by=group_by,
            grid_len=grid_len,
            escalation_levels=LEVELS,
            scope=scope,
        )
        tx.rollback()
    return sorted(rows, key=lambda m: (m["key"] is None, m["key"] or ""))


def _months(rt: Runtime) -> dict[datetime, bool]:
    """Folded month (its start, local) → dirty."""
    with rt.transaction() as s:
        return {
            a.astimezone(rt.calendar.tz): dirty
            for a, dirty in s.execute(select(report_months.c.starts_at, report_months.c.dirty))
        }


def _local(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T00:00:00+08:00")


@pytest.fixture
def folded(rt: Runtime, client: TestClient, world: World) -> Iterator[Runtime]:
    """The requests, and every month that ended by the clock's now folded: July to October
    (the clock stands on 2026-11-18)."""
    _requests(rt, client, world, seed=11)
    assert rollups.fold_due(rt) == 4
    yield rt


def test_the_counted_columns_are_the_conditions() -> None:
    """A condition added to the rates needs its column in the rollups (and a migration)."""
    names = set(repository.conditions(Request, []))
    assert set(COUNTED) == names
    assert set(COUNTED) <= {c.name for c in report_rollups.c}


@pytest.mark.parametrize("span", list(SPANS))
def test_a_report_over_folded_months_is_the_report_over_the_requests(
    folded: Runtime, span: str
) -> None:
    period = _span(span)
    for group_by in GROUPINGS:
        assert _report(folded, period, group_by) == _report(folded, period, group_by, live=True)
    street = frozenset({"STREET", "GXJ"})
    assert _report(folded, period, "category", scope=street) == _report(
        folded, period, "category", scope=street, live=True
    )
    # a grid prefix shorter than the folded one sums the rows, a longer one reads requests
    for grid_len in (6, 12):
        assert _report(folded, period, "grid", grid_len=grid_len) == _report(
            folded, period, "grid", grid_len=grid_len, live=True
        )


def test_the_folded_rows_are_what_the_report_reads(folded: Runtime) -> None:
    """The four months whole are read from the rollups alone: the requests' figures made
    wrong behind the trigger's back show in the report (and only there)."""
    period = _span("the four months whole")
    before = _report(folded, period, "urgency")
    with folded.db.begin() as conn:  # the rows alone, as if the requests were other
        conn.execute(update(report_rollups).values(received=report_rollups.c.received * 2))
    doubled = _report(folded, period, "urgency")
    assert [m["received"] for m in doubled] == [2 * m["received"] for m in before]
    assert _report(folded, period, "urgency", live=True) == before


def test_a_change_to_a_folded_months_request_sends_it_back_to_the_requests(
    folded: Runtime,
) -> None:
    period = _span("the four months whole")
    months = _months(folded)
    september = _local("2026-09-01")
    assert months[september] is False and months[_local("2026-10-01")] is False
    with folded.transaction() as s:
        one = s.scalars(
            select(Request)
            .where(Request.created_at >= september, Request.created_at < _local("2026-10-01"))
            .limit(1)
        ).one()
        # through the ORM's unit of work
        one.rating = "dissatisfied" if one.rating != "dissatisfied" else "satisfied"
        one.escalation_level = 3
    dirty = {m for m, d in _months(folded).items() if d}
    assert dirty == {september}
    for group_by in GROUPINGS:
        assert _report(folded, period, group_by) == _report(folded, period, group_by, live=True)

    assert rollups.fold_due(folded) == 1  # September again, and only it
    assert not any(_months(folded).values())
    assert _report(folded, period, "department") == _report(folded, period, "department", live=True)


def test_an_insert_and_a_delete_in_a_folded_month_mark_it_too(folded: Runtime) -> None:
    period = _span("the four months whole")
    august = _local("2026-08-01")
    with folded.db.begin() as conn:  # Core, no ORM: the trigger sees every write
        victim = conn.scalar(
            select(func.min(Request.id)).where(
                Request.created_at >= august, Request.created_at < _local("2026-09-01")
            )
        )
        conn.execute(delete(Request).where(Request.id == victim))
    assert {m for m, d in _months(folded).items() if d} == {august}
    assert _report(folded, period, "chain") == _report(folded, period, "chain", live=True)
    assert rollups.fold_due(folded) == 1

    october = _local("2026-10-01")
    with folded.db.begin() as conn:
        row = dict(
            conn.execute(
                select(Request.__table__)
                .where(Request.created_at >= october, Request.created_at < _local("2026-11-01"))
                .order_by(Request.id)
                .limit(1)
            )
            .mappings()
            .one()
        )
        unique = ("id", "number", "receipt_token", "external_id", "idempotency_key")
        conn.execute(
            insert(Request).values(
                {k: v for k, v in row.items() if k not in unique}
                | {"idempotency_scope": None, "idempotency_hash": None}
            )
        )
    assert {m for m, d in _months(folded).items() if d} == {october}
    assert _report(folded, period, "grid") == _report(folded, period, "grid", live=True)


def test_only_ended_months_are_folded_and_each_once(
    rt: Runtime, client: TestClient, world: World
) -> None:
    """The clock stands on 2026-11-18: July to October are folded, not November, and a
    second run finds nothing to do. No request at all: nothing is due."""
    with rt.db.connect() as conn:
        assert rollups.months_to_fold(conn, now=rt.now(), tz=rt.calendar.tz) == []
    _requests(rt, client, world, seed=3)
    with rt.db.connect() as conn:
        due = rollups.months_to_fold(conn, now=rt.now(), tz=rt.calendar.tz)
    this = month_of(moment=rt.now(), tz=rt.calendar.tz)
    assert due[0] == month_of(moment=_local("2026-07-15"), tz=rt.calendar.tz)
    assert due[-1].end == this.start
    assert all(isinstance(m, Period) and m.start < this.start for m in due)
    assert rollups.fold_due(rt) == len(due)
    assert rollups.fold_due(rt) == 0
    assert set(_months(rt)) == {m.start for m in due}
    # a second fold of a clean month (two workers) does nothing
    assert rollups.fold(rt.db, due[0], now=rt.now()) is False


def test_a_fold_waits_for_the_writes_in_flight(folded: Runtime) -> None:
    """September is dirty; a transaction changes one of its requests and has not committed
    (the trigger finds the month dirty already, so it marks nothing). A fold of September
    waits for it on the lock its trigger took, then reads its change: the month comes out
    clean and right. Without the wait, the fold would read September without the change and
    call it clean. PostgreSQL: on SQLite a fold waits for the one writer anyway."""
    if folded.db.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    september = month_of(moment=_local("2026-09-15"), tz=folded.calendar.tz)
    in_september = (
        Request.created_at >= september.start,
        Request.created_at < september.end,
    )
    with folded.db.begin() as conn:
        first, second = conn.scalars(
            select(Request.id).where(*in_september).order_by(Request.id).limit(2)
        ).all()
        conn.execute(update(Request).where(Request.id == first).values(escalation_level=3))
    assert _months(folded)[september.start] is True

    done: dict[str, bool] = {}
    with folded.db.connect() as writer:
        with writer.begin():
            writer.execute(
                update(Request)
                .where(Request.id == second)
                .values(rating="very_dissatisfied", state="closed", escalation_level=2)
            )

            def fold() -> None:
                done["folded"] = rollups.fold(folded.db, september, now=folded.now())

            thread = threading.Thread(target=fold)
            thread.start()
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database() AND query LIKE 'LOCK TABLE report_months%%'"
            )
            with folded.db.connect() as watcher:
                for _ in range(2000):  # the fold reaches its lock and waits there
                    seen = watcher.exec_driver_sql(waiting).scalar()
                    watcher.rollback()  # the activity is read once per transaction
                    if seen:
                        break
                    time.sleep(0.005)
                else:
                    raise AssertionError("the fold did not wait for the write in flight")
            assert thread.is_alive()
        thread.join(timeout=30)  # the writer committed: the fold goes on
    assert done == {"folded": True}
    assert _months(folded)[september.start] is False
    period = _span("the four months whole")
    for group_by in GROUPINGS:
        assert _report(folded, period, group_by) == _report(folded, period, group_by, live=True)


def test_a_write_between_the_mark_and_the_grouping_leaves_the_month_due(
    folded: Runtime,
) -> None:
    """A fold marks September clean (step 1); a request of September changes and commits
    before the fold groups it (step 2): the trigger marks the month dirty again, the fold
    writes nothing and says so, the report reads September from `requests`, and the next
    run folds it."""
    september = month_of(moment=_local("2026-09-15"), tz=folded.calendar.tz)
    with folded.db.begin() as conn:
        conn.execute(update(report_months).values(dirty=True))  # all four due again
    assert rollups._mark(folded.db, september) is True
    with folded.transaction() as s:
        one = s.scalars(
            select(Request)
            .where(Request.created_at >= september.start, Request.created_at < september.end)
            .order_by(Request.id)
            .limit(1)
        ).one()
        one.state, one.rating = "closed", "very_dissatisfied"
    assert rollups._group(folded.db, september, now=folded.now()) is False
    assert _months(folded)[september.start] is True
    period = _span("the four months whole")
    assert _report(folded, period, "department") == _report(folded, period, "department", live=True)
    assert rollups.fold_due(folded) == 4
    assert not any(_months(folded).values())
    assert _report(folded, period, "department") == _report(folded, period, "department", live=True)
