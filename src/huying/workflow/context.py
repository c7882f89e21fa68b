"""What the engine works on: the request's snapshot, the actor, and the effects it returns.

What is built for every step fired (the snapshot, its clocks and tasks, the outcome, its
timeline row and events) is a plain slotted dataclass, not a frozen one: a frozen one's
`__init__` sets each field through `object.__setattr__`, three times as slow, and together
they were 5% of a burst of due deadlines. Nothing changes one once it is built: the engine
and its guards read them, and `huying.requests.service` writes what they say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

DeadlineOp = Literal["start", "stop", "pause", "resume", "extend"]


@dataclass(frozen=True, slots=True)
class Actor:
    id: str  # e.g. "user:zhangsan", "key:7", "system"
    role: str  # admin, dispatcher, supervisor, department, integration, system
    department: str | None = None


SYSTEM = Actor(id="system", role="system")


@dataclass(slots=True)
class Clock:
    """An open deadline as the workflow's guards read it: whether it runs, when it falls
    due, and how often it was extended."""

    status: str  # running, missed or paused
    due_at: datetime
    extension_count: int = 0


@dataclass(slots=True)
class TaskView:
    """A task of the request as the workflow reads it."""

    department: str
    kind: str  # assist, delegate
    status: str  # pending, signed, done, cancelled

    @property
    def open(self) -> bool:
        return self.status in ("pending", "signed")


@dataclass(slots=True)
class Snapshot:
    """The fields of a request that the workflow reads."""

    state: str
    lead_department: str | None = None
    co_departments: tuple[str, ...] = ()
    return_count: int = 0
    reopen_count: int = 0
    escalation_level: int = 0
    rating: str | None = None
    resolved: bool | None = None
    pending_extension: Mapping[str, Any] | None = None
    pending_suspension: Mapping[str, Any] | None = None
    suspension_count: int = 0
    clocks: Mapping[str, Clock] = field(default_factory=dict)  # open deadlines by kind
    tasks: Mapping[int, TaskView] = field(default_factory=dict)  # by task id
    returned_from: str | None = None  # the state a return under review came from


@dataclass(frozen=True, slots=True)
class DeadlineEffect:
    op: DeadlineOp
    kind: str
    outcome: Literal["met", "cancelled"] | None = None  # for stop
    # for extend: a duration, e.g. "2 working days"; for start: a length that replaces the
    # configured time limit (a suspension's approved length)
    by: str | None = None
    asked_at: datetime | None = None  # for extend: when it was asked (lifts overdue if in time)


TaskOp = Literal["create", "sign", "reply", "cancel"]


@dataclass(frozen=True, slots=True)
class TaskEffect:
    """A change to the request's tasks: create one for `department` (of `kind`, with the
    lead's `note` and optional own `limit`), or sign, reply to or cancel task `task_id`."""

    op: TaskOp
    task_id: int | None = None
    department: str | None = None
    kind: str | None = None
    note: str | None = None
    limit: str | None = None
    content: str | None = None


@dataclass(slots=True)
class EventDraft:
    type: str
    data: Mapping[str, Any]


@dataclass(slots=True)
class TimelineDraft:
    action: str
    from_state: str | None
    to_state: str
    actor: str
    role: str
    at: datetime
    note: str | None
    data: Mapping[str, Any]
    public: bool = False  # shown in the public view


@dataclass(slots=True)
class Outcome:
    """The result of firing one trigger: everything the caller must persist in one transaction."""

    trigger: str
    from_state: str | None
    state: str
    changes: Mapping[str, Any]  # request fields to update (never `state`; that is `state` above)
    timeline: TimelineDraft
    deadlines: tuple[DeadlineEffect, ...]
    events: tuple[EventDraft, ...]
    tasks: tuple[TaskEffect, ...] = ()


@dataclass(slots=True)
class Context:
    """Mutable scratchpad for one firing; guards read it, actions write to it."""

    snapshot: Snapshot
    actor: Actor
    payload: Mapping[str, Any]
    now: datetime
    rules: Mapping[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)
    events: list[EventDraft] = field(default_factory=list)
    deadlines: list[DeadlineEffect] = field(default_factory=list)
    tasks: list[TaskEffect] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)  # the names of the guards that refused
    fired: Any = None  # the TransitionSpec that applied

    def get(self, field_name: str) -> Any:
        """A request field as it stands after the changes made so far in this firing."""
        if field_name in self.changes:
            return self.changes[field_name]
        return getattr(self.snapshot, field_name)

    def emit(self, type_: str, **data: Any) -> None:
        self.events.append(EventDraft(type_, data))
