from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huying.db import Base, BigID, UTCDateTime

if TYPE_CHECKING:
    from huying.requests.models import Request, RequestTask

# The timer of an approved suspension: no warning, no ladder; at its due instant the worker
# resumes the request. Its length is the one approved, not a configured time limit.
SUSPENSION = "suspension"
TASK = "task"  # a task's own limit: its steps are task_warn, task_overdue, task_escalate
REVIEW = "review"  # a return under the dispatcher's review: a warning and overdue, no ladder


class Deadline(Base):
    """One time limit of a request (dispatch, sign, reply, feedback, review), of one of its
    tasks (kind `task`), or the length of an approved suspension (kind `suspension`: at its
    due instant the worker resumes the request).

    status: running → (warning) → missed once the due instant passes; met or
    cancelled when its state is left; paused while the request is suspended.
    `next_fire_at` is the next instant the worker must look at this row (its
    warning, its due instant, the next escalation rung); NULL when nothing is
    left to fire. The worker's query touches only rows due now (partial index).
    """

    __tablename__ = "deadlines"
    __table_args__ = (
        Index(  # in the claim's order: oldest first, ties by id
            "ix_deadlines_next_fire_at",
            "next_fire_at",
            "id",
            postgresql_where=text("next_fire_at IS NOT NULL"),
            sqlite_where=text("next_fire_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    # kind `task`: the task (request_tasks.id) whose deadline this is. No foreign key (the
    # column came after the table, and SQLite cannot add one); both go with their request.
    task_id: Mapped[int | None] = mapped_column(BigID, index=True)
    status: Mapped[str] = mapped_column(String(16))
    duration: Mapped[str] = mapped_column(
        String(64)
    )  # the limit as configured, e.g. "5 working days"
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remaining: Mapped[str | None] = mapped_column(String(64))  # while paused: what is left
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rungs_fired: Mapped[int] = mapped_column(Integer, default=0)
    # Extensions approved on this deadline: how many, and the working seconds they added
    # together (the cap `extension.max_length` is counted in working time).
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    extended_seconds: Mapped[int] = mapped_column(Integer, default=0)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    request: Mapped[Request] = relationship(lazy="raise")
    # Set when a task's deadline is created (the flush fills task_id from it).
    task: Mapped[RequestTask | None] = relationship(
        lazy="raise", primaryjoin="foreign(Deadline.task_id) == RequestTask.id"
    )


class WorkerHeartbeat(Base):
    """One row per worker process: when it last finished a tick (shown by /healthz)."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_tick_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_total: Mapped[int] = mapped_column(Integer, default=0)
