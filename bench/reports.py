"""The rates report over many requests on PostgreSQL (target: 1,000,000 in under 1 s).

A fresh database (`huying_bench_<hex>`, dropped at the end), the migrations, then
`gen_reports.generate` writes N requests received over 2026 with their deadlines and timeline.
Their report facts (signed and first replied, on time or not, in how many working seconds) are
then derived from those deadlines by `huying.reports.facts.backfill`, as the migration that
added them does for stored requests, and timed. Then, each after one unmeasured warm-up and
timed `--runs` times (median and range printed):

1. the target's ratio: the report (as below) over a bare `SELECT lead_department_code,
   count(*) … GROUP BY 1` over the same requests, the two alternating `--pairs` times, for
   the year by each grouping and for November by department (median and every pair);
1. calibration: a bare `SELECT key, count(*) … GROUP BY key` over the same requests, the least
   any report over them can cost on this machine at this moment;
2. the report as the endpoint runs it (`huying.reports.service.rates` in one transaction), over
   the whole year (all N requests) and over November (about N/12), grouped each way; first on
   the table as the back-fill left it (a dead version of every updated row, as after the
   migration until autovacuum reuses the space), then, with `--compact`, after
   `VACUUM FULL` (the table a system that recorded the facts as they happened would have).

Then (unless `--no-fold`) the months are folded as the worker folds them
(`huying.reports.rollups`) and the ratios timed again: the year read from the monthly rows, and
with November dirty (one of its requests changed: read from `requests`, the rest from the rows).

`--explain` prints PostgreSQL's plan of the year by department, with timings. `--http` also times
`GET /api/v1/reports/rates` (year, by department) as JSON, CSV and XLSX through the ASGI app.

    .venv/bin/python bench/reports.py --compact --http          # N = 1,000,000: ~5 minutes
    .venv/bin/python bench/reports.py --n 100000 --runs 3 --explain
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from _common import fresh_database, load_average, machine_line, make_settings, now_utc
from sqlalchemy import text

from huying import migrate
from huying.clock import FrozenClock
from huying.reports import facts, rollups, service
from huying.reports.schemas import GroupBy, RatesRow
from huying.runtime import Runtime, build_runtime

NOW = datetime(2027, 2, 1, 4, 0, tzinfo=UTC)  # the generator's NOW
PERIODS = {
    "year 2026": ("2026-01-01", "2027-01-01"),
    "November 2026": ("2026-11-01", "2026-12-01"),
}
GROUPS: list[GroupBy] = ["department", "category", "chain", "grid", "urgency"]


def args_for(rt: Runtime, start: str, end: str, group_by: GroupBy) -> dict[str, Any]:
    return {
        "escalation_levels": [r.level for r in rt.settings.escalation],
        "span": service.period(tz=rt.calendar.tz, now=rt.now(), start=start, end=end),
        "group_by": group_by,
        "grid_len": 9,
    }


def run_report(rt: Runtime, start: str, end: str, group_by: GroupBy) -> list[RatesRow]:
    with rt.snapshot() as s:  # as the route reads it
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


def ratio(rt: Runtime, label: str, group_by: GroupBy, pairs: int) -> list[float]:
    """The target's figure: the report over the time of the bare `GROUP BY
    lead_department_code` count over the same requests, the two alternating `pairs` times in
    this run (after one warm-up of each), so that both see the same load. Prints the median
    and every pair's ratio, with the load average."""
    start, end = PERIODS[label]
    sql = (
        f"SELECT lead_department_code, count(*) FROM requests "
        f"WHERE {period_sql(rt, start, end)} GROUP BY 1"
    )

    def floor() -> None:
        with rt.db.connect() as conn:
            conn.exec_driver_sql(sql).all()

    def report() -> None:
        run_report(rt, start, end, group_by)

    floor()  # warm-up
    report()
    ratios, floors, reports = [], [], []
    for _ in range(pairs):
        t = time.perf_counter()
        floor()
        f = time.perf_counter() - t
        t = time.perf_counter()
        report()
        r = time.perf_counter() - t
        floors.append(f)
        reports.append(r)
        ratios.append(r / f)
    print(
        f"| ratio, {label}, by {group_by} | **{statistics.median(ratios):.1f}×** | "
        f"{', '.join(f'{x:.1f}' for x in ratios)} | {statistics.median(floors) * 1000:,.0f} ms | "
        f"{statistics.median(reports) * 1000:,.0f} ms | {load_average()} |",
        flush=True,
    )
    return ratios


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


def compact(rt: Runtime) -> float:
    t0 = time.perf_counter()
    with rt.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (FULL, ANALYZE) requests")
    return time.perf_counter() - t0


def time_reports(
    rt: Runtime, runs: int, year_groups: list[GroupBy], what: str, pairs: int = 5
) -> None:
    print(
        f"\n{what}\n\n| report vs `GROUP BY lead_department_code` count (target ≤ 3×) | "
        "median | each pair | count | report | load |\n|---|---|---|---|---|---|"
    )
    for group_by in year_groups:
        ratio(rt, "year 2026", group_by, pairs)
    ratio(rt, "November 2026", "department", pairs)
    print("\n| what | group by | requests | median | range |\n|---|---|---|---|---|")
    for label, (start, end) in PERIODS.items():
        med, lo, hi, count = calibrate(rt, start, end, runs)
        line(f"bare GROUP BY count, {label}", "department", count, med, lo, hi)
    for label, (start, end) in PERIODS.items():
        groups = year_groups if label.startswith("year") else GROUPS
        for group_by in groups:
            med, lo, hi, rows = timed(functools.partial(run_report, rt, start, end, group_by), runs)
            line(f"report, {label}", group_by, sum(r.received for r in rows), med, lo, hi)
    # The same statement again and again, as a long-running server sends it: psycopg prepares
    # it after 5 executions and PostgreSQL would then switch to a generic plan after 5 more.
    start, end = PERIODS["year 2026"]
    times, received = [], 0
    for _ in range(15):
        t = time.perf_counter()
        received = sum(r.received for r in run_report(rt, start, end, "department"))
        times.append(time.perf_counter() - t)
    late = times[10:]
    line(
        "report, year 2026, runs 11–15 in a row (prepared)",
        "department",
        received,
        statistics.median(late),
        min(late),
        max(late),
    )


def fold(rt: Runtime, runs: int, year_groups: list[GroupBy], pairs: int) -> None:
    """The months folded (`huying.reports.rollups.fold_due`, as the worker does), the rows
    they take; the reports again, then with November dirty (one of its requests changed: the
    report reads that month from `requests`), each against the same bare count."""
    t0 = time.perf_counter()
    folded = rollups.fold_due(rt)
    took = time.perf_counter() - t0
    with rt.db.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM report_rollups").scalar()
        size = conn.exec_driver_sql(
            "SELECT pg_size_pretty(pg_total_relation_size('report_rollups'))"
        ).scalar()
    print(f"\nfolded {folded} months in {took:.1f} s: {rows:,} rows in report_rollups ({size})")
    with rt.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE) report_rollups")
    time_reports(rt, runs, year_groups, "the months folded:", pairs)
    with rt.db.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE requests SET version = version WHERE id = (SELECT min(id) FROM requests "
            "WHERE created_at >= '2026-11-10' AND created_at < '2026-11-20')"
        )
    ratio(rt, "year 2026", "department", pairs)
    print("(the last line: the year by department with November dirty)")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=5, help="alternations for each ratio")
    ap.add_argument("--pg-url", help="the server (default: $HUYING_BENCH_PG_URL or local)")
    ap.add_argument("--year-groups", default="all", help="comma-separated, or 'all'")
    ap.add_argument("--compact", action="store_true", help="also time after VACUUM FULL")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument(
        "--no-fold", action="store_true", help="skip the reports over folded months (rollups)"
    )
    ap.add_argument("--http", action="store_true")
    args = ap.parse_args()
    year_groups: list[GroupBy] = (
        GROUPS if args.year_groups == "all" else args.year_groups.split(",")
    )

    import gen_reports

    print(f"# reports bench, {now_utc()}; {machine_line()}; load {load_average()}", flush=True)
    with fresh_database("postgresql", args.pg_url) as url:
        rt = build_runtime(make_settings(url), clock=FrozenClock(NOW))
        try:
            migrate.upgrade(rt.db, calendar=rt.calendar)
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
            t0 = time.perf_counter()
            with rt.db.begin() as conn:
                updated = facts.backfill(conn, rt.calendar)
            print(
                f"report facts back-filled in {time.perf_counter() - t0:.0f} s ({updated:,} rows)"
            )
            with rt.db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE) requests")
            if args.explain:
                explain(rt, *PERIODS["year 2026"])
            time_reports(
                rt, args.runs, year_groups, "after the back-fill and VACUUM (ANALYZE):", args.pairs
            )
            if args.compact:
                print(f"\nVACUUM (FULL, ANALYZE) requests in {compact(rt):.0f} s")
                time_reports(rt, args.runs, year_groups, "compacted:", args.pairs)
            if not args.no_fold:
                fold(rt, args.runs, year_groups, args.pairs)
            if args.http:
                http(rt, args.runs)
            print(f"load after: {load_average()}")
        finally:
            rt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
