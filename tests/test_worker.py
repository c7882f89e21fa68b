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
from datetime import datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.alerts.models import WebhookSubscription
from huying.clock import FrozenClock
from huying.deadlines.models import Deadline
from huying.requests.models import TimelineEntry
from huying.runtime import Runtime, build_runtime
from huying.worker import (
    Worker,
    _tick_then_wake,
    build_worker,
    schedule_deadlines,
    start_background,
)
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
            assert worker.fold() == 0
        assert "tick failed" in caplog.text and "delivery failed" in caplog.text
        assert "report months not folded" in caplog.text
        assert worker.tick() == 0 and worker.deliver() == 0  # and back, nothing due
        assert worker.fold() == 0  # no request: no month to fold
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
    assert {job.id for job in scheduler.get_jobs()} == {
        "deadlines",
        "alerts",
        "attachments",
        "reports",
    }
    assert worker.http is not None and not worker.http.is_closed
    scheduler.shutdown(wait=True)
    assert worker.http.is_closed


def test_runs_a_long_tick_covers_are_not_logged_as_warnings(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """APScheduler warns once per run a still-running job skips (max_instances=1, as
    designed: a burst's tick covers the runs it overlaps); the worker drops that warning
    and nothing else the scheduler says. The message is APScheduler 3's own
    (`BaseScheduler._process_jobs`)."""
    scheduler = BackgroundScheduler(timezone=rt.calendar.tz)
    schedule_deadlines(scheduler, Worker(rt))
    says = logging.getLogger("apscheduler.scheduler")
    with caplog.at_level(logging.INFO, logger="apscheduler.scheduler"):
        says.warning(
            'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
            "deadlines",
            1,
        )
        says.warning('Run time of job "%s" was missed by %s', "deadlines", "0:00:03")
    assert [r.getMessage() for r in caplog.records] == [
        'Run time of job "deadlines" was missed by 0:00:03'
    ]


def next_step_at(rt: Runtime) -> datetime:
    with rt.transaction() as s:
        at: datetime | None = s.scalar(select(func.min(Deadline.next_fire_at)))
    assert at is not None
    return at


def test_a_tick_reads_when_the_next_step_falls_due(
    rt: Runtime, world: World, client: TestClient, clock: FrozenClock
) -> None:
    worker = Worker(rt)
    worker.tick()
    assert worker.next_fire_at is None and worker.seconds_to_next_fire() is None  # none yet
    r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    worker.tick()
    warn = next_step_at(rt)  # the sign deadline's warning
    assert worker.next_fire_at == warn
    assert worker.seconds_to_next_fire() == (warn - clock.now()).total_seconds()
    clock.set(warn)
    assert worker.tick() == 1  # the warning; the next step is its due instant
    assert worker.next_fire_at == next_step_at(rt) > warn


def test_the_deadline_job_fires_a_step_at_its_instant_not_a_tick_later(
    rt: Runtime, world: World, client: TestClient, clock: FrozenClock
) -> None:
    """After a tick, a step falling due before the job's next run is waited for and fired
    at its instant, in the same run; one after the next run is left to it. The wait is the
    test's: it moves the clock instead of sleeping."""
    r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    warn = next_step_at(rt)
    slow = build_runtime(
        make_settings(rt.settings.database_url, worker={"tick": "30 seconds"}), clock=clock
    )
    worker = Worker(slow)
    scheduler = BackgroundScheduler(timezone=rt.calendar.tz)
    waited: list[float] = []

    def wait(seconds: float) -> bool:
        waited.append(seconds)
        clock.set(clock.now() + timedelta(seconds=seconds))
        return True

    try:
        clock.set(warn - timedelta(seconds=60))  # after the next run: left to it
        _tick_then_wake(scheduler, worker, wait=wait)
        assert waited == [] and "warn" not in timeline(rt)

        clock.set(warn - timedelta(seconds=2))  # before it: waited for, fired at once
        _tick_then_wake(scheduler, worker, wait=wait)
        assert waited == [2.0]
        assert timeline(rt)[-1] == "warn"
        with rt.transaction() as s:
            at = s.scalar(select(TimelineEntry.at).order_by(TimelineEntry.id.desc()).limit(1))
        assert at == warn
    finally:
        slow.close()


def test_stopping_while_the_deadline_job_waits_does_not_hang(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown while the deadline job runs, and then waits 20 s for its next step,
    ends as soon as the tick does: the wait gives way to the shutdown, and the job never
    asks for the lock that `shutdown(wait=True)` holds while it waits for running jobs."""
    slow = build_runtime(make_settings(rt.settings.database_url, worker={"tick": "60 seconds"}))
    worker = Worker(slow)
    entered, release = threading.Event(), threading.Event()

    def tick(now: datetime | None = None) -> int:
        entered.set()
        release.wait(timeout=30)
        return 0

    monkeypatch.setattr(worker, "tick", tick)
    monkeypatch.setattr(worker, "seconds_to_next_fire", lambda: 20.0)
    worker.next_fire_at = T0
    scheduler = BackgroundScheduler(timezone=rt.calendar.tz)
    schedule_deadlines(scheduler, worker)
    scheduler.start()
    try:
        assert entered.wait(timeout=30)
        stopping = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        stopping.start()
        wait_until("the shutdown begun", lambda: not scheduler.running, timeout=30)
        release.set()  # the tick ends while the shutdown waits for it
        stopping.join(timeout=10)
        assert not stopping.is_alive(), "the shutdown waits for the job's 20 s wait"
    finally:
        release.set()
        slow.close()


def test_a_step_that_fell_due_during_the_tick_fires_at_once(
    rt: Runtime, world: World, client: TestClient, clock: FrozenClock
) -> None:
    """The tick began just before the warning's instant and ended after it: the job ticks
    again at once, without waiting; a step due before a tick began is not looked at again
    by that run (it waits for the next)."""
    r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    warn = next_step_at(rt)
    worker = Worker(rt)
    ticks: list[datetime] = []
    real = worker.tick

    def tick(now: datetime | None = None) -> int:
        ticks.append(now or clock.now())
        fired = real(now)
        if len(ticks) == 1:
            clock.set(warn + timedelta(milliseconds=5))  # the tick ran past the warning
        return fired

    def wait(seconds: float) -> bool:
        raise AssertionError(f"waited {seconds} s for a step due already")

    worker.tick = tick  # type: ignore[method-assign]
    clock.set(warn - timedelta(milliseconds=5))
    _tick_then_wake(BackgroundScheduler(timezone=rt.calendar.tz), worker, wait=wait)
    assert ticks == [warn - timedelta(milliseconds=5), warn + timedelta(milliseconds=5)]
    assert timeline(rt)[-1] == "warn"


def test_steps_falling_due_one_by_one_during_ticks_end_at_the_next_run(
    rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tick ends after the next step's instant (a stream falling due one by one): the
    job ticks again at once, but not past its next run, which takes over from there."""
    quick = build_runtime(
        make_settings(rt.settings.database_url, worker={"tick": "0.05 seconds"}), clock=clock
    )
    worker = Worker(quick)
    ticks: list[datetime | None] = []

    def tick(now: datetime | None = None) -> int:
        ticks.append(now)
        assert len(ticks) < 100_000, "the job never gives way to its next run"
        worker.next_fire_at = clock.now() - timedelta(milliseconds=1)  # fell due meanwhile
        return 1

    def wait(seconds: float) -> bool:
        raise AssertionError(f"waited {seconds} s for a step due already")

    monkeypatch.setattr(worker, "tick", tick)
    try:
        _tick_then_wake(BackgroundScheduler(timezone=rt.calendar.tz), worker, wait=wait)
    finally:
        quick.close()
    assert len(ticks) > 1 and ticks[0] is None  # ticked again at once, then stopped
