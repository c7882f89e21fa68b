"""Data for bench/deadlines.py: N requests, each with a running sign deadline due in the future
(and its co-department's assist task with the task's own deadline, as a submit writes them).

Fast and realistic. One real submit (`huying.requests.service.submit`, in process, on the
tests' directory) writes the template: the request (routed to GXJ with STREET co-handling, state
`dispatched`), its co-department row, STREET's assist task, 2 timeline rows, its running
`sign` deadline, the task's own deadline and its `request.dispatched` event. Its rows are read back (every table's row count is compared before
and after, so nothing the submit wrote is missed) and the template request is deleted. Then N
copies go in with explicit ids, in chunks: COPY (psycopg) on PostgreSQL, Core executemany on
SQLite. The sequences are moved past the new ids at the end.

Each copy differs where a real one would: id, number, title, event uid and payload, and the
times. With `now` the moment of generation, a copy was submitted up to 1 hour before `now`
(r ∈ [0, 1 h)), its deadline is a calendar limit of h hours (h ∈ [3, 720], "h hours"), so its
due instant is created + h and its warning (warning_at = 0.75) created + 0.75 h ≥ now + 1.25 h.
`next_fire_at` = the warning: every row is running, none is due for at least 1.25 hours, and the
instants are spread over the next 30 days. Events are written already fanned out
(`fanned_out_at` set), as in a system whose outbox is keeping up.

`make_due` then turns k of those deadlines (spread evenly over the table, not adjacent) into
ones that fall due at one instant T with their warning already fired: warned_at = warn_at =
T − 1 h, a `warn` timeline row (seq 3) and the request's version bumped, as the worker would
have left them, and next_fire_at = due_at = T. At T each fires `overdue` and, because the first
rung of the default escalation ladder is "after 0 seconds", `escalate` level 1 at once: 2
steps per deadline.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import _common  # noqa: F401  (first: this tree's src ahead of an editable install's)
from sqlalchemy import Engine, Table, delete, func, insert, select, update

import huying.models  # noqa: F401  (every table into Base.metadata)
from huying.db import Base
from huying.runtime import Runtime

TABLES = (
    "requests",
    "request_co_departments",
    "request_tasks",
    "timeline_entries",
    "deadlines",
    "events",
)
JSON_COLUMNS = {
    ("requests", "contact"),
    ("requests", "pending_extension"),
    ("timeline_entries", "data"),
    ("events", "data"),
}


def table(name: str) -> Table:
    return Base.metadata.tables[name]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }


@dataclass
class Template:
    rows: dict[str, list[dict[str, Any]]]  # table -> the rows one submit wrote


def capture_template(rt: Runtime, world_token: str) -> Template:
    """One real submit, read back row by row, then deleted."""
    from _common import submit_body

    from huying.auth.service import authenticate
    from huying.requests import service
    from huying.requests.schemas import SubmitIn

    before = counts(rt.db)
    with rt.transaction() as s:
        principal = authenticate(session=s, token=world_token, now=rt.now())
        req, _ = service.submit(
            rt=rt,
            session=s,
            principal=principal,
            body=SubmitIn.model_validate(submit_body()),
            idempotency_key=None,
        )
        rid = req.id
    written = {k: v - before.get(k, 0) for k, v in counts(rt.db).items() if v != before.get(k, 0)}
    rows: dict[str, list[dict[str, Any]]] = {}
    with rt.db.connect() as conn:
        for name in TABLES:
            t = table(name)
            col = t.c.id if name == "requests" else t.c.request_id
            order = [t.c[c.name] for c in t.primary_key.columns]
            rows[name] = [
                dict(r._mapping) for r in conn.execute(select(t).where(col == rid).order_by(*order))
            ]
    got = {k: len(v) for k, v in rows.items() if v}
    if got != written:
        raise SystemExit(f"the template submit wrote {written}, the capture found {got}")
    sign = [d for d in rows["deadlines"] if d["kind"] == "sign"]
    if len(sign) != 1 or sign[0]["status"] != "running" or sign[0]["next_fire_at"] is None:
        raise SystemExit(
            f"the template submit did not start exactly one running sign deadline: {sign}"
        )
    if len(rows["deadlines"]) != 1 + len(rows["request_tasks"]):
        raise SystemExit(f"expected a sign deadline and one per task: {rows['deadlines']}")
    with rt.db.begin() as conn:
        conn.execute(delete(table("requests")).where(table("requests").c.id == rid))
    return Template(rows)


def _copies(
    tpl: Template, ids: Sequence[int], now: datetime, rng: random.Random, local_day: str
) -> dict[str, list[dict[str, Any]]]:
    """The rows of len(ids) requests, one per id, as the template with their own values."""
    req0 = tpl.rows["requests"][0]
    co0 = tpl.rows["request_co_departments"]
    tasks0 = tpl.rows["request_tasks"]
    tl0 = tpl.rows["timeline_entries"]
    d0 = tpl.rows["deadlines"]
    ev0 = tpl.rows["events"]
    ntl, nev, nd, nt = len(tl0), len(ev0), len(d0), max(1, len(tasks0))
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in TABLES}
    tag = uuid.uuid4().hex[:12]
    for rid in ids:
        created = now - timedelta(seconds=rng.random() * 3600)
        shift = created - req0["created_at"]  # a task's deadline keeps its own length
        hours = rng.randint(3, 720)
        due = created + timedelta(hours=hours)
        warn = created + timedelta(hours=hours * 0.75)
        number = f"HY-{local_day}-{rid:07d}"
        out["requests"].append(
            {
                **req0,
                "id": rid,
                "number": number,
                "title": f"{req0['title']} {rid}",
                "receipt_token": f"{tag}{rid:020x}" if req0.get("receipt_token") else None,
                "created_at": created,
                "updated_at": created,
            }
        )
        for c in co0:
            out["request_co_departments"].append({**c, "request_id": rid})
        task_ids = {}
        for k, t in enumerate(tasks0):
            task_ids[t["id"]] = rid * nt + k
            out["request_tasks"].append(
                {
                    **t,
                    "id": rid * nt + k,
                    "request_id": rid,
                    "created_at": created,
                    "received_at": created,
                }
            )
        for k, t in enumerate(tl0):
            out["timeline_entries"].append(
                {**t, "id": rid * ntl + k, "request_id": rid, "at": created}
            )
        for k, d in enumerate(d0):
            if d["kind"] == "sign":
                times = {
                    "duration": f"{hours} hours",
                    "started_at": created,
                    "due_at": due,
                    "warn_at": warn,
                    "next_fire_at": warn,
                }
            else:  # a task's own deadline: the template's, moved with the request
                times = {
                    name: d[name] + shift if d[name] is not None else None
                    for name in ("started_at", "due_at", "warn_at", "next_fire_at")
                }
            out["deadlines"].append(
                {
                    **d,
                    **times,
                    "id": rid * nd + k,
                    "request_id": rid,
                    "task_id": task_ids.get(d["task_id"]) if d["task_id"] else None,
                }
            )
        for k, e in enumerate(ev0):
            data = dict(e["data"])
            data["request"] = {**data.get("request", {}), "id": rid, "number": number}
            out["events"].append(
                {
                    **e,
                    "id": rid * nev + k,
                    "uid": f"msg_{tag}{rid * nev + k:020x}",
                    "request_id": rid,
                    "occurred_at": created,
                    "data": data,
                    "fanned_out_at": created,
                }
            )
    return out


def _write_pg(rt: Runtime, rows: dict[str, list[dict[str, Any]]]) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    raw = rt.db.raw_connection()
    try:
        # the psycopg connection itself, for its COPY (the DB-API protocol has none)
        pg = cast("psycopg.Connection[Any]", raw.driver_connection)
        with pg.cursor() as cur:
            for name in TABLES:
                data = rows[name]
                if not data:
                    continue
                cols = [c.name for c in table(name).columns]
                jsonish = [i for i, c in enumerate(cols) if (name, c) in JSON_COLUMNS]
                quoted = ", ".join(f'"{c}"' for c in cols)  # `limit` is a reserved word
                with cur.copy(f'COPY "{name}" ({quoted}) FROM STDIN') as cp:
                    for r in data:
                        values = [r.get(c) for c in cols]
                        for i in jsonish:
                            if values[i] is not None:
                                values[i] = Jsonb(values[i])
                        cp.write_row(values)
        raw.commit()
    finally:
        raw.close()


def _write_sqlite(rt: Runtime, rows: dict[str, list[dict[str, Any]]]) -> None:
    with rt.db.begin() as conn:
        for name in TABLES:
            if rows[name]:
                conn.execute(insert(table(name)), rows[name])


def _chunks(start: int, count: int, size: int) -> Iterator[list[int]]:
    for lo in range(start, start + count, size):
        yield list(range(lo, min(lo + size, start + count)))


def fill(
    rt: Runtime,
    tpl: Template,
    *,
    count: int,
    now: datetime,
    chunk: int = 20_000,
    seed: int = 1,
    progress: bool = False,
) -> tuple[int, int, float]:
    """Add `count` requests with one running deadline each, ids after the largest present.
    Returns (first id, last id, seconds)."""
    with rt.db.connect() as conn:
        start = int(conn.scalar(select(func.max(table("requests").c.id))) or 0) + 1
        # timeline/event ids are rid * k + j: keep them above what is there already
        for name in ("timeline_entries", "events", "deadlines", "request_tasks"):
            top = int(conn.scalar(select(func.max(table(name).c.id))) or 0)
            per = max(1, len(tpl.rows[name]))
            start = max(start, top // per + 1)
    rng = random.Random(seed * 1_000_003 + start)
    local_day = f"{rt.local_date(now):%Y%m%d}"
    write = _write_pg if rt.db.dialect.name == "postgresql" else _write_sqlite
    t0 = time.perf_counter()
    done = 0
    for ids in _chunks(start, count, chunk):
        write(rt, _copies(tpl, ids, now, rng, local_day))
        done += len(ids)
        if progress and (done // chunk) % 10 == 0:
            rate = done / (time.perf_counter() - t0)
            print(f"  … {done:,}/{count:,} requests ({rate:,.0f}/s)", flush=True)
    if rt.db.dialect.name == "postgresql":
        with rt.db.begin() as conn:
            for name in TABLES:
                t = table(name)
                if "id" in t.c and len(t.primary_key.columns) == 1:
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f'(SELECT coalesce(max(id), 1) FROM "{name}"))'
                    )
    return start, start + count - 1, time.perf_counter() - t0


def analyze(rt: Runtime) -> None:
    """What autovacuum would have done by the time a million rows are there."""
    if rt.db.dialect.name == "postgresql":
        with rt.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
    else:
        with rt.db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()


def checkpoint(rt: Runtime) -> None:
    """PostgreSQL: a checkpoint now, before the rows are made due. The fill of a million
    requests (and each round before) leaves gigabytes of WAL behind, and the checkpoints it
    calls for (`max_wal_size`) otherwise land at random in the next measured burst: on
    2026-12-03 one burst took 7.0 s, its neighbours 3.8 and 5.0 s, with three checkpoints
    writing and syncing meanwhile. Made due after it, the rows' pages are logged whole
    (full-page writes) by `make_due`, not by the burst."""
    if rt.db.dialect.name == "postgresql":
        with rt.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("CHECKPOINT")


def due_ids(first: int, last: int, k: int, offset: int = 0) -> list[int]:
    """k ids spread evenly over [first, last]; a different `offset` gives a disjoint set."""
    step = max(1, (last - first + 1) // k)
    if offset >= step:
        raise SystemExit(f"only {step} disjoint sets of {k} in {last - first + 1} rows")
    ids = [first + offset + j * step for j in range(k)]
    if ids[-1] > last:
        raise SystemExit(f"{k} due deadlines do not fit in {last - first + 1} rows")
    return ids


def make_due(rt: Runtime, ids: Sequence[int], at: datetime) -> float:
    """The sign deadlines of requests `ids` fall due at `at`, warning already fired. Returns
    seconds."""
    d, r, tl = table("deadlines"), table("requests"), table("timeline_entries")
    warned = at - timedelta(hours=1)
    t0 = time.perf_counter()
    with rt.db.begin() as conn:
        template = (
            conn.execute(
                select(tl).where(tl.c.request_id == ids[0]).order_by(tl.c.seq.desc()).limit(1)
            )
            .one()
            ._asdict()
        )
        top = int(conn.scalar(select(func.max(tl.c.id))) or 0)
        for lo in range(0, len(ids), 5000):
            part = list(ids[lo : lo + 5000])
            conn.execute(
                update(d)
                .where(d.c.request_id.in_(part), d.c.kind == "sign")
                .values(
                    started_at=at - timedelta(hours=4),
                    due_at=at,
                    warn_at=warned,
                    warned_at=warned,
                    next_fire_at=at,
                    status="running",
                    duration="4 hours",
                    version=d.c.version + 1,
                )
            )
            conn.execute(
                update(r)
                .where(r.c.id.in_(part))
                .values(
                    timeline_seq=r.c.timeline_seq + 1,
                    version=r.c.version + 1,
                    updated_at=warned,
                    created_at=at - timedelta(hours=4),
                )
            )
            conn.execute(
                insert(tl),
                [
                    {
                        **template,
                        "id": top + lo + j + 1,
                        "request_id": rid,
                        "seq": template["seq"] + 1,
                        "action": "warn",
                        "from_state": template["to_state"],
                        "actor": "system",
                        "role": "system",
                        "at": warned,
                        "note": None,
                        "data": {"deadline": "sign", "due_at": at.isoformat()},
                    }
                    for j, rid in enumerate(part)
                ],
            )
        if rt.db.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('timeline_entries', 'id'), "
                "(SELECT max(id) FROM timeline_entries))"
            )
    return time.perf_counter() - t0


def remaining_due(rt: Runtime, at: datetime) -> int:
    """Deadlines whose next_fire_at is at or before `at`: 0 once all have fired."""
    d = table("deadlines")
    with rt.db.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(d)
                .where(d.c.next_fire_at.is_not(None), d.c.next_fire_at <= at)
            )
            or 0
        )


def fired_check(rt: Runtime, ids: Sequence[int]) -> dict[str, Any]:
    """What firing left on the due set: each deadline missed once, overdue + rung 1 once each."""
    d, tl, r = table("deadlines"), table("timeline_entries"), table("requests")
    out: dict[str, Any] = {}
    with rt.db.connect() as conn:
        missed = rung1 = 0
        actions: dict[str, int] = {}
        levels: dict[int, int] = {}
        for lo in range(0, len(ids), 5000):
            part = list(ids[lo : lo + 5000])
            missed += int(
                conn.scalar(
                    select(func.count())
                    .select_from(d)
                    .where(d.c.request_id.in_(part), d.c.kind == "sign", d.c.status == "missed")
                )
                or 0
            )
            rung1 += int(
                conn.scalar(
                    select(func.count())
                    .select_from(d)
                    .where(d.c.request_id.in_(part), d.c.kind == "sign", d.c.rungs_fired == 1)
                )
                or 0
            )
            for action, n in conn.execute(
                select(tl.c.action, func.count())
                .where(tl.c.request_id.in_(part))
                .group_by(tl.c.action)
            ):
                actions[action] = actions.get(action, 0) + int(n)
            for level, n in conn.execute(
                select(r.c.escalation_level, func.count())
                .where(r.c.id.in_(part))
                .group_by(r.c.escalation_level)
            ):
                levels[int(level)] = levels.get(int(level), 0) + int(n)
    out.update(missed=missed, rung1=rung1, actions=actions, escalation_levels=levels)
    return out


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
