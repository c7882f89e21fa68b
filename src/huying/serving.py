"""Serving with several processes (`huying serve --workers N`): N uvicorn server processes,
each with its own listening socket on the one port, under uvicorn's supervisor; the worker
runs once, in the supervising process. And `ServedBy`, which names the answering process in
every answer."""

from __future__ import annotations

import functools
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from huying.settings import Settings

if TYPE_CHECKING:
    from huying.runtime import Runtime

log = logging.getLogger("huying")


SQLITE_ONE_WRITER = (
    "--workers: more than one server process needs PostgreSQL. SQLite lets one transaction "
    "write at a time, so a second process only waits for the first (measured: fewer "
    "submits per second than one process); serve SQLite with one process"
)


class ServedBy:
    """ASGI wrapper: every HTTP answer says which server process gave it
    (`X-Huying-Process: <pid>`), so that a load balancer's or an operator's request can tell
    the processes of `huying serve --workers N` apart."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.header = (b"x-huying-process", str(os.getpid()).encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_pid)


def served_process_app(settings: Settings) -> ServedBy:
    """The app of one of `huying serve --workers N`'s server processes, built in that process
    (uvicorn's factory): its own engine and pool, never the worker (the parent runs it once),
    never the migrations (the parent ran them before starting any of these)."""
    from huying import logs
    from huying.app import create_app
    from huying.runtime import build_runtime

    rt = build_runtime(settings)
    logs.configure(rt.settings.logging)
    return ServedBy(create_app(rt, run_worker=False))


def serve_processes(rt: Runtime, sock: socket.socket, *, workers: int, run_worker: bool) -> int:
    """N server processes on the port `sock` holds, under uvicorn's supervisor (each process
    spawned, one that dies replaced). This process supervises them and runs the worker,
    once for all of them; SIGTERM or Ctrl-C stops the servers, then the worker."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        functools.partial(served_process_app, rt.settings),
        factory=True,
        workers=workers,
        log_level="info",
        access_log=False,
        log_config=None,
    )
    sockets = _one_socket_each(sock, workers)
    scheduler = None
    if run_worker:
        from huying.worker import start_background

        scheduler = start_background(rt)
    supervisor = (_supervisor_class() if len(sockets) > 1 else Multiprocess)(
        config, sockets=sockets
    )
    try:
        supervisor.run()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
            logging.getLogger("huying.worker").info("worker stopped")
        for each in sockets:
            each.close()
        rt.close()
    failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    return 1 if failed else 0


def _one_socket_each(sock: socket.socket, n: int) -> list[socket.socket]:
    """`n` sockets on the address of `sock` (which is closed), bound with SO_REUSEPORT: Linux
    spreads new connections over them by their addresses. With one socket shared by all the
    processes, the process that wakes first accepts every connection waiting, so a client's
    keep-alive pool of 8 all went to one process of two. `sock` was bound without
    SO_REUSEPORT, so a port taken even by another `huying serve --workers` was refused.
    Where SO_REUSEPORT is missing: [sock], shared."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return [sock]
    address = sock.getsockname()[:2]
    sock.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(n):
            each = socket.socket(sock.family)
            sockets.append(each)
            each.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            each.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            each.bind(address)
    except OSError:
        for each in sockets:
            each.close()
        raise
    return sockets


def _supervisor_class() -> type[Any]:
    """uvicorn's supervisor with a socket per process (`_one_socket_each`): process i, and
    whichever replaces it, accepts from socket i (the parent keeps it open and listening, so
    connections sent to it while it restarts wait for the replacement)."""
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess, Process

    class OneSocketEach(Multiprocess):
        def _start(self, index: int) -> Process:
            process = Process(self.config, [self.sockets[index]])
            process.start()
            return process

        def init_processes(self) -> None:
            self.processes = [self._start(i) for i in range(len(self.sockets))]

        def keep_subprocess_alive(self) -> None:
            for index, process in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()  # hung or dead
                process.join()
                if process.exitcode == STARTUP_FAILURE:  # would fail again: stop
                    log.error("server process %s failed to start; stopping", process.pid)
                    self.should_exit.set()
                    return
                log.info("server process %s died; starting another", process.pid)
                self.processes[index] = self._start(index)

        def restart_all(self) -> None:  # SIGHUP: one by one, each on its own socket
            for index, old in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                old.terminate()
                old.join()
                self.processes[index] = self._start(index)

        def handle_ttin(self) -> None:  # more or fewer processes: one socket each, fixed
            log.info("SIGTTIN: the number of server processes is fixed by --workers")

        handle_ttou = handle_ttin

    return OneSocketEach
