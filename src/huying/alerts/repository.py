"""Alerts queries. The claims lock with FOR UPDATE SKIP LOCKED on PostgreSQL, so several
workers share the work; SQLite has one worker and BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, column, exists, func, insert, select, table, update
from sqlalchemy.orm import Session, aliased

from huying.alerts.models import Delivery, Event, WebhookSubscription


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- subscriptions ------------------------------------------------------------


def subscription(session: Session, subscription_id: int) -> WebhookSubscription | None:
    return session.get(WebhookSubscription, subscription_id)


def add_subscription(session: Session, sub: WebhookSubscription) -> None:
    session.add(sub)
    session.flush()


def subscriptions(session: Session, *, active_only: bool = False) -> Sequence[WebhookSubscription]:
    query = select(WebhookSubscription).order_by(WebhookSubscription.id)
    if active_only:
        query = query.where(WebhookSubscription.active.is_(True))
    return session.scalars(query).all()


# --- fan-out --------------------------------------------------------------------


def claim_unfanned(session: Session, *, batch: int) -> Sequence[Row[int, str, int | None, bool]]:
    """The oldest events without deliveries yet: (id, type, request_id, public)."""
    query = (
        select(Event.id, Event.type, Event.request_id, Event.public)
        .where(Event.fanned_out_at.is_(None))
        .order_by(Event.id)
        .limit(batch)
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True)
    return session.execute(query).all()


# The request tables a scoped subscription's fan-out reads, named rather than imported from
# huying.requests, which writes to the outbox and so imports alerts.
_requests = table("requests", column("id"), column("lead_department_code"))
_co_departments = table("request_co_departments", column("request_id"), column("department_code"))
_tasks = table("request_tasks", column("request_id"), column("department_code"))


def requests_in(
    session: Session, request_ids: Collection[int], departments: Collection[str]
) -> set[int]:
    """Those of `request_ids` that one of `departments` leads, co-handles or has a task of:
    the rule of `huying.requests.repository.scoped`, for a batch of events' requests."""
    if not request_ids or not departments:
        return set()
    codes = sorted(departments)
    co = exists().where(
        _co_departments.c.request_id == _requests.c.id,
        _co_departments.c.department_code.in_(codes),
    )
    task = exists().where(
        _tasks.c.request_id == _requests.c.id, _tasks.c.department_code.in_(codes)
    )
    query = select(_requests.c.id).where(
        _requests.c.id.in_(sorted(request_ids)),
        _requests.c.lead_department_code.in_(codes) | co | task,
    )
    return set(session.scalars(query))


def add_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(Delivery), rows)


def mark_fanned_out(session: Session, event_ids: Sequence[int], *, now: datetime) -> None:
    session.execute(update(Event).where(Event.id.in_(event_ids)).values(fanned_out_at=now))


# --- delivery -------------------------------------------------------------------


def claim_due(
    session: Session, *, now: datetime, batch: int
) -> list[tuple[Delivery, Event, WebhookSubscription]]:
    """Due deliveries that head their (subscription, request) line: no earlier delivery of
    the same request to the same subscriber is pending, and no earlier event of the request
    still waits for its fan-out."""
    earlier = aliased(Delivery)
    waiting = aliased(Event)
    query = (
        select(Delivery, Event, WebhookSubscription)
        .join(Event, Event.id == Delivery.event_id)
        .join(WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id)
        .where(
            Delivery.next_attempt_at <= now,
            ~exists().where(
                earlier.subscription_id == Delivery.subscription_id,
                earlier.request_id == Delivery.request_id,
                earlier.event_id < Delivery.event_id,
                earlier.next_attempt_at.is_not(None),
            ),
            ~exists().where(
                waiting.request_id == Delivery.request_id,
                waiting.id < Delivery.event_id,
                waiting.fanned_out_at.is_(None),
            ),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(batch)
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True, of=Delivery)
    return [(d, e, sub) for d, e, sub in session.execute(query)]


def record(session: Session, delivery_id: int, *, attempt: int, **values: Any) -> bool:
    """Store an attempt's outcome unless the delivery moved on meanwhile (claimed again after
    its lease ran out, redelivered, given up). False when it did."""
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.attempts == attempt,
            Delivery.next_attempt_at.is_not(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def give_up_pending(session: Session, subscription_id: int, *, reason: str) -> int:
    result = session.execute(
        update(Delivery)
        .where(Delivery.subscription_id == subscription_id, Delivery.next_attempt_at.is_not(None))
        .values(status="dead", next_attempt_at=None, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


# --- the admin's view -------------------------------------------------------------


def delivery(session: Session, delivery_id: int) -> tuple[Delivery, str] | None:
    row = session.execute(
        select(Delivery, Event.uid)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id == delivery_id)
    ).first()
    return None if row is None else (row[0], row[1])


def deliveries(
    session: Session,
    *,
    status: str | None = None,
    subscription_id: int | None = None,
    event_type: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[tuple[Delivery, str]]:
    """Newest first; `before` (a delivery id) pages on."""
    query = select(Delivery, Event.uid).join(Event, Event.id == Delivery.event_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if subscription_id is not None:
        query = query.where(Delivery.subscription_id == subscription_id)
    if event_type is not None:
        query = query.where(Delivery.event_type == event_type)
    if before is not None:
        query = query.where(Delivery.id < before)
    rows = session.execute(query.order_by(Delivery.id.desc()).limit(limit))
    return [(d, uid) for d, uid in rows]


# --- the backlog, for /healthz and /metrics ----------------------------------------


@dataclass(frozen=True)
class Backlog:
    events_not_fanned_out: int
    deliveries_pending: int
    deliveries_dead: int


def backlog(session: Session) -> Backlog:
    """The outbox's backlog and the dead deliveries, in two COUNT queries that the partial
    index of unfanned events and the deliveries' status index answer."""
    unfanned = session.scalar(
        select(func.count()).select_from(Event).where(Event.fanned_out_at.is_(None))
    )
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.status.in_(("pending", "dead")))
        .group_by(Delivery.status)
    )
    by_status = {status: int(count) for status, count in rows}
    return Backlog(
        events_not_fanned_out=int(unfanned or 0),
        deliveries_pending=by_status.get("pending", 0),
        deliveries_dead=by_status.get("dead", 0),
    )


def count_events(session: Session, *, event_type: str) -> int:
    """Events of this type ever recorded."""
    found = session.scalar(select(func.count()).select_from(Event).where(Event.type == event_type))
    return int(found or 0)
