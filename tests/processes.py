"""Helpers for tests that run real processes: `huying` subprocesses on a config written to
tmp_path, a Standard Webhooks receiver on a loopback port, and bounded polling.

Every process is started in its own session and killed by its pid in `Processes.close()`;
every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import yaml
from sqlalchemy import Engine, text

from huying.alerts import signing
from huying.runtime import Runtime, build_runtime
from huying.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
_SCRIPT = Path(sys.executable).with_name("huying")
HUYING = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "huying.cli"]
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64


# --- time -----------------------------------------------------------------------


def wait_until(
    what: str,
    predicate: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    diagnose: Callable[[], str] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{diagnose()}" if diagnose else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{extra}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- configuration ----------------------------------------------------------------

FAST_LIMITS = {
    "dispatch": "2 seconds",
    "sign": "3 seconds",
    "reply": "5 seconds",
    "feedback": "5 seconds",
}


def write_config(
    directory: Path,
    database_url: str,
    *,
    limits: dict[str, str] | None = None,
    ladder: tuple[str, str, str] = ("0 seconds", "2 seconds", "4 seconds"),
    tick: str = "0.2 seconds",
    batch_size: int = 500,
    port: int | None = None,
    pool_size: int = 10,
) -> Path:
    """A config with second-long limits, a three-rung ladder, a calendar that is all
    working time and webhooks allowed to loopback; returns its path."""
    limits = {**FAST_LIMITS, **(limits or {})}
    config: dict[str, Any] = {
        "database": {"url": database_url, "pool_size": pool_size},
        "server": {"host": "127.0.0.1", "port": port or 8000},
        "workflows": {"path": str(ROOT / "src/huying/data/workflows")},
        "calendar": {
            "timezone": "Asia/Shanghai",
            "working_hours": ["00:00-23:59"],
            "holidays": "none",
        },
        "time_limits": {"normal": limits, "urgent": limits},
        "warning_at": 0.75,
        "escalation": [
            {"after": ladder[0], "level": 1, "notify": ["department_head"]},
            {"after": ladder[1], "level": 2, "notify": ["street_leadership"]},
            {"after": ladder[2], "level": 3, "notify": ["district_supervision"]},
        ],
        "worker": {"tick": tick, "batch_size": batch_size},
        # the tests' webhook receivers listen on loopback, which webhooks refuse by default
        "webhooks": {"allow_hosts": ["127.0.0.1"]},
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def runtime_for(config: Path, **kwargs: Any) -> Runtime:
    """An in-test runtime on the same config the subprocesses read (the environment is
    ignored, as it is for them)."""
    return build_runtime(load_settings(config, environ={}), **kwargs)


# --- the database -------------------------------------------------------------------


def analyze(engine: Engine) -> None:
    """Gather planner statistics (PostgreSQL; nothing on SQLite)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


@contextmanager
def autoanalyze(engine: Engine, *, every: float = 2.0) -> Iterator[None]:
    """While the block runs, gather statistics every few seconds if autovacuum is off.

    The test cluster here runs PostgreSQL with autovacuum off; a fresh database has no
    statistics. Without them the delivery claim (huying.alerts.repository.claim_due) takes
    a plan that scans every delivery of the subscription for each candidate: 0.4 s a claim
    at 12,000 deliveries instead of 2 ms. With autovacuum on, it analyzes on its own within
    a minute of a burst, and this does nothing."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        if conn.execute(text("SHOW autovacuum")).scalar() == "on":
            yield
            return
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                analyze(engine)
            except Exception:  # the database went away with the test: stop quietly
                return

    thread = threading.Thread(target=run, name="autoanalyze", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


# --- processes --------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HUYING_CONFIG", "HUYING_DATABASE_URL")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, timeout: float = 60.0, stdin: str | None = None) -> str:
    """Run `huying ARGS` to completion; returns its standard output, fails on exit status."""
    done = subprocess.run(
        [*HUYING, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
        input=stdin,
    )
    assert done.returncode == 0, f"huying {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


# Log lines that say nothing when a test fails.
NOISE = (
    "transitions.core",
    "httpx: HTTP Request",
    "alembic.runtime.plugins",
    "maximum number of running instances reached",
    "apscheduler.executors.default: Running job",
    "executed successfully",
)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Processes:
    """Long-running `huying` processes, each logging to a file in `directory`."""

    directory: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Proc:
        log_path = self.directory / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            [*HUYING, *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        proc = Proc(name, popen, log_path, log_file)
        self.procs.append(proc)
        return proc

    def kill(self, proc: Proc) -> None:
        """SIGKILL: no cleanup of any kind."""
        if proc.alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)

    def terminate(self, proc: Proc, *, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit status."""
        if proc.alive():
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise AssertionError(
                f"{proc.name} did not stop within {timeout} s of SIGTERM"
            ) from None

    def logs(self) -> str:
        parts = []
        for proc in self.procs:
            proc.log_file.flush()
            text = proc.log_path.read_text(encoding="utf-8", errors="replace")
            parts.append(
                f"--- {proc.name} (pid {proc.pid}, exit {proc.popen.poll()}) ---\n{text[-3000:]}"
            )
        return "\n".join(parts)

    def close(self) -> None:
        for proc in self.procs:
            try:
                if proc.alive():
                    os.kill(proc.pid, signal.SIGKILL)
                proc.popen.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            finally:
                proc.log_file.close()


@contextmanager
def processes(directory: Path) -> Iterator[Processes]:
    group = Processes(directory)
    try:
        yield group
    finally:
        group.close()


# --- a webhook receiver --------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    n: int  # call number, from 1, in arrival order
    msg_id: str
    type: str
    request_id: int | None
    data: dict[str, Any]
    status: int
    occurred_at: datetime  # the event's instant, from the body
    arrived_at: datetime  # when the call came


# A policy gets (call number, webhook-id, whether this id was refused before) and answers a status.
Policy = Callable[[int, str, bool], int]


def always_ok(_n: int, _msg_id: str, _failed_before: bool) -> int:
    return 200


class EveryThirdCallFails:
    """A policy: a third of the calls get 503, but never the same message twice, so that
    each retry lands after the first backoff step (5 s) rather than the later, minutes-long
    ones. A call whose turn it is to fail but that is a retry passes the failure on to the
    next first attempt."""

    def __init__(self) -> None:
        self.owed = 0

    def __call__(self, n: int, _msg_id: str, failed_before: bool) -> int:
        if n % 3 == 0:
            self.owed += 1
        if self.owed and not failed_before:
            self.owed -= 1
            return 503
        return 200


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if not receiver.up:  # crashed: drop the connection without an answer
            self.close_connection = True
            return
        if len(raw) < length:  # the sender was killed mid-body: a call cut short, not a bad one
            self.close_connection = True
            return
        status = receiver.take(dict(self.headers.items()), raw)
        try:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the sender died while we held its call
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(("127.0.0.1", port), _Handler)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that checks every Standard Webhooks signature and
    records what it was sent. `stop()` takes it down (connections refused, open ones
    dropped), `start()` brings it back on the same port."""

    def __init__(self, *, secret: str = SECRET, policy: Policy = always_ok) -> None:
        self.secret = secret
        self.policy = policy
        self.port = free_port()
        self.lock = threading.Lock()
        self.calls: list[Received] = []
        self.bad_signatures = 0
        self.refused_ids: set[str] = set()
        self.up = False
        self.held = 0  # calls waiting for `release()`
        self._open = threading.Event()
        self._open.set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def hold(self) -> None:
        """From now on keep each call waiting, unanswered, until `release()`."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def take(self, headers: dict[str, str], raw: bytes) -> int:
        if not signing.verify(self.secret, headers, raw, now=time.time()):
            with self.lock:
                self.bad_signatures += 1
            return 401
        if not self._open.is_set():
            with self.lock:
                self.held += 1
            self._open.wait(timeout=30)
            with self.lock:
                self.held -= 1
        msg_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        body = json.loads(raw)
        request = (body.get("data") or {}).get("request") or {}
        with self.lock:
            n = len(self.calls) + 1
            status = self.policy(n, msg_id, msg_id in self.refused_ids)
            if status >= 300:
                self.refused_ids.add(msg_id)
            self.calls.append(
                Received(
                    n,
                    msg_id,
                    body["type"],
                    request.get("id"),
                    body.get("data") or {},
                    status,
                    datetime.fromisoformat(body["occurred_at"]),
                    datetime.now(UTC),
                )
            )
        return status

    def start(self) -> Receiver:
        self._server = _Server(self.port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.up = True
        return self

    def stop(self) -> None:
        self.up = False
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.calls)

    def accepted(self) -> list[Received]:
        return [c for c in self.snapshot() if 200 <= c.status < 300]

    def accepted_ids(self) -> set[str]:
        return {c.msg_id for c in self.accepted()}

    def first_acceptances(self) -> list[Received]:
        """Each accepted webhook-id once, at its first acceptance, in arrival order."""
        seen: set[str] = set()
        out = []
        for c in self.accepted():
            if c.msg_id not in seen:
                seen.add(c.msg_id)
                out.append(c)
        return out


@contextmanager
def receiving(receiver: Receiver) -> Iterator[Receiver]:
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
