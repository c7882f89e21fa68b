"""Deadlines: the cost of a tick with nothing due at a small and a large number of running
deadlines, and how long 10,000 deadlines falling due at one instant take to fire.

    .venv/bin/python bench/deadlines.py --db postgresql [--small 1000] [--large 1000000]
        [--ticks 50] [--due 10000] [--workers 1,3] [--rounds 3]
    .venv/bin/python bench/deadlines.py --db sqlite --large 100000 --workers 1

What it does, all on 127.0.0.1:

1. two fresh databases (`huying_bench_<hex>` on the PostgreSQL at $HUYING_BENCH_PG_URL, default
   postgres@127.0.0.1:5432, or two temporary SQLite files; dropped at the end, even on failure),
   migrated with `huying.migrate.upgrade`, the tests' directory loaded, then filled by
   bench/gen_deadlines.py with --small and --large requests that each have one running deadline
   due in the future (none due for at least 1.25 h); then VACUUM ANALYZE / ANALYZE;
2. nothing due: `--ticks` ticks (after `--warmup`) on each database, alternating small and
   large so both see the same machine load: `fire_due(rt, now=rt.now())` and the full
   `Worker(rt).tick()` (fire_due + heartbeat; no alert/webhook jobs), wall and CPU time per
   tick, and SQL statements per tick counted in the warm-up ticks (a listener changes the
   path it counts: `StatementCounter`); then the claim query as `claim()` sends it (captured
   from the engine),
   under EXPLAIN (ANALYZE, BUFFERS) at both sizes (SQLite: EXPLAIN QUERY PLAN), and on
   PostgreSQL also its generic plan (what a prepared statement may switch to after 5 runs);
3. falling due at once, on the large database, once per entry of --workers (1 = one worker
   process, 3 = three concurrent processes): worker processes are started (multiprocessing,
   spawn) and run the product's deadline job on APScheduler, as `huying worker` does
   (`huying.worker.schedule_deadlines`: a tick every `worker.tick`, 1 s, and one at the
   instant the next step falls due when that comes first; no alert jobs). Then, after a
   CHECKPOINT on PostgreSQL (`gen_deadlines.checkpoint`: the fill's WAL is not the burst's
   to write), --due deadlines spread over the table are made to
   fall due at T = now + --lead seconds with their warning already fired, so each fires 2 steps
   at T: `overdue`, and `escalate` level 1 (the default ladder's first rung is "after 0 seconds").
   From T the parent counts the rows still due every 0.1 s (the partial index); the figure is
   the time from T until none is left. Then every due deadline is checked: missed, rung 1 fired
   once, exactly one overdue and one escalate timeline row each. Each worker process reports
   its RSS just before T and its peak RSS from then to the end (getrusage ru_maxrss, after
   resetting the peak past start-up with /proc/self/clear_refs), and its CPU time in the
   ticks that fired, with the CPU time of its PostgreSQL backends.

4. against the floor (before the worker runs, on the large database): --rounds pairs,
   alternating, of the floor transaction on --due deadlines made due as in 3. (a
   CHECKPOINT before each side's rows are made due; one
   transaction: one set-based UPDATE marking them missed at rung 1, and their overdue and
   escalate timeline rows, 2 per deadline, by Core executemany; then COMMIT) and
   `fire_due(rt, now=T)` in this process on another such set: the whole firing, 2 steps per
   deadline, requests, events and all, in batches of `worker.batch_size`. Every set is
   disjoint from the others. The ratio of the medians is the part-two target (≤ 5×); the load
   average is printed per round. One more `fire_due` on a set of its own, untimed, counts
   the statements a burst sends.

(The --prototype option that measured the batch-wise firing before it was applied is gone:
its parts are in src since, see BENCHMARKS.md "Deadlines".)

Targets (DESIGN.md): a nothing-due tick costs the same at 1,000,000 as at 1,000 (indexed,
O(due)); memory flat; part two: 10,000 falling due at once within 5× the floor transaction,
and all fired within 5 s of their time with one worker (part one: 10 s).
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import re
import resource
import statistics
import sys
import time
import traceback
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gen_deadlines as gen  # noqa: E402
from _common import (  # noqa: E402
    build_world,
    fresh_database,
    load_average,
    machine_line,
    make_settings,
    now_utc,
)
from sqlalchemy import event  # noqa: E402

from huying import migrate  # noqa: E402
from huying.runtime import Runtime, build_runtime  # noqa: E402

DUE_TARGET_S = 5.0  # part two: within 5 s with one worker (part one: 10 s)
FLOOR_TARGET = 5.0  # part two: within 5× the floor transaction
SAME_WITHIN = 1.5  # "the same within noise": large/small median ratio below this


# --- small helpers -------------------------------------------------------------------


def rss_mb() -> tuple[float, float]:
    """(current VmRSS, peak VmHWM) of this process in MB (Linux /proc)."""
    cur = peak = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cur, peak


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def reset_peak_rss() -> bool:
    """Start the peak-RSS count afresh (Linux: clear_refs 5 resets VmHWM and ru_maxrss), so the
    peak measured next is the peak of what follows, not of imports and start-up."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine (Linux /proc/stat)."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(vals[:8]) - vals[3] - vals[4], sum(vals[:8])


def pct(values: list[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


class StatementCounter:
    """Counts the statements SQLAlchemy's execution sends while attached. Attached, it changes
    what it counts: while anything listens, `huying.db` sends what it would run on the
    driver's cursor (SQLite's BEGIN, `insert_rows`, SQLite's `update_versioned`) through that
    execution instead, so that each is seen. So it counts in calls that are not timed, and
    is closed before the timed ones."""

    def __init__(self, rt: Runtime) -> None:
        self.n = 0
        self.rt = rt
        event.listen(rt.db, "before_cursor_execute", self._on)

    def close(self) -> None:
        if event.contains(self.rt.db, "before_cursor_execute", self._on):
            event.remove(self.rt.db, "before_cursor_execute", self._on)

    def _on(
        self, conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
    ) -> None:
        self.n += 1


# --- 2. nothing due ---------------------------------------------------------------------


def nothing_due(
    sides: list[tuple[str, Runtime]], ticks: int, warmup: int
) -> dict[str, dict[str, Any]]:
    from huying.requests.firing import fire_due
    from huying.worker import Worker

    out: dict[str, dict[str, Any]] = {}
    counters = {label: StatementCounter(rt) for label, rt in sides}
    workers = {label: Worker(rt, name=f"bench-nothing-due-{label}") for label, rt in sides}
    for label, _ in sides:
        out[label] = {
            "fire_due": [],
            "fire_due_cpu": [],
            "tick": [],
            "tick_cpu": [],
            "fire_due_stmts": 0,
            "tick_stmts": 0,
        }
    for i in range(warmup + ticks):
        if i == warmup:  # counted in the warm-up ticks, timed without a listener
            for counter in counters.values():
                counter.close()
        for label, rt in sides:
            rec = out[label]
            c = counters[label]
            now = rt.now()
            n0, t0, c0 = c.n, time.perf_counter(), time.process_time()
            res = fire_due(rt, now=now)
            t1, c1 = time.perf_counter(), time.process_time()
            if res.claimed:
                raise SystemExit(f"{label}: {res.claimed} deadline(s) were due; nothing should be")
            n1 = c.n
            fired = workers[label].tick(rt.now())
            t2, c2 = time.perf_counter(), time.process_time()
            if fired:
                raise SystemExit(f"{label}: the tick fired {fired}; nothing should be due")
            if i < warmup:
                rec["fire_due_stmts"] = n1 - n0
                rec["tick_stmts"] = c.n - n1
            else:
                rec["fire_due"].append((t1 - t0) * 1000)
                rec["fire_due_cpu"].append((c1 - c0) * 1000)
                rec["tick"].append((t2 - t1) * 1000)
                rec["tick_cpu"].append((c2 - c1) * 1000)
    return out


def claim_sql(rt: Runtime, at: datetime | None = None) -> tuple[str, Any, list[str]]:
    """The statement `claim()` sends, as sent (captured, so it follows src), and the
    settings (`SET LOCAL …`) it sends before it in its transaction."""
    from huying.requests.repository import claim_due as claim

    seen: list[tuple[str, Any]] = []

    def on(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        seen.append((statement, params))

    event.listen(rt.db, "before_cursor_execute", on)
    try:
        with rt.transaction() as s:
            claim(s, now=at or rt.now(), batch=rt.settings.worker.batch_size)
    finally:
        event.remove(rt.db, "before_cursor_execute", on)
    settings = [st for st, _ in seen if st.lstrip().upper().startswith("SET ")]
    for statement, params in seen:
        head = statement.lstrip().upper()
        if "FROM DEADLINES" in head and head.startswith(("SELECT", "WITH")):
            return statement, params, settings
    raise SystemExit(f"claim() sent no SELECT on deadlines: {seen}")


def explain(rt: Runtime, at: datetime | None = None) -> dict[str, Any]:
    """The claim query's plan, executed (EXPLAIN ANALYZE runs it; its row locks are released at
    once by the rollback). With `at`, as the worker's claim at that instant."""
    statement, params, settings = claim_sql(rt, at)
    out: dict[str, Any] = {"sql": statement, "params": params, "settings": settings}
    with rt.db.connect() as conn:
        if rt.db.dialect.name == "postgresql":
            for setting in settings:  # as in the claim's transaction (SET LOCAL: this one)
                conn.exec_driver_sql(setting)
            t = time.perf_counter()
            plan = (
                conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                .scalars()
                .all()
            )
            out["explain_s"] = time.perf_counter() - t
            out["plan"] = plan
            # the generic plan a prepared statement may switch to after 5 executions
            names = list(params)
            sql = statement
            for k, name in enumerate(names, 1):
                sql = sql.replace(f"%({name})s", f"${k}")
            sql = re.sub(r"::[A-Z ]+WITH TIME ZONE", "", sql)
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(f"PREPARE bench_claim AS {sql}")
            args = ", ".join(
                f"'{params[n].isoformat()}'::timestamptz"
                if isinstance(params[n], datetime)
                else repr(params[n])
                for n in names
            )
            out["generic_plan"] = (
                conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_claim({args})")
                .scalars()
                .all()
            )
            conn.exec_driver_sql("DEALLOCATE bench_claim")
            conn.exec_driver_sql("RESET plan_cache_mode")
            conn.rollback()
        else:
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            out["plan"] = [" ".join(str(x) for x in row) for row in plan]
            t = time.perf_counter()
            for _ in range(20):
                conn.exec_driver_sql(statement, params).all()
            out["explain_s"] = (time.perf_counter() - t) / 20
            conn.rollback()
    return out


# --- 3. falling due at once ----------------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (Linux /proc); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_process(url: str, name: str, ready: Any, stop: Any, results: Any) -> None:
    """One worker process: the product's deadline job on APScheduler, as `huying worker`
    runs it (every `worker.tick`, and at the instant the next step falls due when that
    comes first), until told to stop. Each tick's span, steps and CPU are recorded (its
    statements are not: `StatementCounter`; `against_floor` counts a burst's)."""
    try:
        from apscheduler.schedulers.background import BackgroundScheduler

        from huying.worker import Worker, schedule_deadlines

        rt = build_runtime(make_settings(url))
        backends: set[int] = set()
        if rt.db.dialect.name == "postgresql":

            @event.listens_for(rt.db, "connect")
            def _pid(dbapi_conn: Any, _rec: Any) -> None:
                with dbapi_conn.cursor() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    backends.add(int(cur.fetchone()[0]))
                dbapi_conn.commit()

        # no statement counter: it would change the path timed (`StatementCounter`)
        ticks: list[tuple[float, float, int, float]] = []

        class Measured(Worker):
            def tick(self, now: datetime | None = None) -> int:
                begin, cpu = time.time(), time.process_time()
                fired = super().tick(now)  # CPU: the process's, its writer thread's too
                ticks.append((begin, time.time(), fired, time.process_time() - cpu))
                return fired

        worker = Measured(rt, name=name)
        worker.tick()  # connect, warm the statement caches
        ticks.clear()
        reset = reset_peak_rss()
        before = rss_mb()[0]
        db_cpu0 = {pid: _proc_cpu(pid) for pid in backends}
        scheduler = BackgroundScheduler(timezone=rt.calendar.tz)
        schedule_deadlines(scheduler, worker)
        scheduler.start()
        ready.put((name, before))
        stop.wait()
        scheduler.shutdown(wait=True)
        cur, _ = rss_mb()
        db_cpu = sum(_proc_cpu(pid) - db_cpu0.get(pid, 0.0) for pid in backends)
        results.put(
            {
                "name": name,
                "rss_reset": reset,
                "rss_before": before,
                "rss_peak": maxrss_mb(),
                "rss_now": cur,
                "ticks": [t[:3] for t in ticks if t[2]],
                "n_ticks": len(ticks),
                "fired": sum(t[2] for t in ticks),
                "cpu_firing": sum(t[3] for t in ticks if t[2]),
                "db_cpu": db_cpu,
                "backends": len(backends),
            }
        )
        rt.close()
    except BaseException:  # reported to the parent, which fails the run
        results.put({"name": name, "error": traceback.format_exc()})


def falling_due(
    rt: Runtime,
    url: str,
    first: int,
    last: int,
    *,
    n_due: int,
    workers: int,
    offset: int,
    lead: float,
    timeout: float,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=worker_process,
            args=(url, f"bench-{workers}w-{k}", ready, stop, results),
        )
        for k in range(workers)
    ]
    for p in procs:
        p.start()
    out: dict[str, Any] = {"workers": workers, "due": n_due}
    try:
        before = dict(ready.get(timeout=120) for _ in procs)
        ids = gen.due_ids(first, last, n_due, offset)
        at = datetime.fromtimestamp(time.time() + lead).astimezone(rt.calendar.tz)
        gen.checkpoint(rt)
        out["make_due_s"] = gen.make_due(rt, ids, at)
        out["plan_due"] = explain(rt, at)  # before T: the first claim of the burst
        if time.time() >= at.timestamp():
            raise SystemExit(
                f"making them due and explaining the claim did not finish before T "
                f"({out['make_due_s']:.1f} s + explain); raise --lead"
            )
        due_ts = out["due_ts"] = at.timestamp()
        time.sleep(max(0.0, due_ts - time.time()))
        busy0 = machine_busy()
        curve: list[tuple[float, int]] = []
        remaining = n_due
        while remaining and time.time() - due_ts < timeout:
            remaining = gen.remaining_due(rt, at)
            curve.append((time.time() - due_ts, remaining))
            if remaining:
                time.sleep(0.1)
        out["curve"] = curve
        busy1 = machine_busy()
        out["busy"] = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        out["all_fired_s"] = curve[-1][0] if remaining == 0 else None
        out["remaining"] = remaining
        for frac in (0.5, 0.9):
            out[f"t{int(frac * 100)}"] = next(
                (t for t, r in curve if r <= n_due * (1 - frac)), None
            )
    finally:
        stop.set()
        reports = []
        for _ in procs:
            try:
                reports.append(results.get(timeout=120))
            except Exception:  # a child died without reporting
                break
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join(timeout=10)
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise SystemExit("a worker process failed:\n" + "\n".join(errors))
    out["processes"] = reports
    out["rss_before"] = before
    out["check"] = gen.fired_check(rt, ids)
    # the firing ticks: when each worker started and finished the tick(s) that fired
    spans = [(b - due_ts, e - due_ts, f) for r in reports for b, e, f in r["ticks"]]
    out["first_fire_tick_start"] = min((b for b, _, _ in spans), default=None)
    out["fired"] = sum(r["fired"] for r in reports)
    return out


# --- 4. against the floor: one transaction writing what firing must at least write ---------


def floor_transaction(rt: Runtime, ids: list[int], at: datetime) -> float:
    """The floor the target is measured against: one transaction that marks the sign
    deadlines of requests `ids` fired (missed, rung 1, next look at a later instant, version
    bumped: one set-based UPDATE) and writes their two timeline rows each (overdue and
    escalate, with the data firing writes: Core executemany), then commits. No request,
    event, engine or directory work. Returns seconds."""
    from sqlalchemy import bindparam, insert, update

    d, tl = gen.table("deadlines"), gen.table("timeline_entries")
    later = at + timedelta(days=1)
    t0 = time.perf_counter()
    with rt.db.begin() as conn:
        conn.execute(
            update(d)
            .where(d.c.request_id.in_(bindparam("ids", expanding=True)), d.c.kind == "sign")
            .values(
                status="missed",
                missed_at=d.c.due_at,
                rungs_fired=1,
                next_fire_at=later,
                version=d.c.version + 1,
            ),
            {"ids": ids},
        )
        rows = []
        for rid in ids:
            base = {"request_id": rid, "actor": "system", "role": "system", "at": at}
            data = {"deadline": "sign", "due_at": at.isoformat()}
            rows.append(
                base
                | {"seq": 4, "action": "overdue", "from_state": "dispatched"}
                | {"to_state": "dispatched", "note": None, "data": data, "public": False}
            )
            rows.append(
                base
                | {"seq": 5, "action": "escalate", "from_state": "dispatched"}
                | {"to_state": "dispatched", "note": None, "public": False}
                | {"data": data | {"level": 1, "rung": 1, "notify": []}}
            )
        conn.execute(insert(tl), rows)
    return time.perf_counter() - t0


def against_floor(
    rt: Runtime, first: int, last: int, *, n_due: int, rounds: int, offset: int
) -> dict[str, Any]:
    """`rounds` pairs, alternating: the floor transaction on one set of `n_due` deadlines,
    then `fire_due` in this process on another set of the same size made due the same way
    (2 steps each). Each set is disjoint from every other; both sides see the same load.
    Then one more `fire_due`, untimed, on a set of its own, counting its statements
    (`StatementCounter`)."""
    from huying.requests.firing import fire_due

    out: dict[str, Any] = {"floor": [], "fire": [], "fire_cpu": [], "load": []}
    for k in range(rounds):
        out["load"].append(load_average())
        for side in ("floor", "fire"):
            ids = gen.due_ids(first, last, n_due, offset + 2 * k + (side == "fire"))
            at = datetime.fromtimestamp(time.time() - 1).astimezone(rt.calendar.tz)
            gen.checkpoint(rt)
            gen.make_due(rt, ids, at)
            if side == "floor":
                out["floor"].append(floor_transaction(rt, ids, at))
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            res = fire_due(rt, now=at)
            out["fire"].append(time.perf_counter() - t0)
            out["fire_cpu"].append(time.process_time() - c0)
            _fired_once(rt, ids, res.claimed)
    ids = gen.due_ids(first, last, n_due, offset + 2 * rounds)
    at = datetime.fromtimestamp(time.time() - 1).astimezone(rt.calendar.tz)
    gen.make_due(rt, ids, at)
    counter = StatementCounter(rt)
    try:
        _fired_once(rt, ids, fire_due(rt, now=at).claimed)
    finally:
        counter.close()
    out["fire_stmts"] = counter.n
    return out


def _fired_once(rt: Runtime, ids: list[int], claimed: int) -> None:
    check = gen.fired_check(rt, ids)
    if claimed != len(ids) or check["missed"] != len(ids) or check["rung1"] != len(ids):
        raise SystemExit(f"fire_due claimed {claimed}, left {check}: not each exactly once")


# --- the run ------------------------------------------------------------------------------


def prepare(rt: Runtime, count: int, label: str) -> tuple[int, int, float]:
    migrate.upgrade(rt.db)
    token = build_world(rt)["integration"]
    tpl = gen.capture_template(rt, token)
    print(
        f"filling {label}: {count:,} requests with a running sign deadline and a task's each …",
        flush=True,
    )
    first, last, secs = gen.fill(rt, tpl, count=count, now=rt.now(), progress=count >= 200_000)
    t = time.perf_counter()
    gen.analyze(rt)
    print(
        f"  {label}: {count:,} in {secs:.1f} s ({count / secs:,.0f} requests/s, 8 rows each); "
        f"analyze {time.perf_counter() - t:.1f} s",
        flush=True,
    )
    return first, last, secs


def table_sizes(rt: Runtime) -> dict[str, str]:
    if rt.db.dialect.name != "postgresql":
        return {}
    with rt.db.connect() as conn:
        return {
            name: conn.exec_driver_sql(
                f"SELECT pg_size_pretty(pg_total_relation_size('{name}'))"
            ).scalar_one()
            for name in ("deadlines", "ix_deadlines_next_fire_at", "requests")
        }


def src_revision() -> str:
    """The commit of the tree whose huying the run imported (and measured), and whether its
    src/ had uncommitted changes."""
    import subprocess

    import huying

    tree = Path(huying.__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(tree), "status", "--porcelain", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} ({tree}/src)" + (" + uncommitted changes in src/" if dirty else "")


def secs(t: float | None, digits: int = 1) -> str:
    return "n/a" if t is None else f"{t:.{digits}f} s"


def summary(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.2f} ms, p95 {pct(xs, 0.95):.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    ap.add_argument("--small", type=int, default=1000, help="running deadlines, small database")
    ap.add_argument(
        "--large",
        type=int,
        default=None,
        help="running deadlines, large database (default 1,000,000; SQLite 100,000)",
    )
    ap.add_argument("--ticks", type=int, default=50, help="measured nothing-due ticks per size")
    ap.add_argument(
        "--warmup", type=int, default=5, help="nothing-due ticks before the measured ones (≥ 1)"
    )
    ap.add_argument("--due", type=int, default=10_000, help="deadlines falling due at one instant")
    ap.add_argument(
        "--workers",
        default=None,
        help="comma-separated worker-process counts, one due run each "
        "(default 1,3; SQLite 1, as Huying allows one worker there); 0 = skip",
    )
    ap.add_argument(
        "--rounds", type=int, default=3, help="alternating floor/fire_due pairs; 0 = skip"
    )
    ap.add_argument("--lead", type=float, default=5.0, help="seconds from setting them up to T")
    ap.add_argument("--timeout", type=float, default=300.0, help="give up on a due run after this")
    ap.add_argument("--pg-url", default=None)
    args = ap.parse_args()
    if args.warmup < 1:
        ap.error("--warmup: at least 1 (the statements are counted in the warm-up ticks)")
    large = args.large or (1_000_000 if args.db == "postgresql" else 100_000)
    workers = [
        int(w) for w in (args.workers or ("1,3" if args.db == "postgresql" else "1")).split(",")
    ]
    workers = [w for w in workers if w > 0]
    load_before = load_average()
    revision = src_revision()
    started = time.perf_counter()

    with ExitStack() as stack:
        url_s = stack.enter_context(fresh_database(args.db, args.pg_url))
        url_l = stack.enter_context(fresh_database(args.db, args.pg_url))
        rt_s = build_runtime(make_settings(url_s))
        stack.callback(rt_s.close)
        rt_l = build_runtime(make_settings(url_l))
        stack.callback(rt_l.close)
        prepare(rt_s, args.small, "small")
        first, last, gen_s = prepare(rt_l, large, "large")
        sizes = table_sizes(rt_l)

        print(
            f"nothing due: {args.warmup} + {args.ticks} ticks per size, alternating …", flush=True
        )
        reset_peak_rss()
        rss0 = rss_mb()[0]
        nd = nothing_due([("small", rt_s), ("large", rt_l)], args.ticks, args.warmup)
        rss1 = maxrss_mb()
        plans = {"small": explain(rt_s), "large": explain(rt_l)}

        floor: dict[str, Any] | None = None
        if args.rounds:
            print(
                f"against the floor: {args.rounds} rounds of {args.due:,} due, alternating …",
                flush=True,
            )
            floor = against_floor(
                rt_l, first, last, n_due=args.due, rounds=args.rounds, offset=len(workers)
            )

        due_runs = []
        for k, w in enumerate(workers):
            print(f"falling due: {args.due:,} at one instant, {w} worker process(es) …", flush=True)
            due_runs.append(
                falling_due(
                    rt_l,
                    url_l,
                    first,
                    last,
                    n_due=args.due,
                    workers=w,
                    offset=k,
                    lead=args.lead,
                    timeout=args.timeout,
                )
            )

    # --- report ---
    print()
    print(f"# deadlines — {args.db} — {now_utc()} — {machine_line()}")
    print(f"src: {revision}")
    print(
        f"load average: {load_before} before, {load_average()} after; run took "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(
        f"generated: {args.small:,} and {large:,} requests, a running sign deadline each "
        f"(large: {gen_s:.0f} s, {large / gen_s:,.0f} requests/s); sizes {sizes}"
    )
    print()
    print("## nothing due")
    print(
        f"statements per call: fire_due {nd['large']['fire_due_stmts']}, Worker.tick "
        f"{nd['large']['tick_stmts']} (small: {nd['small']['fire_due_stmts']}, {nd['small']['tick_stmts']})"
    )
    print(f"RSS of this process: {rss0:.0f} MB before the ticks, peak {rss1:.0f} MB during them")
    print()
    print("| running deadlines | `fire_due` wall | CPU | `Worker.tick` wall | CPU |")
    print("|---|---|---|---|---|")
    for label, n in (("small", args.small), ("large", large)):
        r = nd[label]
        print(
            f"| {n:,} | {summary(r['fire_due'])} | {statistics.median(r['fire_due_cpu']):.2f} ms "
            f"| {summary(r['tick'])} | {statistics.median(r['tick_cpu']):.2f} ms |"
        )
    ratio_f = statistics.median(nd["large"]["fire_due"]) / statistics.median(
        nd["small"]["fire_due"]
    )
    ratio_t = statistics.median(nd["large"]["tick"]) / statistics.median(nd["small"]["tick"])
    met_nd = ratio_f < SAME_WITHIN and ratio_t < SAME_WITHIN
    print(
        f"\nlarge/small, medians: fire_due {ratio_f:.2f}×, tick {ratio_t:.2f}× "
        f"(same within noise = below {SAME_WITHIN}×): {'met' if met_nd else 'NOT met'}"
    )
    print("\nclaim query as sent:\n  " + plans["large"]["sql"].replace("\n", "\n  "))
    for setting in plans["large"]["settings"]:
        print(f"sent before it in its transaction, and before each EXPLAIN below: {setting}")
    for label in ("small", "large"):
        print(f"\nplan, {label} ({plans[label]['explain_s'] * 1000:.1f} ms):")
        for line in plans[label]["plan"]:
            print("  " + line)
        if "generic_plan" in plans[label]:
            print(f"generic plan (plan_cache_mode = force_generic_plan), {label}:")
            for line in plans[label]["generic_plan"]:
                print("  " + line)

    met_floor = True
    if floor is not None:
        print()
        print(
            f"## against the floor: {args.due:,} due at once, `fire_due` in process vs one "
            "transaction marking them fired and writing their timeline rows, alternating"
        )
        print("| round | load average | floor | fire_due | ratio | fire_due CPU |")
        print("|---|---|---|---|---|---|")
        for k in range(args.rounds):
            f, p = floor["floor"][k], floor["fire"][k]
            print(
                f"| {k + 1} | {floor['load'][k]} | {f:.2f} s | {p:.2f} s | {p / f:.1f}× | "
                f"{floor['fire_cpu'][k] / args.due * 1000:.3f} ms/deadline |"
            )
        ratio = statistics.median(floor["fire"]) / statistics.median(floor["floor"])
        met_floor = ratio <= FLOOR_TARGET
        print(
            f"\nmedians: floor {statistics.median(floor['floor']):.2f} s, fire_due "
            f"{statistics.median(floor['fire']):.2f} s: {ratio:.1f}× (target ≤ {FLOOR_TARGET:.0f}×): "
            f"{'met' if met_floor else 'NOT met'}"
        )
        print(f"statements of one more `fire_due` of {args.due:,}, untimed: {floor['fire_stmts']}")

    met_due = True
    for r in due_runs:
        print()
        print(f"## {r['due']:,} falling due at once, {r['workers']} worker process(es)")
        c = r["check"]
        ok = (
            c["missed"] == r["due"]
            and c["rung1"] == r["due"]
            and c["actions"].get("overdue") == r["due"]
            and c["actions"].get("escalate") == r["due"]
        )
        t = r["all_fired_s"]
        met = t is not None and t <= DUE_TARGET_S and ok
        met_due &= met
        done = (
            f"{t:.1f} s"
            if t is not None
            else f"NOT within {args.timeout:.0f} s ({r['remaining']} left)"
        )
        print(
            f"all fired {done} after T (50% at {secs(r['t50'])}, 90% at {secs(r['t90'])}); "
            f"first firing tick began {secs(r['first_fire_tick_start'], 2)} after T; machine busy {r['busy']:.0%}; "
            f"steps fired {r['fired']:,} ({r['fired'] / t if t else 0:,.0f} steps/s, "
            f"{r['due'] / t if t else 0:,.0f} deadlines/s)"
        )
        print(f"check: {c}  → {'exactly once each' if ok else 'WRONG'}")
        py = sum(p["cpu_firing"] for p in r["processes"])
        db = sum(p["db_cpu"] for p in r["processes"])
        print(
            f"CPU: worker processes {py:.1f} s in the firing ticks ({py / r['due'] * 1000:.2f} ms per "
            f"deadline), their PostgreSQL backends {db:.1f} s over the run "
            f"({db / r['due'] * 1000:.2f} ms per deadline; 0 on SQLite)"
        )
        for p in r["processes"]:
            spans = ", ".join(
                f"[{b - r['due_ts']:.2f}–{e - r['due_ts']:.2f} s] {f:,}" for b, e, f in p["ticks"]
            )
            print(
                f"  {p['name']}: RSS {p['rss_before']:.0f} MB before T, peak {p['rss_peak']:.0f} MB "
                f"from then to the end (now {p['rss_now']:.0f} MB); fired {p['fired']:,} steps in "
                f"{len(p['ticks'])} of {p['n_ticks']} ticks: {spans}"
            )
        print(f"  → {'met' if met else 'NOT met'} (target: all within {DUE_TARGET_S:.0f} s)")
        pd = r["plan_due"]
        print(
            f"the first claim of the burst, executed just before T ({pd['explain_s'] * 1000:.1f} ms):"
        )
        for line in pd["plan"]:
            print("  " + line)
    print()
    print("| benchmark | figure | target | met |")
    print("|---|---|---|---|")
    for label, n in (("small", args.small), ("large", large)):
        r = nd[label]
        print(
            f"| nothing-due tick, {args.db}, {n:,} running | fire_due {summary(r['fire_due'])}; "
            f"Worker.tick {summary(r['tick'])} | same at both sizes | |"
        )
    print(
        f"| ratio large/small | fire_due {ratio_f:.2f}×, tick {ratio_t:.2f}× | < {SAME_WITHIN}× | "
        f"{'met' if met_nd else 'NOT met'} |"
    )
    for r in due_runs:
        t = r["all_fired_s"]
        peak = max(p["rss_peak"] for p in r["processes"])
        base = max(p["rss_before"] for p in r["processes"])
        print(
            f"| {r['due']:,} due at once, {args.db}, {large:,} running, {r['workers']} worker(s) | "
            f"{secs(t)}; RSS {base:.0f} MB before T, peak {peak:.0f} MB after | "
            f"≤ {DUE_TARGET_S:.0f} s | {'met' if (t is not None and t <= DUE_TARGET_S) else 'NOT met'} |"
        )
    if floor is not None:
        ratio = statistics.median(floor["fire"]) / statistics.median(floor["floor"])
        print(
            f"| {args.due:,} due, `fire_due` / floor transaction, {args.db}, {large:,} running "
            f"| {ratio:.1f}× ({statistics.median(floor['fire']):.2f} s / "
            f"{statistics.median(floor['floor']):.2f} s, {args.rounds} alternating rounds) "
            f"| ≤ {FLOOR_TARGET:.0f}× | {'met' if met_floor else 'NOT met'} |"
        )
    return 0 if met_nd and met_due and met_floor else 1


if __name__ == "__main__":
    raise SystemExit(main())
