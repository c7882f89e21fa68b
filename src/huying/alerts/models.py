"""Alerts: the outbox of events and their delivery to webhook subscribers."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huying.db import Base, BigID, JSONType, UTCDateTime

if TYPE_CHECKING:
    from huying.requests.models import Request

# Partial-index predicates, written exactly as the queries write them so that both
# SQLite and PostgreSQL use the indexes.
_NOT_FANNED_OUT = text("fanned_out_at IS NULL")
_PENDING = text("next_attempt_at IS NOT NULL")


class Event(Base):
    """The outbox: written in the same transaction as the change it reports."""

    __tablename__ = "events"
    __table_args__ = (
        # The fan-out's work queue: only the events not yet turned into deliveries.
        Index(
            "ix_events_awaiting_fan_out",
            "id",
            postgresql_where=_NOT_FANNED_OUT,
            sqlite_where=_NOT_FANNED_OUT,
        ),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # the stable webhook-id
    type: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[int | None] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Set by huying.alerts.fanout once the event's deliveries exist.
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # Whether the event reports a public timeline entry (the workflow file marks which):
    # only these go to subscriptions with the public view. Set by huying.requests.service.
    public: Mapped[bool] = mapped_column(Boolean, default=False)

    request: Mapped[Request | None] = relationship(lazy="raise")


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    event_types: Mapped[list[str]] = mapped_column(JSONType)  # patterns: request.*, *
    # Standard Webhooks form, whsec_<base64>; kept in clear because signing needs it.
    secret: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A department code: only the events of requests in its subtree (its own and those below
    # it lead, co-handle or have a task of) are fanned out to it; None: every request's.
    # No foreign key (the migration could not add one on SQLite); checked when subscribing.
    scope_department: Mapped[str | None] = mapped_column(String(64), default=None)
    # "full": every matching event as written; "public": the public view only, as an
    # integration sees a request (huying.alerts.public).
    view: Mapped[str] = mapped_column(String(16), default="full")
    # Set while an admin has paused the subscription: its deliveries are still queued, in
    # order, and go out once it is resumed.
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The message's shape and signing: "standard" (Standard Webhooks JSON), or a group robot:
    # "wecom", "dingtalk", "feishu".
    format: Mapped[str] = mapped_column(String(16), default="standard")


class Delivery(Base):
    """One event for one subscription. Pending exactly while `next_attempt_at` is set."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status"),
        CheckConstraint(
            "(status = 'pending') = (next_attempt_at IS NOT NULL)", name="pending_has_next"
        ),
        # What is due, in order.
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        # Is an earlier delivery of the same request to the same subscriber still pending?
        Index(
            "ix_deliveries_pending_chain",
            "subscription_id",
            "request_id",
            "event_id",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        Index("ix_deliveries_status_id", "status", "id"),
        Index("ix_deliveries_subscription_id_id", "subscription_id", "id"),
        # A robot's messages of the last minute (huying.alerts.repository.messages_since).
        Index("ix_deliveries_subscription_attempted", "subscription_id", "last_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigID, ForeignKey("events.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(
        BigID, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    # Copied from the event: the ordering key and a filter, without a join.
    request_id: Mapped[int | None] = mapped_column(BigID)
    event_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
