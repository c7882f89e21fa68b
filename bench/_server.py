"""The server the intake benchmark talks to: `huying.app.create_app(runtime)` under uvicorn on
127.0.0.1, one process, in the foreground until SIGINT/SIGTERM. Started by bench/intake.py.

    python bench/_server.py DATABASE_URL PORT [--profile OUT.prof]

With --bare-route, the app also gets `POST /api/v1/requests/_bench/bare/{request_id}`: a plain
sync endpoint (no auth, no body, no response model) that runs bench/intake.py's bare Core
transaction with the rows of that request as the template, to price the HTTP stack and the
client on their own. It is added to the requests' own router, just after the intake's routes,
so that it goes through what the intake goes through before its handler: FastAPI tries the
routes in order, and the API router's dependency (the unknown-query check) runs for it too.
Until 2026-12-03 it came after all of the app's 146 routes, matched about a hundred more
than the intake and skipped that dependency.

With --profile, cProfile (CPU time: time.thread_time) runs in the event-loop thread and in every worker thread that runs a
sync endpoint (one profiler per thread, merged into OUT.prof at shutdown).
"""

from __future__ import annotations

import argparse
import cProfile
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import uvicorn
from _common import make_settings

from huying.app import create_app
from huying.runtime import build_runtime


def _profile_threads(profiles: list[cProfile.Profile]) -> None:
    """Wrap the functions Starlette hands to worker threads so each thread is profiled."""
    import anyio.to_thread

    local = threading.local()
    lock = threading.Lock()
    original = anyio.to_thread.run_sync

    def profiled(func: Any) -> Any:
        def run(*args: Any) -> Any:
            prof = getattr(local, "prof", None)
            if prof is None:
                prof = local.prof = cProfile.Profile(time.thread_time)
                with lock:
                    profiles.append(prof)
            prof.enable()
            try:
                return func(*args)
            finally:
                prof.disable()

        return run

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        return await original(profiled(func), *args, **kwargs)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]


def _add_bare_route(rt: Any) -> None:
    """Before `create_app`, which includes the requests' router."""
    from fastapi.responses import JSONResponse
    from intake import bare_once, capture_template

    from huying.requests.router import router

    templates: dict[int, Any] = {}
    lock = threading.Lock()

    def bare(request_id: int) -> JSONResponse:
        steps = templates.get(request_id)
        if steps is None:
            with lock:
                steps = templates.setdefault(request_id, capture_template(rt.db, request_id, {}))
        bare_once(rt.db, steps)
        return JSONResponse({"ok": True}, status_code=201)

    router.add_api_route(
        "/_bench/bare/{request_id}", bare, methods=["POST"], include_in_schema=False
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("port", type=int)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--bare-route", action="store_true")
    args = ap.parse_args()

    rt = build_runtime(make_settings(args.url))
    if args.bare_route:
        _add_bare_route(rt)
    app = create_app(rt)
    profiles: list[cProfile.Profile] = []
    main_prof = None
    if args.profile:
        _profile_threads(profiles)
        main_prof = cProfile.Profile(time.thread_time)
        main_prof.enable()
    try:
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
        )
    finally:
        if main_prof is not None:
            import pstats

            main_prof.disable()
            stats = pstats.Stats(main_prof)
            for p in profiles:
                stats.add(p)
            stats.dump_stats(args.profile)
        rt.close()


if __name__ == "__main__":
    main()
