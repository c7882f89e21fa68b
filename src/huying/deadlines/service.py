"""Deadline rows: started, stopped, paused, resumed and extended as the engine's effects say,
with due and warning instants counted on the business calendar; and what the worker fires
next on a deadline that has come due."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy.orm import Session

from huying.calendar import BusinessCalendar
from huying.db import held
from huying.deadlines import repository as repo
from huying.deadlines.models import REVIEW, SUSPENSION, TASK, Deadline, WorkerHeartbeat
from huying.durations import Duration, parse_duration
from huying.settings import Rung, Settings
from huying.workflow.context import DeadlineEffect

if TYPE_CHECKING:
    from huying.requests.models import Request, RequestTask

# Deadlines whose lateness is not the lead department's (`Request.overdue` leaves them out).
NOT_THE_LEADS = frozenset({SUSPENSION, TASK, REVIEW})


def open_of_requests(
    *,
    session: Session,
    request_ids: Sequence[int],
    loaded: Sequence[Deadline] = (),
    tasks: bool = True,
) -> dict[int, list[Deadline]]:
    """The open deadlines of each of these requests, oldest first; those of `loaded` (held
    already, e.g. claimed) are not read again. Without `tasks`, those of the requests'
    tasks are left out (`open_of_tasks` reads them), but for those of `loaded`."""
    return repo.open_by_request(session, request_ids, loaded=loaded, tasks=tasks)


def open_of_tasks(*, session: Session, request_ids: Sequence[int]) -> list[Deadline]:
    """The open deadlines of these requests' tasks, without flushing the session (those it
    holds stay as it holds them)."""
    return repo.open_of_tasks(session, request_ids)


def write_changed(*, session: Session, rows: Iterable[Deadline], settle: bool = True) -> int:
    """UPDATE what changed on these loaded (and locked) deadlines at once: the worker's batch
    writes, see `huying.deadlines.repository.write_changed`."""
    return repo.write_changed(session, rows, settle=settle)


def of_requests(*, session: Session, request_ids: Sequence[int]) -> dict[int, list[Deadline]]:
    """Every deadline of each of these requests, open or ended, oldest first."""
    return repo.all_by_request(session, request_ids)


def heartbeats(*, session: Session, limit: int) -> Sequence[WorkerHeartbeat]:
    """The workers' heartbeats, the most recent tick first."""
    return repo.heartbeats(session, limit=limit)


def next_fire_after(*, session: Session, moment: datetime) -> datetime | None:
    """The next instant after `moment` at which some deadline has a step to fire."""
    return repo.next_fire_after(session, moment)


def ticks(*, session: Session) -> tuple[int, datetime | None]:
    """How many workers have ever ticked, and the most recent tick of any."""
    return repo.ticks(session)


# What `next_fire_at` and `next_step` read of a deadline, read at once: the worker asks
# both of each deadline for every step it fires.
_STEPPING = held(
    "completed_at", "status", "warned_at", "warn_at", "due_at", "missed_at", "kind", "rungs_fired"
)


def next_fire_at(d: Deadline, *, settings: Settings, calendar: BusinessCalendar) -> datetime | None:
    """The next instant the worker must look at this deadline: its warning, its due instant,
    or its next escalation rung; None when nothing is left to fire."""
    warn_at: datetime | None
    due_at: datetime
    completed_at, status, warned_at, warn_at, due_at, missed_at, kind, rungs_fired = _STEPPING(d)
    if completed_at is not None or status == "paused":
        return None
    if warned_at is None and warn_at is not None and warn_at < due_at:
        return warn_at
    if missed_at is None:
        return due_at
    if kind in ("feedback", SUSPENSION, REVIEW):  # feedback auto-closes; none has a ladder
        return None
    ladder = settings.escalation
    if rungs_fired < len(ladder):
        return calendar.add(due_at, ladder[rungs_fired].delay)
    return None


@dataclass(slots=True)  # one for every step fired: not frozen (see huying.workflow.context)
class Step:
    """The one step `next_fire_at` points at: the system action to fire, and for `escalate`
    the rung of the ladder (`number` counts from 1)."""

    action: Literal[
        "warn",
        "overdue",
        "auto_close",
        "escalate",
        "resume",
        "task_warn",
        "task_overdue",
        "task_escalate",
    ]
    rung: Rung | None = None
    number: int = 0


def next_step(d: Deadline, *, settings: Settings) -> Step:
    """The step `next_fire_at` points at; a task's deadline fires the task's own steps."""
    _, _, warned_at, warn_at, due_at, missed_at, kind, rungs_fired = _STEPPING(d)
    if kind == SUSPENSION:
        return Step("resume")
    task = kind == TASK
    if warned_at is None and warn_at is not None and warn_at < due_at:
        return Step("task_warn" if task else "warn")
    if missed_at is None:
        if task:
            return Step("task_overdue")
        return Step("auto_close" if kind == "feedback" else "overdue")
    rung = settings.escalation[rungs_fired]
    return Step("task_escalate" if task else "escalate", rung=rung, number=rungs_fired + 1)


def mark_fired(d: Deadline, step: Step, *, due: datetime) -> None:
    """Record on the deadline that `step` fired at `due`. Called only once the engine has
    accepted the step's action, before its outcome is applied (which reads the marks). A
    resumption marks nothing: its outcome ends the suspension's timer."""
    if step.action == "resume":
        return
    if step.action in ("warn", "task_warn"):
        d.warned_at = due
    elif step.action in ("escalate", "task_escalate"):
        d.rungs_fired = step.number
    else:
        d.missed_at = d.due_at
        d.status = "missed"


class DeadlinePlanner:
    """Applies an outcome's deadline effects to one request's rows."""

    def __init__(self, *, settings: Settings, calendar: BusinessCalendar) -> None:
        self.settings = settings
        self.calendar = calendar

    def limit(self, kind: str, *, urgency: str, overrides: dict[str, str] | None) -> Duration:
        return self.settings.limit_for(urgency, kind, overrides)

    def _schedule(self, d: Deadline) -> None:
        d.next_fire_at = next_fire_at(d, settings=self.settings, calendar=self.calendar)

    def start(
        self,
        session: Session,
        *,
        request: Request,
        kind: str,
        duration: Duration,
        now: datetime,
        task: RequestTask | None = None,
    ) -> Deadline:
        due = self.calendar.add(now, duration)
        warn: datetime | None = None
        if kind != SUSPENSION:
            warn = self.calendar.point_at(now, due, self.settings.warning_at, duration.kind)
        d = Deadline(
            request=request,
            kind=kind,
            status="running",
            duration=duration.text,
            started_at=now,
            due_at=due,
            warn_at=warn if warn is not None and warn < due else None,
            rungs_fired=0,
            extension_count=0,
            extended_seconds=0,
            task=task,
            version=1,
        )
        self._schedule(d)
        if request in session:  # (a submit's are written by `requests.repository.insert_new`)
            session.add(d)
        return d

    def apply(
        self,
        session: Session,
        *,
        request: Request,
        effects: Iterable[DeadlineEffect],
        now: datetime,
        overrides: dict[str, str] | None,
        current: list[Deadline] | None = None,
        finished: list[Deadline] | None = None,
    ) -> list[Deadline]:
        """Apply effects; returns the request's deadlines that are still open afterwards.
        The deadlines a `stop` effect ends (met, missed or cancelled) are appended to `finished`."""
        effects = list(effects)
        if current is not None:
            rows = current
        elif request.id is not None:
            rows = repo.open_of(session, request.id)
        else:
            rows = []
        for effect in effects:
            mine = [d for d in rows if d.kind == effect.kind and d.completed_at is None]
            if effect.op == "start":
                for d in mine:  # a new round replaces any open one of the same kind
                    self._finish(d, "cancelled", now)
                duration = (
                    parse_duration(effect.by)
                    if effect.by
                    else self.limit(effect.kind, urgency=request.urgency, overrides=overrides)
                )
                rows.append(
                    self.start(
                        session, request=request, kind=effect.kind, duration=duration, now=now
                    )
                )
            elif effect.op == "stop":
                for d in mine:
                    self._finish(d, effect.outcome or "met", now)
                    if finished is not None:
                        finished.append(d)
            elif effect.op == "pause":
                for d in mine:
                    self._pause(d, now)
            elif effect.op == "resume":
                for d in mine:
                    self._resume(d, now)
            elif effect.op == "extend" and effect.by:
                for d in mine:
                    self._extend(d, parse_duration(effect.by), now, asked_at=effect.asked_at)
        return [d for d in rows if d.completed_at is None]

    def end_task(
        self, rows: list[Deadline], task_id: int, outcome: str, now: datetime
    ) -> Deadline | None:
        """End the open deadline of task `task_id` (met or missed by the time, or
        cancelled); returns it, or None if it had none open."""
        for d in rows:
            if d.kind == TASK and d.task_id == task_id and d.completed_at is None:
                self._finish(d, outcome, now)
                return d
        return None

    def _finish(self, d: Deadline, outcome: str, now: datetime) -> None:
        d.completed_at = now
        if outcome == "cancelled":
            d.status = "cancelled"
        elif d.status != "missed":
            d.status = "met" if now <= d.due_at else "missed"
        if d.status == "missed" and d.missed_at is None:
            d.missed_at = d.due_at
        d.next_fire_at = None
        d.version += 1

    def _pause(self, d: Deadline, now: datetime) -> None:
        kind = parse_duration(d.duration).kind
        d.remaining = self.calendar.remaining(d.due_at, now, kind).text
        d.paused_at = now
        d.status = "paused"
        d.next_fire_at = None
        d.version += 1

    def _resume(self, d: Deadline, now: datetime) -> None:
        if d.status != "paused" or d.remaining is None or d.paused_at is None:
            return
        remaining = parse_duration(d.remaining)
        old_due, paused_at = d.due_at, d.paused_at
        d.due_at = self.calendar.add(now, remaining)
        if d.warn_at is not None and d.warned_at is None:
            if remaining.kind == "calendar":
                d.warn_at = now + (d.warn_at - paused_at) if d.warn_at > paused_at else now
            else:
                before_warn = self.calendar.working_seconds_between(paused_at, d.warn_at)
                d.warn_at = self.calendar.add_working_seconds(now, before_warn)
            if d.warn_at >= d.due_at:
                d.warn_at = None
        d.status = "missed" if d.missed_at is not None else "running"
        d.paused_at = None
        d.remaining = None
        if d.due_at < old_due:  # never earlier than it was
            d.due_at = old_due
        self._schedule(d)
        d.version += 1

    def _extend(
        self, d: Deadline, by: Duration, now: datetime, *, asked_at: datetime | None
    ) -> None:
        """Move the due instant on by `by` (while paused, what remains grows with it) and
        count the extension. A deadline that had passed runs again only if the extension was
        asked before it passed and the new due instant is still ahead; the overdue and the
        rungs already fired stay in the timeline and in the level (`rungs_fired` is kept: a
        rung reached is not reached twice)."""
        old_due = d.due_at
        d.due_at = self.calendar.add(old_due, by)
        if d.status == "paused" and d.paused_at is not None:
            kind = parse_duration(d.duration).kind
            d.remaining = self.calendar.remaining(d.due_at, d.paused_at, kind).text
        d.extension_count = (d.extension_count or 0) + 1
        added = self.calendar.working_seconds_between(old_due, d.due_at)
        d.extended_seconds = (d.extended_seconds or 0) + round(added)
        asked_in_time = d.missed_at is None or (asked_at is not None and asked_at < d.missed_at)
        if d.missed_at is not None and asked_in_time and d.due_at > now:
            d.missed_at = None
            if d.status == "missed":
                d.status = "running"
        self._schedule(d)
        d.version += 1
