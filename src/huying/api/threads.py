"""Where the JSON API's blocking work runs: a thread pool of the standard library's.

A route written as a plain `def` (all of the API's that touch the database) would be run by
FastAPI with Starlette's `run_in_threadpool`, which is anyio's `to_thread.run_sync`: a
capacity limiter, a cancel scope and a worker that reports back through
`call_soon_threadsafe`, about 65 µs of CPU per call here against 33 µs for the event loop's
own `run_in_executor` (a `/tmp` script, uvloop, 8 callers; BENCHMARKS.md, issue 16). A
submit makes one such call, so that is 1–2% of its CPU. The gate wraps such an endpoint in a
coroutine that runs it here instead (`huying.auth.gate`); FastAPI then awaits it as it would
an `async def`.

As with anyio: the context variables are copied to the thread, at most `MAX_THREADS` run at
once (anyio's default limit) and the others queue. Unlike anyio, a cancelled caller stops
waiting at once; the thread finishes its unit of work either way, committed or rolled back
by `Runtime.transaction`, as it would under anyio.

The JSON API's routes (`huying.auth.gate.GatedRoute`) run here; the console and Open311
still run on anyio's threads. What bounds the work on the database is its connection pool
either way: a thread beyond it waits for a connection, up to the pool's timeout.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

MAX_THREADS = 40  # anyio's default limit for `to_thread.run_sync`

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """The process's pool, made on first use (so a forked or spawned worker makes its own)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="huying-api")
    return _pool


async def run_sync(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)` on the pool, in a copy of the caller's context."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)
