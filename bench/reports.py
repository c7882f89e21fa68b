"""The rates report over many requests on PostgreSQL (target: 1,000,000 in under 1 s).

A fresh database (`huying_bench_<hex>`, dropped at the end), the migrations, then
`gen_reports.generate` writes N requests received over 2026 with their deadlines and timeline.
Then, each after one unmeasured warm-up and timed `--runs` times (median and range printed):

1. calibration: a bare `SELECT key, count(*) … GROUP BY key` over the same requests, the least
   any report over them can cost on this machine at this moment;
2. the report as the endpoint runs it (`huying.reports.service.rates` in one transaction), over
   the whole year (all N requests) and over November (about N/12), grouped each way;
3. with `--summary-columns`, a prototype of the proposed follow-up: the columns a request would
   carry (whether and how fast it was signed and first replied to, in working seconds, written
   when it happens) are added to this database only, back-filled from the same definitions
   (`service.request_facts`), with an index on `created_at`; then the same table is computed
   from `requests` alone, checked equal to the report's rows, and timed.

`--explain` prints PostgreSQL's plan of the year by department, with timings. `--http` also times
`GET /api/v1/reports/rates` (year, by department) as JSON, CSV and XLSX through the ASGI app.

    .venv/bin/python bench/reports.py --summary-columns          # N = 1,000,000: ~10 minutes
    .venv/bin/python bench/reports.py --n 100000 --runs 3 --explain
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from _common import fresh_database, load_average, machine_line, make_settings, now_utc
from sqlalchemy import Boolean, Integer, column, table, text, update

from huying import migrate
from huying.clock import FrozenClock
from huying.reports import service
from huying.reports.schemas import GroupBy, RatesRow
from huying.runtime import Runtime, build_runtime
from huying.workflow.library import SATISFIED

NOW = datetime(2027, 2, 1, 4, 0, tzinfo=UTC)  # the generator's NOW
PERIODS = {
    "year 2026": ("2026-01-01", "2027-01-01"),
    "November 2026": ("2026-11-01", "2026-12-01"),
}
GROUPS: list[GroupBy] = ["department", "category", "chain", "grid", "urgency"]
KEYS = {
    "department": "lead_department_code",
    "category": "category_code",
    "chain": "chain_code",
    "grid": "substr(grid_code, 1, 9)",
    "urgency": "urgency",
}


def args_for(rt: Runtime, start: str, end: str, group_by: GroupBy) -> dict[str, Any]:
    return {
        "calendar": rt.calendar,
        "escalation_levels": [r.level for r in rt.settings.escalation],
        "span": service.period(tz=rt.calendar.tz, now=rt.now(), start=start, end=end),
        "group_by": group_by,
        "grid_len": 9,
        "now": rt.now(),
    }


def run_report(rt: Runtime, start: str, end: str, group_by: GroupBy) -> list[RatesRow]:
    with rt.transaction() as s:
        return service.rates(session=s, **args_for(rt, start, end, group_by))


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, float, Any]:
    result = fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), max(times), result


def line(label: str, by: str, count: int, med: float, lo: float, hi: float) -> None:
    print(
        f"| {label} | {by} | {count:,} | **{med * 1000:,.0f} ms** | "
        f"{lo * 1000:,.0f}–{hi * 1000:,.0f} ms |",
        flush=True,
    )


def period_sql(rt: Runtime, start: str, end: str) -> str:
    span = service.period(tz=rt.calendar.tz, now=rt.now(), start=start, end=end)
    return f"created_at >= '{span.start.isoformat()}' AND created_at < '{span.end.isoformat()}'"


def calibrate(rt: Runtime, start: str, end: str, runs: int) -> tuple[float, float, float, int]:
    sql = (
        f"SELECT lead_department_code, count(*) FROM requests "
        f"WHERE {period_sql(rt, start, end)} GROUP BY 1"
    )

    def go() -> int:
        with rt.db.connect() as conn:
            return sum(n for _, n in conn.exec_driver_sql(sql))

    return timed(go, runs)


def explain(rt: Runtime, start: str, end: str) -> None:
    with rt.transaction() as s:
        real_execute = s.execute

        def capture(statement: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(statement, "is_select", False):
                sql = str(
                    statement.compile(
                        dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True}
                    )
                )
                for (row,) in real_execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)):
                    print(row)
            return real_execute(statement, *args, **kwargs)

        s.execute = capture  # type: ignore[method-assign]
        service.rates(session=s, **args_for(rt, start, end, "department"))


# --- the proposed follow-up, prototyped on this database only ------------------------------

SUMMARY = table(
    "requests",
    column("id", Integer),
    column("sign_on_time", Boolean),
    column("sign_working_seconds", Integer),
    column("first_reply_on_time", Boolean),
    column("first_reply_working_seconds", Integer),
)


def add_summary_columns(rt: Runtime) -> float:
    """ALTER TABLE, back-fill from the report's own definitions, index, analyze."""
    t0 = time.perf_counter()
    with rt.db.begin() as conn:
        conn.exec_driver_sql(
            "ALTER TABLE requests ADD COLUMN sign_on_time boolean, "
            "ADD COLUMN sign_working_seconds integer, ADD COLUMN first_reply_on_time boolean, "
            "ADD COLUMN first_reply_working_seconds integer"
        )
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        start, end = PERIODS["year 2026"]
        facts = service.request_facts(**args_for(rt, start, end, "department")).subquery()
        conn.execute(
            update(SUMMARY)
            .where(SUMMARY.c.id == facts.c.id, facts.c.signed == 1)
            .values(
                sign_on_time=facts.c.signed_on_time == 1,
                sign_working_seconds=facts.c.sign_secs,
                first_reply_on_time=(facts.c.replied_on_time == 1).op("AND")(facts.c.replied == 1),
                first_reply_working_seconds=facts.c.reply_secs,
            )
        )
        conn.exec_driver_sql(
            "UPDATE requests SET first_reply_on_time = NULL WHERE first_reply_working_seconds IS NULL"
        )
        conn.exec_driver_sql("CREATE INDEX ix_requests_created_at ON requests (created_at)")
    with rt.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) requests")
    return time.perf_counter() - t0


def summary_sql(rt: Runtime, start: str, end: str, group_by: GroupBy) -> str:
    """The same table from `requests` alone: one hash aggregate, and the two percentiles over
    (key, seconds) only."""
    key = KEYS[group_by]
    where = period_sql(rt, start, end)
    sat = ", ".join(f"'{r}'" for r in sorted(SATISFIED))
    levels = [r.level for r in rt.settings.escalation]

    def n(cond: str) -> str:
        return f"count(*) FILTER (WHERE {cond})"

    escalated = ", ".join(f"{n(f'escalation_level >= {lv}')} AS escalated_{lv}" for lv in levels)
    return f"""
WITH totals AS (
  SELECT {key} AS key, count(*) AS received,
    {n("lead_department_code IS NOT NULL OR return_count > 0")} AS dispatched,
    {n("sign_working_seconds IS NOT NULL")} AS signed, {n("sign_on_time")} AS signed_on_time,
    {n("first_reply_working_seconds IS NOT NULL")} AS replied,
    {n("first_reply_on_time")} AS replied_on_time,
    {n("state = 'closed'")} AS closed, {n("state = 'closed' AND resolved")} AS resolved,
    {n("rating IS NOT NULL")} AS rated, {n(f"rating IN ({sat})")} AS satisfied,
    {n("reopen_count > 0")} AS reopened, {n("return_count > 0")} AS returned,
    {n("overdue")} AS overdue_now, {escalated},
    avg(sign_working_seconds) AS sign_mean, avg(first_reply_working_seconds) AS reply_mean
  FROM requests WHERE {where} GROUP BY 1),
p_sign AS (
  SELECT {key} AS key, percentile_disc(0.9) WITHIN GROUP (ORDER BY sign_working_seconds) AS p
  FROM requests WHERE {where} AND sign_working_seconds IS NOT NULL GROUP BY 1),
p_reply AS (
  SELECT {key} AS key,
         percentile_disc(0.9) WITHIN GROUP (ORDER BY first_reply_working_seconds) AS p
  FROM requests WHERE {where} AND first_reply_working_seconds IS NOT NULL GROUP BY 1)
SELECT totals.*, p_sign.p AS sign_p90, p_reply.p AS reply_p90
FROM totals
LEFT JOIN p_sign ON p_sign.key IS NOT DISTINCT FROM totals.key
LEFT JOIN p_reply ON p_reply.key IS NOT DISTINCT FROM totals.key
"""


def minute_histogram_sql(rt: Runtime, start: str, end: str, group_by: GroupBy) -> str:
    """As `summary_sql`, but each 90th percentile from a histogram of whole working minutes
    (hash aggregates, no sort of the rows): the largest time in the minute where the nearest
    rank falls; exact, or above the exact value by less than a minute."""
    key = KEYS[group_by]
    where = period_sql(rt, start, end)
    totals = summary_sql(rt, start, end, group_by).split("),\np_sign AS")[0]

    def p90(name: str, column: str) -> str:
        return f"""
{name}_h AS (
  SELECT {key} AS key, {column} / 60 AS minute, count(*) AS n, max({column}) AS top
  FROM requests WHERE {where} AND {column} IS NOT NULL GROUP BY 1, 2),
{name}_c AS (
  SELECT key, top, sum(n) OVER (PARTITION BY key ORDER BY minute) AS cum,
         sum(n) OVER (PARTITION BY key) AS total FROM {name}_h),
{name} AS (
  SELECT key, min(top) FILTER (WHERE cum * 10 >= total * 9) AS p FROM {name}_c GROUP BY key)"""

    return (
        totals
        + "),"
        + p90("p_sign", "sign_working_seconds")
        + ","
        + p90("p_reply", "first_reply_working_seconds")
        + """
SELECT totals.*, p_sign.p AS sign_p90, p_reply.p AS reply_p90
FROM totals
LEFT JOIN p_sign ON p_sign.key IS NOT DISTINCT FROM totals.key
LEFT JOIN p_reply ON p_reply.key IS NOT DISTINCT FROM totals.key
"""
    )


def run_summary(
    rt: Runtime, start: str, end: str, group_by: GroupBy, *, minutes: bool = False
) -> list[RatesRow]:
    levels = [r.level for r in rt.settings.escalation]
    build = minute_histogram_sql if minutes else summary_sql
    with rt.transaction() as s:
        s.execute(text("SET LOCAL work_mem = '64MB'"))
        result = s.execute(text(build(rt, start, end, group_by))).mappings().all()
        names = service.group_names(s, group_by)
    rows = [service.row_from(m, group_by, names, levels) for m in result]
    return sorted(rows, key=lambda r: (r.key is None, r.key or ""))


def same_figures(a: list[RatesRow], b: list[RatesRow], hours: float = 0.011) -> bool:
    """Equal, but for working hours: the columns hold whole seconds (hours may differ by 0.01
    after rounding; more with the minute histogram)."""
    if len(a) != len(b):
        print("rows:", [r.key for r in a], [r.key for r in b])
        return False
    for x, y in zip(a, b, strict=True):
        dx, dy = x.model_dump(), y.model_dump()
        for name in ("sign_hours_mean", "sign_hours_p90", "reply_hours_mean", "reply_hours_p90"):
            vx, vy = dx.pop(name), dy.pop(name)
            if (vx is None) != (vy is None) or (vx is not None and abs(vx - vy) > hours):
                return False
        if dx != dy:
            print({k: (dx[k], dy[k]) for k in dx if dx[k] != dy[k]}, x.key)
            return False
    return True


def http(rt: Runtime, runs: int) -> None:
    from fastapi.testclient import TestClient

    from huying.app import create_app
    from huying.auth.service import create_key
    from huying.reports.router import router

    with rt.transaction() as s:
        _, token = create_key(
            session=s, role="supervisor", department=None, name="bench", now=rt.now()
        )
    app = create_app(rt)
    if not any(getattr(r, "path", "") == "/api/v1/reports/rates" for r in app.routes):
        app.include_router(router, prefix="/api/v1")
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        for fmt in ("json", "csv", "xlsx"):
            params = {"from": "2026-01-01", "to": "2027-01-01", "format": fmt}

            def call(params: dict[str, str] = params) -> int:
                r = client.get("/api/v1/reports/rates", params=params, headers=headers)
                r.raise_for_status()
                return len(r.content)

            med, lo, hi, size = timed(call, runs)
            print(
                f"| HTTP {fmt}, year by department | {med * 1000:,.0f} ms "
                f"({lo * 1000:,.0f}–{hi * 1000:,.0f}) | {size:,} bytes |",
                flush=True,
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pg-url", help="the server (default: $HUYING_BENCH_PG_URL or local)")
    ap.add_argument("--year-groups", default="department", help="comma-separated, or 'all'")
    ap.add_argument("--summary-columns", action="store_true")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--http", action="store_true")
    args = ap.parse_args()
    year_groups: list[GroupBy] = (
        GROUPS if args.year_groups == "all" else args.year_groups.split(",")  # type: ignore[assignment]
    )

    import gen_reports

    print(f"# reports bench, {now_utc()}; {machine_line()}; load {load_average()}", flush=True)
    with fresh_database("postgresql", args.pg_url) as url:
        rt = build_runtime(make_settings(url), clock=FrozenClock(NOW))
        try:
            migrate.upgrade(rt.db)
            print(f"generating {args.n:,} requests …", flush=True)
            took = gen_reports.generate(rt.db, n=args.n)
            with rt.db.connect() as conn:
                sizes = {
                    name: conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar()
                    for name in ("requests", "deadlines", "timeline_entries")
                }
            print(
                f"generated in {took:.0f} s: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items())
            )
            if args.explain:
                explain(rt, *PERIODS["year 2026"])
            print("\n| what | group by | requests | median | range |\n|---|---|---|---|---|")
            for label, (start, end) in PERIODS.items():
                med, lo, hi, count = calibrate(rt, start, end, args.runs)
                line(f"bare GROUP BY count, {label}", "department", count, med, lo, hi)
            reference: dict[tuple[str, str], list[RatesRow]] = {}
            for label, (start, end) in PERIODS.items():
                groups = year_groups if label.startswith("year") else GROUPS
                for group_by in groups:
                    med, lo, hi, rows = timed(
                        lambda s=start, e=end, g=group_by: run_report(rt, s, e, g), args.runs
                    )
                    reference[(label, group_by)] = rows
                    count = sum(r.received for r in rows)
                    line(f"report, {label}", group_by, count, med, lo, hi)
            if args.summary_columns:
                print(f"summary columns added and back-filled in {add_summary_columns(rt):.0f} s")
                for label, (start, end) in PERIODS.items():
                    groups = year_groups if label.startswith("year") else GROUPS
                    for group_by in groups:
                        med, lo, hi, rows = timed(
                            lambda s=start, e=end, g=group_by: run_summary(rt, s, e, g),
                            args.runs,
                        )
                        ok = same_figures(rows, reference[(label, group_by)])
                        count = sum(r.received for r in rows)
                        line(
                            f"proposed columns, {label}" + ("" if ok else " (FIGURES DIFFER)"),
                            group_by,
                            count,
                            med,
                            lo,
                            hi,
                        )
                # where the time goes: the same statement without the two percentiles
                start, end = PERIODS["year 2026"]
                sql = summary_sql(rt, start, end, "department").split("),\np_sign AS")[0]
                sql = sql.removeprefix("\nWITH totals AS (") + ""

                def totals_only(sql: str = sql) -> int:
                    with rt.db.connect() as conn:
                        return len(conn.exec_driver_sql(sql).all())

                med, lo, hi, _ = timed(totals_only, args.runs)
                line(
                    "proposed columns without the percentiles, year 2026",
                    "department",
                    args.n,
                    med,
                    lo,
                    hi,
                )
                for label, (start, end) in PERIODS.items():
                    groups = year_groups if label.startswith("year") else GROUPS
                    for group_by in groups:
                        med, lo, hi, rows = timed(
                            lambda s=start, e=end, g=group_by: run_summary(
                                rt, s, e, g, minutes=True
                            ),
                            args.runs,
                        )
                        ok = same_figures(rows, reference[(label, group_by)], hours=0.03)
                        line(
                            f"proposed columns, p90 by the minute, {label}"
                            + ("" if ok else " (FIGURES DIFFER)"),
                            group_by,
                            sum(r.received for r in rows),
                            med,
                            lo,
                            hi,
                        )
            if args.http:
                http(rt, args.runs)
            print(f"load after: {load_average()}")
        finally:
            rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
