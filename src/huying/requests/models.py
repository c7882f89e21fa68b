from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huying.db import Base, BigID, JSONType, UTCDateTime


class Request(Base):
    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("idempotency_scope", "idempotency_key"),
        # One request per external_id and submitter: a second submit replays or is refused.
        # (Unique indexes: SQLite adds them to a stored table; a constraint needs a copy.)
        Index("uq_requests_submitted_by_external_id", "submitted_by", "external_id", unique=True),
        Index("uq_requests_receipt_token", "receipt_token", unique=True),
        Index("ix_requests_lead_department_code_created_at", "lead_department_code", "created_at"),
        Index("ix_requests_state_created_at", "state", "created_at"),
        Index("ix_requests_created_at", "created_at"),  # a report's period
        # the rates' 90th percentiles read a fact's seconds in order (huying.reports.repository);
        # partial: a new request has neither fact, so a submit writes no entry in these
        *(
            Index(
                f"ix_requests_{fact}",
                fact,
                "created_at",
                postgresql_where=text(f"{fact} IS NOT NULL"),
                sqlite_where=text(f"{fact} IS NOT NULL"),
            )
            for fact in ("sign_working_seconds", "first_reply_working_seconds")
        ),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    workflow_name: Mapped[str] = mapped_column(String(64))
    workflow_version: Mapped[int] = mapped_column(Integer)
    # Written only from the engine's outcome (huying.requests.service); never assigned elsewhere.
    state: Mapped[str] = mapped_column(String(32))
    enterprise_uscc: Mapped[str] = mapped_column(
        String(18), ForeignKey("enterprises.uscc", ondelete="RESTRICT"), index=True
    )
    category_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("categories.code", ondelete="RESTRICT"), index=True
    )
    urgency: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    grid_code: Mapped[str | None] = mapped_column(String(32), index=True)
    chain_code: Mapped[str | None] = mapped_column(String(64), index=True)
    location: Mapped[str | None] = mapped_column(String(300))
    # Where, as Open311 and the grid systems give it: WGS-84 degrees and an address.
    lat: Mapped[float | None] = mapped_column(Float)
    long: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    media_urls: Mapped[list[str] | None] = mapped_column(JSONType)  # links the submitter hosts
    # The enterprise's receipt page /r/{token}: 128 bits, unguessable, no login.
    receipt_token: Mapped[str | None] = mapped_column(String(32))
    contact: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(100), index=True)
    lead_department_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT")
    )
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    rating: Mapped[str | None] = mapped_column(String(32))
    # The lead department's claim at its reply (答复: 已解决 / 未解决).
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    # The enterprise's own answer to 是否解决 when it rated (None: it gave none). The
    # resolution rate counts this where given and the department's claim otherwise.
    enterprise_resolved: Mapped[bool | None] = mapped_column(Boolean)
    pending_extension: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # 挂起: the request waiting for a decision ({reason_code, reason, length, requested_by,
    # requested_at}), the suspension running now ({reason_code, reason, length, since,
    # resumes_at, approved_by}), and how many suspensions it has had.
    pending_suspension: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    suspension: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    suspension_count: Mapped[int] = mapped_column(Integer, default=0)
    # 退单审核: the state a return came from, while the dispatcher reviews it.
    returned_from: Mapped[str | None] = mapped_column(String(32))
    timeline_seq: Mapped[int] = mapped_column(Integer, default=0)  # the last timeline row's seq
    merged_into_id: Mapped[int | None] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="RESTRICT")
    )
    submitted_by: Mapped[str] = mapped_column(String(100))
    idempotency_scope: Mapped[str | None] = mapped_column(String(100))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    idempotency_hash: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the reports count, recorded when it happens (huying.requests.service._apply): the
    # signing (the sign deadline that ended met or missed) and the first reply round. Working
    # seconds on the business calendar: from dispatch to signing, from signing to first reply.
    sign_on_time: Mapped[bool | None] = mapped_column(Boolean)
    sign_working_seconds: Mapped[int | None] = mapped_column(Integer)
    first_reply_on_time: Mapped[bool | None] = mapped_column(Boolean)
    first_reply_working_seconds: Mapped[int | None] = mapped_column(Integer)

    co_departments: Mapped[list[RequestCoDepartment]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="RequestCoDepartment.department_code",
    )

    tasks: Mapped[list[RequestTask]] = relationship(
        lazy="selectin",
        order_by="RequestTask.id",
        cascade="all, delete-orphan",
        back_populates="request",
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it

    @property
    def co_department_codes(self) -> list[str]:
        return [c.department_code for c in self.co_departments]


class RequestCoDepartment(Base):
    """A co-department (协办部门) of a request: it sees the request; the lead acts on it."""

    __tablename__ = "request_co_departments"

    request_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    department_code: Mapped[str] = mapped_column(
        String(64),
        ForeignKey("departments.code", ondelete="RESTRICT"),
        primary_key=True,
        index=True,
    )


class RequestTask(Base):
    """A task (子任务) of a request for another department: `assist` (协办, a co-department
    named at dispatch) or `delegate` (下派, a sub-unit of the lead, e.g. a community under the
    street). The lead stays accountable for the request; the task department signs for its
    task and replies to it within its own `task` deadline.

    status: pending → signed → done; cancelled by the lead, or when the request is
    reassigned, returned or ends first."""

    __tablename__ = "request_tasks"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    department_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # assist, delegate
    status: Mapped[str] = mapped_column(String(16))  # pending, signed, done, cancelled
    note: Mapped[str | None] = mapped_column(Text)
    limit: Mapped[str | None] = mapped_column(String(64))  # the lead's own limit, if given
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signed_by: Mapped[str | None] = mapped_column(String(100))
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_by: Mapped[str | None] = mapped_column(String(100))
    reply: Mapped[str | None] = mapped_column(Text)
    # Replied within its task deadline (the reports' 协办按时率); None until replied.
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # done or cancelled
    # The request's created_at: a report's period finds its tasks without the requests.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    request: Mapped[Request] = relationship(lazy="raise", back_populates="tasks")

    @property
    def open(self) -> bool:
        return self.status in ("pending", "signed")


class RequestReturn(Base):
    """A return (退单): which department handed a request back, and when. The reports count
    returns under the department that made them (a request may be returned by several)."""

    __tablename__ = "request_returns"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    department_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The request's created_at: a report's period finds its returns without the requests.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    request: Mapped[Request] = relationship(lazy="raise")  # flushed after its request


class TimelineEntry(Base):
    """One row per action; append-only (no API updates or deletes it)."""

    __tablename__ = "timeline_entries"
    __table_args__ = (UniqueConstraint("request_id", "seq"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    request_id: Mapped[int] = mapped_column(BigID, ForeignKey("requests.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # In the public view (an integration's, the receipt page, Open311): the workflow file
    # marks which transitions are public; everything else is internal.
    public: Mapped[bool] = mapped_column(Boolean, default=False)

    request: Mapped[Request] = relationship(lazy="raise")
