"""The worker's two schedules (DESIGN.md, part two): a webhook receiver that never answers
holds the alerts job, never the deadline job; and a job whose database is away logs it and
tries again next tick."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.alerts.models import WebhookSubscription
from huying.clock import FrozenClock
from huying.requests.models import TimelineEntry
from huying.runtime import Runtime, build_runtime
from huying.worker import Worker, build_worker, start_background
from tests.conftest import T0, World, make_settings, submit_body
from tests.processes import wait_until


class SilentReceiver:
    """A webhook endpoint on loopback that accepts each connection and never answers."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.called = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # the listener closed
            while True:
                conn, _ = self._listener.accept()
                self.held.append(conn)
                self.called.set()

    def close(self) -> None:
        """Reset every held connection, so that the POSTs waiting on them fail at once."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (Linux)
        self._listener.close()
        for conn in self.held:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
        self._thread.join(timeout=10)


@pytest.fixture
def silent() -> Iterator[SilentReceiver]:
    receiver = SilentReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def fast(rt: Runtime, clock: FrozenClock) -> Iterator[Runtime]:
    """A runtime on the tests' database that ticks every 0.1 s, waits up to 5 minutes for
    a webhook's answer, and may post to loopback."""
    settings = make_settings(
        rt.settings.database_url,
        worker={"tick": "0.1 seconds"},
        webhooks={"timeout": "5 minutes", "allow_hosts": ["127.0.0.1"]},
    )
    runtime = build_runtime(settings, clock=clock)
    yield runtime
    runtime.close()


def timeline(rt: Runtime) -> list[str]:
    with rt.transaction() as s:
        return list(s.scalars(select(TimelineEntry.action).order_by(TimelineEntry.id)))


def test_a_receiver_that_never_answers_does_not_hold_deadlines(
    rt: Runtime,
    world: World,
    client: TestClient,
    clock: FrozenClock,
    fast: Runtime,
    silent: SilentReceiver,
) -> None:
    with rt.transaction() as s:
        s.add(
            WebhookSubscription(
                url=f"http://127.0.0.1:{silent.port}/hooks",
                event_types=["*"],
                secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                created_at=clock.now(),
            )
        )
    r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    scheduler = start_background(fast)
    try:
        # the alerts job is now waiting on the receiver, for up to 5 minutes
        wait_until("the receiver's first call", silent.called.is_set, timeout=60)
        clock.set(T0 + timedelta(days=2))  # the sign deadline is past
        wait_until("the overdue step", lambda: "overdue" in timeline(rt), timeout=60)
    finally:
        silent.close()  # the held POST fails at once: the alerts job ends its round
        scheduler.shutdown(wait=True)


def test_each_job_logs_a_database_away_and_returns(
    rt: Runtime, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The pool has no free connection (Unavailable, as during an outage): each job logs
    it and returns nothing, so the scheduler keeps ticking."""
    caplog.set_level(logging.WARNING)
    settings = make_settings(
        rt.settings.database_url,
        database={
            "url": rt.settings.database_url,
            "pool_size": 1,
            "pool_timeout": 0.2,
            "statement_timeout": 0.2,
        },
    )
    tight = build_runtime(settings, clock=clock)
    worker = build_worker(tight)
    try:
        with ExitStack() as stack:
            for _ in range(1 if tight.db.dialect.name == "sqlite" else 2):
                stack.enter_context(tight.db.connect())
            assert worker.tick() == 0
            assert worker.deliver() == 0
        assert "tick failed" in caplog.text and "delivery failed" in caplog.text
        assert worker.tick() == 0 and worker.deliver() == 0  # and back, nothing due
    finally:
        worker.close()
        tight.close()


def test_deliver_needs_a_webhook_client(rt: Runtime) -> None:
    with pytest.raises(RuntimeError, match="webhook client"):
        Worker(rt).deliver()


def test_stopping_the_scheduler_closes_the_webhook_client(rt: Runtime) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    from huying.worker import _schedule

    worker = build_worker(rt)
    scheduler = BackgroundScheduler(timezone=rt.calendar.tz)
    _schedule(scheduler, worker)
    scheduler.start(paused=True)  # no tick needed: only the shutdown matters here
    assert worker.http is not None and not worker.http.is_closed
    scheduler.shutdown(wait=True)
    assert worker.http.is_closed
