"""The worker: APScheduler (in-memory job store) ticks; the database rows are the schedule.

Four jobs on their own schedules (DESIGN.md, part two: "Deadline firing and webhook
delivery run on separate schedules"), each at most once at a time:

- `deadlines`: fires what is due and records the heartbeat that /healthz shows;
- `alerts`: fans new events out to the subscriptions and sends the deliveries due;
- `attachments`: every few minutes, removes attachments left unbound past
  `attachments.unbound_hours`, and the stored bytes no attachment names any more;
- `reports`: every hour, folds the months that have ended and changed since into the
  rates' monthly rows (`huying.reports.rollups`).

A receiver that takes each POST to its timeout can hold the alerts job for minutes, and a
large clean-up its own; the deadline job keeps its own pace meanwhile, on a thread of its own.

`huying worker` runs it alone; `huying serve` runs it in-process unless --no-worker.
Any number of workers may run on PostgreSQL; on SQLite, one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import SQLAlchemyError

from huying.alerts import delivery as alerts
from huying.attachments import service as attachments
from huying.deadlines import service as deadlines
from huying.deadlines.models import WorkerHeartbeat
from huying.durations import parse_duration
from huying.errors import Unavailable
from huying.health import log_escalation_gaps
from huying.reports import rollups
from huying.requests.firing import fire_due
from huying.runtime import Runtime

log = logging.getLogger("huying.worker")

# The database is away (or its pool is exhausted): the job logs it and tries next tick.
DATABASE_AWAY = (SQLAlchemyError, Unavailable)
# How often the attachments job runs: an attachment unbound for a day can wait minutes more.
CLEAN_EVERY_SECONDS = 300.0
DEADLINE_JOB = "deadlines"


@dataclass
class Worker:
    rt: Runtime
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: datetime | None = None
    # The webhook client, kept for the worker's lifetime; `deliver` needs one.
    http: httpx.Client | None = None
    # After a tick: the next instant a deadline has a step to fire, as the tick read it (on
    # the runtime's clock), or None; the deadline job runs again then (`_tick_then_wake`).
    next_fire_at: datetime | None = None

    def tick(self, now: datetime | None = None) -> int:
        """The deadline job: fire what is due, record the heartbeat. Returns steps fired."""
        now = now or self.rt.now()
        self.started_at = self.started_at or now
        try:
            fired = fire_due(self.rt, now=now).fired
            self._heartbeat(now, fired)
        except DATABASE_AWAY as exc:
            self.next_fire_at = None
            log.warning("tick failed, retrying next tick: %s", exc.__class__.__name__)
            return 0
        if fired:
            log.info("tick fired %d step(s)", fired)
        return fired

    def seconds_to_next_fire(self) -> float | None:
        """How long from now (the runtime's clock) until the next step falls due, as the
        last tick read it; None when it read none."""
        if self.next_fire_at is None:
            return None
        return (self.next_fire_at - self.rt.now()).total_seconds()

    def deliver(self, now: datetime | None = None) -> int:
        """The alerts job: fan out the new events, send the deliveries due. Returns the
        attempts made."""
        if self.http is None:
            raise RuntimeError("Worker.deliver needs a webhook client (Worker.http)")
        try:
            return alerts.tick(self.rt, client=self.http, now=now or self.rt.now())
        except DATABASE_AWAY as exc:
            log.warning("delivery failed, retrying next tick: %s", exc.__class__.__name__)
            return 0

    def clean(self, now: datetime | None = None) -> int:
        """The attachments job: remove a batch of attachments left unbound too long, then
        (after that commit) the bytes no attachment names any more. Returns the
        attachments removed."""
        now = now or self.rt.now()
        batch = self.rt.settings.worker.batch_size
        try:
            with self.rt.transaction() as s:
                shas = attachments.remove_unbound(
                    session=s, settings=self.rt.settings, now=now, limit=batch
                )
            with self.rt.transaction() as s:
                forgotten = attachments.forget_unnamed(
                    session=s, settings=self.rt.settings, candidates=shas, limit=batch
                )
        except DATABASE_AWAY as exc:
            log.warning("attachment clean-up failed, retrying later: %s", exc.__class__.__name__)
            return 0
        if shas or forgotten:
            log.info("removed %d unbound attachment(s), %d unused file(s)", len(shas), forgotten)
        return len(shas)

    def fold(self) -> int:
        """The reports job: fold the months that have ended and changed since into the
        rates' monthly rows (`huying.reports.rollups`). Returns the months folded."""
        return rollups.fold_due(self.rt)

    def _heartbeat(self, now: datetime, fired: int) -> None:
        with self.rt.transaction() as s:
            row = s.get(WorkerHeartbeat, self.name)
            if row is None:
                row = WorkerHeartbeat(
                    name=self.name, started_at=self.started_at or now, fired_total=0
                )
                s.add(row)
            row.last_tick_at = now
            row.fired_total += fired
            self.next_fire_at = deadlines.next_fire_after(session=s, moment=now)

    def interval_seconds(self) -> float:
        return max(0.05, parse_duration(self.rt.settings.worker.tick).seconds)

    def close(self) -> None:
        """Close the webhook client; again is harmless."""
        if self.http is not None:
            self.http.close()


def _schedule(scheduler: BaseScheduler, worker: Worker) -> None:
    """The four jobs: the first two every tick, the clean-up every CLEAN_EVERY_SECONDS, the
    reports' fold every FOLD_EVERY_SECONDS; a
    job still running when its next run comes skips that run (max_instances=1), and a late
    one runs once, not once per missed tick. The deadline job also runs when the next step
    falls due, if that comes first (`_tick_then_wake`).

    The scheduler's shutdown closes the worker's webhook client: `shutdown(wait=True)`, as
    every caller does, announces it once the running jobs have finished."""
    scheduler.add_listener(lambda _event: worker.close(), EVENT_SCHEDULER_SHUTDOWN)
    tick = worker.interval_seconds()
    schedule_deadlines(scheduler, worker)
    _every(scheduler, "alerts", worker.deliver, tick, worker)
    _every(scheduler, "attachments", worker.clean, max(tick, CLEAN_EVERY_SECONDS), worker)
    _every(scheduler, "reports", worker.fold, max(tick, rollups.FOLD_EVERY_SECONDS), worker)


class _SkippedRunsAreTheDesign(logging.Filter):
    """Drops APScheduler's warning that a run was skipped because the job was still running:
    with max_instances=1 that is how a long tick (a burst of due deadlines, a slow webhook
    receiver) covers the runs it overlaps, once a second, so the warning would fill the log
    exactly when an operator reads it most. Every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_SKIPPED_RUNS = _SkippedRunsAreTheDesign()


def schedule_deadlines(scheduler: BaseScheduler, worker: Worker) -> None:
    """The deadline job alone (the other two need a webhook client): also what
    `bench/deadlines.py` runs."""
    _every(
        scheduler,
        DEADLINE_JOB,
        lambda: _tick_then_wake(scheduler, worker),
        worker.interval_seconds(),
        worker,
    )


def _every(
    scheduler: BaseScheduler, job_id: str, job: Callable[[], Any], seconds: float, worker: Worker
) -> None:
    # max_instances=1: a run the job's last one still covers is skipped, by design
    logging.getLogger("apscheduler.scheduler").addFilter(_SKIPPED_RUNS)  # once: a set
    scheduler.add_job(
        job,
        "interval",
        seconds=seconds,
        id=job_id,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(worker.rt.calendar.tz),
    )


def _tick_then_wake(
    scheduler: BaseScheduler, worker: Worker, *, wait: Callable[[float], bool] | None = None
) -> None:
    """A tick; then, while the next step falls due before the job's next run would come,
    wait for it and tick again at its instant: a step fires when it falls due, not up to a
    tick later. The next step is one after the tick's own instant (`next_fire_after`): one
    that fell due while the tick ran is fired at once; one due before it began and left
    (held by another worker, refused) waits for the next run, so the job never spins.

    The job waits in its own run rather than moving its next run: `shutdown(wait=True)`
    holds the scheduler's job-store lock while it waits for the running jobs, so a job
    asking for that lock would wait forever. The wait (`wait(seconds)`, False to stop)
    ends as soon as the scheduler shuts down."""
    wait = wait or (lambda seconds: _sleep_unless_stopping(scheduler, seconds))
    begin = time.monotonic()
    now: datetime | None = None
    while True:
        worker.tick(now)
        seconds, due = worker.seconds_to_next_fire(), worker.next_fire_at
        if seconds is None or due is None:
            return  # nothing left to fire
        if time.monotonic() - begin + max(seconds, 0.0) >= worker.interval_seconds():
            return  # the next run comes first (also ends a stream of steps due one by one)
        if seconds > 0 and not wait(seconds):
            return
        now = max(worker.rt.now(), due)


def _sleep_unless_stopping(scheduler: BaseScheduler, seconds: float) -> bool:
    """Sleep `seconds`, looking every 0.1 s whether the scheduler is shutting down (False)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if not scheduler.running:
            return False
        time.sleep(min(left, 0.1))
    return bool(scheduler.running)


def build_worker(rt: Runtime) -> Worker:
    return Worker(rt, http=alerts.make_client())


def start_background(rt: Runtime) -> BackgroundScheduler:
    """The worker inside `huying serve`."""
    scheduler = BackgroundScheduler(timezone=rt.calendar.tz)
    _schedule(scheduler, build_worker(rt))
    scheduler.start()
    return scheduler


def run_forever(rt: Runtime) -> None:
    """`huying worker`: tick until SIGTERM or SIGINT."""
    scheduler = BlockingScheduler(timezone=rt.calendar.tz)
    worker = build_worker(rt)
    _schedule(scheduler, worker)

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping after the current ticks", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s ticking every %ss", worker.name, worker.interval_seconds())
    # The worker is what fires escalations: say at its start which would reach nobody.
    log_escalation_gaps(rt)
    try:
        scheduler.start()
    finally:
        worker.close()
