"""What the app costs before a handler runs: the ASGI middleware, FastAPI's route matching and
the dependencies up to the gate, per call, in process (no socket, no uvicorn).

    .venv/bin/python bench/routing.py [--n 3000] [--rounds 3]

FastAPI (0.165) tries the routes in the order they were included, and each level of included
routers matches again, so a route behind many others costs more to reach. Each call here is
answered before its handler: without credentials, the gate's 401 (the intake, a request, an
action, `auth/me`, the rates); `/healthz` runs its handler (one `SELECT`, SQLite). The app
as `create_app` builds it, each router of the API included in the app itself, alternates
`--rounds` times with the same app with those routers nested as they were until 2026-12-04
(in one router of the API, included in the app under /api/v1; the auth's four parts, one
level deeper still then, stay apart here), so the two see the same load.
Prints the process's CPU per call (the event loop and any thread), median over rounds. (Until
2026-12-04 it compared the order of the routers instead: BENCHMARKS.md, "Routing".)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import asgi_call, load_average, machine_line, make_settings, now_utc
from fastapi import APIRouter, Depends, FastAPI

from huying import migrate
from huying.api.deps import known_query
from huying.app import create_app
from huying.runtime import build_runtime

CALLS = [
    ("POST", "/api/v1/requests"),
    ("GET", "/api/v1/requests/1"),
    ("POST", "/api/v1/requests/1/actions/sign"),
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/reports/rates"),
    ("GET", "/healthz"),
]
API = "/api/v1"


def nested(app: FastAPI) -> FastAPI:
    """The app as it was until 2026-12-04: the API's routers in one router of the API (which
    carries `known_query`), included in the app under /api/v1, instead of each included in
    the app itself. The same routers in the same order (FastAPI's included routers keep the
    router they include as `original_router`)."""
    top = app.router.routes
    flat = [r for r in top if getattr(getattr(r, "include_context", None), "prefix", None) == API]
    api = APIRouter(dependencies=[Depends(known_query)])
    for route in flat:
        api.include_router(route.original_router)  # type: ignore[attr-defined]
    at = top.index(flat[0])
    app.include_router(api, prefix=API)
    one = top.pop()  # appended at the end; back where the API's routers were
    top[:] = [r for r in top if r not in flat]
    top.insert(at, one)
    app.router._mark_routes_changed()  # the version FastAPI caches its matching by
    return app


async def call(app: FastAPI, method: str, path: str) -> int:
    return await asgi_call(app, method, path, {"content-type": "application/json"}, b"{}")


async def per_call(app: FastAPI, method: str, path: str, n: int) -> float:
    """Process CPU µs per call, after 50 unmeasured."""
    for _ in range(50):
        await call(app, method, path)
    t = time.process_time()
    for _ in range(n):
        await call(app, method, path)
    return (time.process_time() - t) / n * 1e6


async def run(apps: dict[str, FastAPI], n: int, rounds: int) -> dict[tuple[str, str], list[float]]:
    statuses = {name: [await call(app, m, p) for m, p in CALLS] for name, app in apps.items()}
    if len({tuple(s) for s in statuses.values()}) != 1:
        raise SystemExit(f"the two apps answer differently: {statuses}")
    print(
        "statuses: "
        + ", ".join(f"{p} {s}" for (_, p), s in zip(CALLS, statuses["now"], strict=True))
    )
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, app in apps.items():
            for method, path in CALLS:
                times.setdefault((name, path), []).append(await per_call(app, method, path, n))
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="calls of each path in a round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(f"# routing bench, {now_utc()}; {machine_line()}; load {load_average()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="huying_bench_") as tmp:
        rt = build_runtime(make_settings(f"sqlite:///{Path(tmp) / 'bench.db'}"))
        try:
            migrate.upgrade(rt.db, calendar=rt.calendar)
            apps = {"now": create_app(rt), "nested": nested(create_app(rt))}
            times = asyncio.run(run(apps, args.n, args.rounds))
        finally:
            rt.close()
    print(
        f"\nn={args.n} calls per path and round, {args.rounds} rounds alternating; "
        f"load after {load_average()}\n"
    )
    print("| call | CPU µs, routers as now | nested as before | now / nested |\n|---|---|---|---|")
    for method, path in CALLS:
        now = statistics.median(times[("now", path)])
        then = statistics.median(times[("nested", path)])
        print(f"| `{method} {path}` | {now:,.0f} | {then:,.0f} | {now / then:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
