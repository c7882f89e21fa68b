"""The worker: APScheduler (in-memory job store) ticks; the database rows are the schedule.

`huying worker` runs it alone; `huying serve` runs it in-process unless --no-worker.
Any number of workers may run on PostgreSQL; on SQLite, one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.exc import SQLAlchemyError

from huying.alerts import delivery as alerts
from huying.deadlines.firing import fire_due
from huying.deadlines.models import WorkerHeartbeat
from huying.durations import parse_duration
from huying.runtime import Runtime

log = logging.getLogger("huying.worker")


@dataclass
class Worker:
    rt: Runtime
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    started_at: datetime | None = None
    jobs: list[Callable[[datetime], int]] = field(default_factory=list)  # extra per-tick jobs

    def tick(self, now: datetime | None = None) -> int:
        """One pass: fire what is due, run the extra jobs, record the heartbeat."""
        now = now or self.rt.now()
        self.started_at = self.started_at or now
        try:
            fired = fire_due(self.rt, now=now).fired
            for job in self.jobs:
                fired += job(now)
            self._heartbeat(now, fired)
        except SQLAlchemyError as exc:  # the database is away: the next tick tries again
            log.warning("tick failed, retrying next tick: %s", exc.__class__.__name__)
            return 0
        if fired:
            log.info("tick fired %d step(s)", fired)
        return fired

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

    def interval_seconds(self) -> float:
        return max(0.05, parse_duration(self.rt.settings.worker.tick).seconds)


def _schedule(scheduler: Any, worker: Worker) -> None:
    scheduler.add_job(
        worker.tick,
        "interval",
        seconds=worker.interval_seconds(),
        id="tick",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
        next_run_time=datetime.now(worker.rt.calendar.tz),
    )


def build_worker(rt: Runtime) -> Worker:
    """Deadlines, then alert fan-out and webhook delivery, each tick."""
    http = alerts.make_client()
    return Worker(rt, jobs=[lambda now: alerts.tick(rt, client=http, now=now)])


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
        log.info("signal %d: stopping after the current tick", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("worker %s ticking every %ss", worker.name, worker.interval_seconds())
    scheduler.start()
