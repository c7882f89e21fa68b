"""What the app costs before a handler runs: the ASGI middleware, FastAPI's route matching and
the dependencies up to the gate, per call, in process (no socket, no uvicorn).

    .venv/bin/python bench/routing.py [--n 3000] [--rounds 3]

FastAPI (0.165) tries the routes in the order they were included, and each level of included
routers matches again, so a route behind many others costs more to reach. Each call here is
answered before its handler: without credentials, the gate's 401 (the intake, a request, an
action, `auth/me`, the rates); `/healthz` runs its handler (one `SELECT`, SQLite). The app
as `create_app` builds it alternates `--rounds` times with the same app with the routers of
the API in the order they had until 2026-12-03 (auth, the directory and its import first, the
requests and attachments after them; `/healthz` after the whole API), so the two see the same
load. Prints the process's CPU per call (the event loop and any thread), median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import asgi_call, load_average, machine_line, make_settings, now_utc
from fastapi import FastAPI

from huying import migrate
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
BEFORE = ["/requests", "/attachments"]  # the API's routers that came after auth and directory


def old_order(app: FastAPI) -> FastAPI:
    """The app with the order before: the requests' and attachments' routers of the API back
    behind auth, the directory and its import, `/healthz` behind the API and Open311
    (FastAPI's included routers keep the router they include as `original_router`; changing
    `routes` in place is what `include_router` itself does)."""
    top = app.router.routes
    api = next(r for r in top if _prefix(r) == "/api/v1")
    inner = api.original_router.routes  # type: ignore[attr-defined]
    moved = [r for r in inner if _prefix(r) in BEFORE]
    rest = [r for r in inner if r not in moved]
    # they came just after the enterprises' import, before the alerts and the reports
    at = next(i for i, r in enumerate(rest) if _has(r, "/enterprises/import")) + 1
    inner[:] = rest[:at] + moved + rest[at:]
    health = next(r for r in top if _has(r, "/healthz"))
    top.remove(health)
    open311 = next(r for r in top if _prefix(r) == "/open311/v2")
    top.insert(top.index(open311) + 1, health)
    for router in (app.router, api.original_router):  # type: ignore[attr-defined]
        router._mark_routes_changed()  # the version FastAPI caches its matching by
    return app


def _prefix(route: Any) -> str | None:
    """An included router's prefix: its own, or the one it was included with."""
    router = getattr(route, "original_router", None)
    if router is None:
        return None
    return str(router.prefix or route.include_context.prefix)


def _has(route: Any, path: str) -> bool:
    """Whether an included router holds a route of this path (its own, without prefixes)."""
    router = getattr(route, "original_router", None)
    return router is not None and any(getattr(r, "path", "") == path for r in router.routes)


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
            apps = {"now": create_app(rt), "before": old_order(create_app(rt))}
            times = asyncio.run(run(apps, args.n, args.rounds))
        finally:
            rt.close()
    print(
        f"\nn={args.n} calls per path and round, {args.rounds} rounds alternating; "
        f"load after {load_average()}\n"
    )
    print("| call | CPU µs, routers as now | as before | now / before |\n|---|---|---|---|")
    for method, path in CALLS:
        now = statistics.median(times[("now", path)])
        before = statistics.median(times[("before", path)])
        print(f"| `{method} {path}` | {now:,.0f} | {before:,.0f} | {now / before:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
