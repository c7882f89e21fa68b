"""The rates' pass one kept ahead of the report, a month at a time (`report_rollups`).

Over a year, pass one read every request of the year and tested each against twenty
conditions: about 4× a bare `GROUP BY` count of them, whatever the plan (BENCHMARKS.md,
"Reports"). A month that has ended is folded instead: its requests grouped once as pass one
groups them (the group key, each fact's histogram bucket), with the lead department beside
the key (a scope keeps its departments' rows) and the escalation level (the ladder's levels
are settings, read when the report runs), for each grouping. A report sums the rows of the
clean months its period covers whole and reads the rest of the period from `requests`
(`huying.reports.repository.rates`): the same figures to the bit, from a few thousand rows a
month instead of every request. The 90th percentiles still read their values from
`requests`, through the facts' indexes, as few as their ranks need.

Kept exact by the database: a trigger on `requests` (migration 20261208) marks the month of
every request inserted, changed or deleted `dirty`, whatever wrote it (the API, the worker's
batches, a back-fill, hand-written SQL); a dirty month is read from `requests` until it is
folded again. The worker folds, every `FOLD_EVERY_SECONDS`, each month that has ended and is
dirty or not yet folded (`fold_due`); `huying reports fold` does the same at once.

A fold and a write cannot cross. Every write to `requests` takes the table lock of
`report_months` through the trigger (an UPDATE takes it even when no row matches). A fold
first takes a lock that conflicts with it (SHARE ROW EXCLUSIVE) just long enough to wait for
the writes in flight and mark the month clean, then groups the month in a transaction of its
own (`fold`): a write that came after the mark marks the month dirty again, and the fold
leaves it due. So writes wait only for the writes in flight before a fold, never for its
grouping (1–2 s for a month of 80,000 requests on PostgreSQL; the fold gives up after
`LOCK_WAIT` rather than queue writes behind a long transaction), but writes to a request of
the month being folded, which wait for it to end. On SQLite a fold is two write
transactions like any other.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    Integer,
    and_,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from huying.db import UTCDateTime, unbounded
from huying.errors import Unavailable
from huying.reports.models import COUNTED, FOLDED_GRID_LEN, report_months, report_rollups
from huying.reports.repository import TIMES, conditions, fact_bucket, group_key
from huying.reports.schemas import GroupBy
from huying.reports.service import Period, month_of
from huying.requests.models import Request
from huying.runtime import Runtime

log = logging.getLogger("huying.reports")

# How often the worker looks for a month to fold: a month left dirty is read from `requests`
# meanwhile, so this bounds how long a report runs slower, never what it says.
FOLD_EVERY_SECONDS = 3600.0
# How long a fold waits for the writes in flight before it gives up until its next run.
LOCK_WAIT = "2s"
GROUPINGS: tuple[GroupBy, ...] = get_args(GroupBy)


def months_to_fold(conn: Connection, *, now: datetime, tz: object) -> list[Period]:
    """The months that have ended by `now` (in the calendar's zone `tz`), from the one of the
    first request received, that are dirty or not (or not wholly) folded."""
    first = conn.scalar(select(func.min(Request.created_at)))
    if first is None:
        return []
    m = report_months.c
    clean = set(conn.scalars(select(m.starts_at).where(~m.dirty, m.folded_at.is_not(None))))
    this = month_of(moment=now, tz=tz)
    month = month_of(moment=first, tz=tz)
    due = []
    while month.start < this.start:
        if month.start not in clean:
            due.append(month)
        month = month_of(moment=month.end, tz=tz)
    return due


def _folded(grouping: GroupBy, month: Period) -> CompoundSelect[*tuple[Any, ...]]:
    """The month's requests as `report_rollups` rows for `grouping`: grouped once by lead
    department, key, escalation level and both facts' buckets (`fine`), then summed into a
    row of counts per department, key and level (no bucket), and a row per department, key
    and bucket of each fact (its requests and their seconds, every count 0). Apart, the
    histograms take (1 + buckets of one + buckets of the other) rows where together they took
    the product."""
    # the key as a report groups it; the grid by its folded prefix (a report cuts its own)
    key = group_key(grouping, FOLDED_GRID_LEN)
    counts = conditions(Request, [])
    buckets = {fact: fact_bucket(fact) for fact in TIMES}
    fine = (
        select(
            Request.lead_department_code.label("department"),
            key.label("key"),
            Request.escalation_level.label("escalation_level"),
            *[b.label(f"{fact}_bucket") for fact, b in buckets.items()],
            func.count().label("received"),
            *[func.count().filter(counts[name]).label(name) for name in COUNTED],
            *[func.sum(getattr(Request, col)).label(f"{f}_sum") for f, col in TIMES.items()],
        )
        .where(Request.created_at >= month.start, Request.created_at < month.end)
        .group_by(Request.lead_department_code, key, Request.escalation_level, *buckets.values())
        .cte("fine")
    )
    head: list[ColumnElement[Any]] = [
        literal(month.start, UTCDateTime()).label("starts_at"),
        literal(grouping).label("grouping"),
        fine.c.department,
        fine.c.key,
    ]
    zero = literal(0)
    # typed, as the first branch of a UNION names each column's type on PostgreSQL
    no_bucket, no_sum = cast(null(), Integer), cast(null(), BigInteger)
    by_group = select(
        *head,
        *[no_bucket.label(f"{fact}_bucket") for fact in TIMES],
        fine.c.escalation_level,
        func.sum(fine.c.received).label("received"),
        *[func.sum(fine.c[name]).label(name) for name in COUNTED],
        *[no_sum.label(f"{fact}_sum") for fact in TIMES],
        *[zero.label(f"{fact}_n") for fact in TIMES],
    ).group_by(fine.c.department, fine.c.key, fine.c.escalation_level)
    histograms = [
        select(
            *head,
            *[
                (fine.c[f"{f}_bucket"] if f == fact else no_bucket).label(f"{f}_bucket")
                for f in TIMES
            ],
            zero.label("escalation_level"),
            zero.label("received"),
            *[zero.label(name) for name in COUNTED],
            *[
                (func.sum(fine.c[f"{f}_sum"]) if f == fact else no_sum).label(f"{f}_sum")
                for f in TIMES
            ],
            *[(func.sum(fine.c.received) if f == fact else zero).label(f"{f}_n") for f in TIMES],
        )
        .where(fine.c[f"{fact}_bucket"].is_not(None))
        .group_by(fine.c.department, fine.c.key, fine.c[f"{fact}_bucket"])
        for fact in TIMES
    ]
    return union_all(by_group, *histograms)


def _folded_clean(month: Period) -> ColumnElement[bool]:
    m = report_months.c
    return and_(m.starts_at == month.start, ~m.dirty, m.folded_at.is_not(None))


def fold(db: Engine, month: Period, *, now: datetime) -> bool:
    """Fold one month, in two transactions; False when it was folded and clean already, or
    changed while it was folded (it stays due).

    1. The mark: wait for the writes to `requests` in flight (the table lock, see the module's
       docstring), then mark the month clean but not folded (`folded_at` NULL: no report
       reads its rows) and commit at once. From here every write to one of its requests
       marks it dirty; every write that did not has committed.
    2. The rows: lock the month's mark (a write to one of its requests waits for this
       transaction, then marks it dirty), and if it is still clean, group its requests as
       they stand (every write of step 1's time included) into new rows and set
       `folded_at`. Writes to other months never wait for it."""
    return _mark(db, month) and _group(db, month, now=now)


def _mark(db: Engine, month: Period) -> bool:
    """Step 1 of `fold`: False if the month is folded and clean already."""
    with db.begin() as conn:
        if conn.scalar(select(func.count()).where(_folded_clean(month))):
            return False
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            conn.exec_driver_sql("LOCK TABLE report_months IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(delete(report_months).where(report_months.c.starts_at == month.start))
        conn.execute(
            insert(report_months).values(
                starts_at=month.start, ends_at=month.end, dirty=False, folded_at=None
            )
        )
    return True


def _group(db: Engine, month: Period, *, now: datetime) -> bool:
    """Step 2 of `fold`: False if the month changed since step 1 (or another fold did it)."""
    with db.begin() as conn:
        unbounded(conn)  # a month of a large district: seconds, not the API's bound
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")  # hashed in memory, as the rates
            conn.exec_driver_sql("SET LOCAL jit = off")
        mark = conn.execute(
            select(report_months.c.dirty, report_months.c.folded_at)
            .where(report_months.c.starts_at == month.start)
            .with_for_update()
        ).first()
        if mark is None or mark.dirty or mark.folded_at is not None:
            return False  # changed since step 1, or another worker's fold came first
        conn.execute(delete(report_rollups).where(report_rollups.c.starts_at == month.start))
        columns = [c.name for c in report_rollups.c if c.name != "id"]
        for grouping in GROUPINGS:
            conn.execute(insert(report_rollups).from_select(columns, _folded(grouping, month)))
        conn.execute(
            update(report_months)
            .where(report_months.c.starts_at == month.start)
            .values(folded_at=now)
        )
    return True


def fold_due(rt: Runtime, months: list[Period] | None = None) -> int:
    """Fold `months` (by default every month `months_to_fold` finds), each in transactions of
    its own; returns how many were folded. A month that cannot be folded now (the database is away, the writes in
    flight held the lock too long) is left for the next run: its reports read `requests`."""
    now = rt.now()
    folded = 0
    try:
        if months is None:
            with rt.db.connect() as conn:
                months = months_to_fold(conn, now=now, tz=rt.calendar.tz)
        for month in months:
            folded += fold(rt.db, month, now=now)
    except (SQLAlchemyError, Unavailable) as exc:
        log.warning("report months not folded, retrying later: %s", exc.__class__.__name__)
    if folded:
        log.info("folded %d month(s) of requests for the reports", folded)
    return folded
