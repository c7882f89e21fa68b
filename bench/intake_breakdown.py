"""Where one intake's time goes: single-threaded, uncontended, wall time per operation.

    .venv/bin/python bench/intake_breakdown.py --db sqlite|postgresql [--n 300]

Each stage adds one layer to the one before, on the same fresh database, so the differences
say what each layer costs. Wall time is the median; CPU time (this thread's, or the server
process's for the HTTP stage) is the mean and is the figure to trust on a busy machine:

  bare         the bare Core transaction of bench/intake.py (same rows)
  auth         a transaction that only authenticates the API key
  submit       generations + auth (cached) + `huying.requests.service.take_in` (validate, route,
               engine, one INSERT per table)
  + present    + `presenters.present_written` (no read back) and the JSON body, as the route does
  ASGI         `POST /api/v1/requests` through `create_app` called on an event loop in this
               process (no socket, no uvicorn), one at a time: the CPU of every thread, and of
               the event loop's own (the handler runs on the thread pool, as under uvicorn)
  HTTP         `POST /api/v1/requests` over loopback to uvicorn, one client, one at a time

It also counts the SQL statements each stage sends (cursor executions: SQLite's BEGIN
IMMEDIATE is one; COMMIT, pool pings and savepoints are not counted), in a few calls of
its own before it is timed: the counting listener makes Huying send its statements through
SQLAlchemy's execution (`huying.db.insert_rows`), the same statements, more slowly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from _common import (
    asgi_call,
    build_world,
    fresh_database,
    load_average,
    machine_line,
    make_settings,
    now_utc,
    submit_body,
)
from intake import (
    _counts,
    _cpu_of,
    bare_once,
    capture_template,
    free_port,
    start_server,
    stop_server,
)
from sqlalchemy import event

from huying import migrate
from huying.app import create_app
from huying.auth.service import authenticate
from huying.requests import service
from huying.requests.presenters import present_written
from huying.requests.schemas import SubmitIn
from huying.runtime import Runtime, build_runtime


def timed(
    n: int, fn: Callable[[int], None], cpu_of: Callable[[], float] = time.thread_time
) -> tuple[float, float]:
    """(median wall ms, mean CPU ms) per call; CPU is this thread's unless `cpu_of` says whose."""
    for i in range(min(20, n)):
        fn(i)
    xs = []
    c0 = cpu_of()
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        xs.append(time.perf_counter() - t)
    return statistics.median(xs) * 1000, (cpu_of() - c0) / n * 1000


def asgi_in_process(rt: Runtime, token: str, n: int) -> tuple[float, float, float]:
    """`POST /api/v1/requests` through `create_app(rt)` called as an ASGI app on an event
    loop in this process, one call at a time (no socket, no uvicorn): (median wall ms, CPU ms
    per submit of the whole process, of the event loop's thread). The handler runs on the
    thread pool as under uvicorn; the rest of the process is idle meanwhile."""
    app = create_app(rt)
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}

    async def call(i: int) -> None:
        body = json.dumps(submit_body(title=f"新厂房用电增容 {i}")).encode()
        status = await asgi_call(app, "POST", "/api/v1/requests", headers, body)
        if status != 201:
            raise SystemExit(f"ASGI submit: {status}")

    async def run() -> tuple[float, float, float]:
        for i in range(min(20, n)):
            await call(i)
        xs = []
        process, loop = time.process_time(), time.thread_time()
        for i in range(n):
            t = time.perf_counter()
            await call(i)
            xs.append(time.perf_counter() - t)
        per = 1000 / n
        return (
            statistics.median(xs) * 1000,
            (time.process_time() - process) * per,
            (time.thread_time() - loop) * per,
        )

    return asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--db", choices=("sqlite", "postgresql"), required=True)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--pg-url", default=None)
    args = ap.parse_args()

    with fresh_database(args.db, args.pg_url) as url:
        rt = build_runtime(make_settings(url))
        migrate.upgrade(rt.db)
        token = build_world(rt)["integration"]

        @contextmanager
        def counting() -> Iterator[list[int]]:
            """The statements sent meanwhile; nothing is timed while this listens."""
            sent = [0]

            def count(*_: object) -> None:
                sent[0] += 1

            event.listen(rt.db, "before_cursor_execute", count)
            try:
                yield sent
            finally:
                event.remove(rt.db, "before_cursor_execute", count)

        def statements_of(fn: Callable[[int], None], calls: int = 5) -> float:
            with counting() as sent:
                for i in range(calls):
                    fn(1_000_000 + i)
            return sent[0] / calls

        def do_submit(i: int, with_present: bool) -> None:
            """As `POST /api/v1/requests` does: one statement for the caches' generations
            (and SQLite's next id), the credentials from the cache, the submit, the answer
            built from what it wrote."""
            body = SubmitIn.model_validate(submit_body(title=f"新厂房用电增容 {i}"))
            with rt.transaction() as s:
                service.start_submit(session=s)
                who = authenticate(session=s, token=token, now=rt.now())
                done = service.take_in(
                    rt=rt, session=s, principal=who, body=body, idempotency_key=None
                )
                if with_present:
                    assert done.names is not None
                    out = present_written(
                        s,
                        done.request,
                        deadlines=done.deadlines,
                        timeline=done.timeline,
                        names=done.names,
                        tz=rt.calendar.tz,
                    )
                    json.dumps(out.model_dump(mode="json"), ensure_ascii=False).encode()

        before = _counts(rt.db)
        do_submit(0, False)
        after = _counts(rt.db)
        with rt.db.connect() as conn:
            from sqlalchemy import func, select

            from huying.requests.models import Request

            rid = conn.scalar(select(func.max(Request.id)))
        assert rid is not None  # the submit above wrote one
        steps = capture_template(rt.db, rid, {k: after[k] - before.get(k, 0) for k in after})

        def auth_only(_: int) -> None:
            with rt.transaction() as s:
                authenticate(session=s, token=token, now=rt.now())

        stages: list[tuple[str, Callable[[int], None]]] = [
            ("bare Core transaction", lambda _: bare_once(rt.db, steps)),
            ("auth only", auth_only),
            ("auth + service.submit", lambda i: do_submit(i, False)),
            ("+ present + JSON body", lambda i: do_submit(i, True)),
        ]
        results = []
        for name, fn in stages:
            stmts = statements_of(fn)
            med, cpu = timed(args.n, fn)
            results.append((name, med, cpu, stmts))

        with counting() as sent:
            asgi_in_process(rt, token, 5)  # 5 to warm up, 5 more
        stmts = sent[0] / 10
        med, cpu, loop_cpu = asgi_in_process(rt, token, args.n)
        results.append(("ASGI app in process, one caller (CPU: every thread)", med, cpu, stmts))
        results.append(("… of which the event loop's thread", float("nan"), loop_cpu, float("nan")))

        port = free_port()
        log = Path(tempfile.gettempdir()) / f"huying_breakdown_{port}.log"
        proc = start_server(url, port, None, log)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                headers = {"Authorization": f"Bearer {token}"}

                def http(i: int) -> None:
                    r = client.post(
                        "/api/v1/requests",
                        json=submit_body(title=f"新厂房用电增容 {i}"),
                        headers=headers,
                    )
                    if r.status_code != 201:
                        raise SystemExit(f"{r.status_code} {r.text}")

                med, cpu = timed(args.n, http, lambda: _cpu_of(proc.pid))
                results.append(
                    ("HTTP POST, one client (CPU: the server process)", med, cpu, float("nan"))
                )
        finally:
            stop_server(proc)
            rt.close()
        log.unlink(missing_ok=True)

    print(f"# intake breakdown — {args.db} — {now_utc()} — {machine_line()}")
    print(f"n={args.n} per stage, single-threaded; load average at the end {load_average()}\n")
    print(
        "| stage | wall ms (median) | Python CPU ms (mean) | Δ CPU vs previous | SQL statements |"
    )
    print("|---|---|---|---|---|")
    prev = None
    for name, med, cpu, stmts in results:
        part = name.startswith("…")  # a part of the row above: no Δ, and not the next's base
        skip = part or name.startswith("auth only")
        delta = "" if prev is None or skip else f"{cpu - prev:+.2f}"
        st = "—" if stmts != stmts else f"{stmts:.0f}"
        wall = "—" if med != med else f"{med:.2f}"
        print(f"| {name} | {wall} | {cpu:.2f} | {delta} | {st} |")
        prev = prev if part else cpu
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
