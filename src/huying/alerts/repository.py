"""Alerts queries. The claims lock with FOR UPDATE SKIP LOCKED on PostgreSQL, so several
workers share the work; SQLite has one worker and BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, column, distinct, exists, func, insert, select, table, update
from sqlalchemy.orm import Session, aliased

from huying.alerts.models import Delivery, Event, WebhookSubscription
from huying.alerts.robots import ROBOTS
from huying.directory.models import Department, Enterprise


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
_requests = table(
    "requests",
    column("id"),
    column("number"),
    column("title"),
    column("enterprise_uscc"),
    column("lead_department_code"),
)
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
    """Due deliveries to standard subscriptions that head their (subscription, request)
    line: no earlier delivery of the same request to the same subscriber is pending, and no
    earlier event of the request still waits for its fan-out. A paused subscription's wait
    (group robots are claimed by `robots_due`)."""
    earlier = aliased(Delivery)
    waiting = aliased(Event)
    query = (
        select(Delivery, Event, WebhookSubscription)
        .join(Event, Event.id == Delivery.event_id)
        .join(WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id)
        .where(
            Delivery.next_attempt_at <= now,
            WebhookSubscription.paused_at.is_(None),
            WebhookSubscription.format.not_in(ROBOTS),
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


def robots_due(session: Session, *, now: datetime, limit: int) -> list[WebhookSubscription]:
    """Active, unpaused robot subscriptions with a delivery due. On PostgreSQL each is
    locked (skipping those another worker holds), so one worker at a time counts a robot's
    minute and sends to it."""
    due = exists().where(
        Delivery.subscription_id == WebhookSubscription.id, Delivery.next_attempt_at <= now
    )
    query = (
        select(WebhookSubscription)
        .where(
            WebhookSubscription.format.in_(ROBOTS),
            WebhookSubscription.active.is_(True),
            WebhookSubscription.paused_at.is_(None),
            due,
        )
        .order_by(WebhookSubscription.id)
        .limit(limit)
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True, of=WebhookSubscription)
    return list(session.scalars(query))


def foldable(
    session: Session, subscription_id: int, *, now: datetime, limit: int
) -> list[tuple[Delivery, Event]]:
    """A robot's due deliveries that may go now, in event order: for each request, the due
    ones before its first pending delivery that is not due yet, and none while an earlier
    event of the request waits for its fan-out. The first is the head of its line; all of
    them together keep every line's order."""
    later = aliased(Delivery)
    waiting = aliased(Event)
    query = (
        select(Delivery, Event)
        .join(Event, Event.id == Delivery.event_id)
        .where(
            Delivery.subscription_id == subscription_id,
            Delivery.next_attempt_at <= now,
            ~exists().where(
                later.subscription_id == subscription_id,
                later.request_id == Delivery.request_id,
                later.event_id < Delivery.event_id,
                later.next_attempt_at > now,
            ),
            ~exists().where(
                waiting.request_id == Delivery.request_id,
                waiting.id < Delivery.event_id,
                waiting.fanned_out_at.is_(None),
            ),
        )
        .order_by(Delivery.event_id)
        .limit(limit)
    )
    if _postgresql(session):
        query = query.with_for_update(of=Delivery)
    return [(d, e) for d, e in session.execute(query)]


def messages_since(
    session: Session, subscription_id: int, *, since: datetime
) -> tuple[int, datetime | None, datetime | None]:
    """The messages a robot was sent after `since`, the earliest's instant and the latest's.
    Each message's deliveries were last attempted at its own instant (a robot gets at most
    one message an instant), so the messages are the distinct instants. A delivery tried
    again since then counts once: a failing robot is undercounted by its retries."""
    attempted = Delivery.last_attempt_at
    row = session.execute(
        select(func.count(distinct(attempted)), func.min(attempted), func.max(attempted)).where(
            Delivery.subscription_id == subscription_id, attempted > since
        )
    ).one()
    return int(row[0] or 0), row[1], row[2]


def postpone(session: Session, delivery_ids: Collection[int], *, until: datetime) -> None:
    """Move pending deliveries' next attempt on, without counting an attempt."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(sorted(delivery_ids)), Delivery.next_attempt_at.is_not(None))
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class RequestFacts:
    number: str
    title: str
    enterprise: str
    department: str


def request_facts(session: Session, request_ids: Collection[int]) -> dict[int, RequestFacts]:
    """What a robot's message says of each request beyond its events: its number and title,
    its enterprise's name and its lead department's name, as they stand."""
    if not request_ids:
        return {}
    query = (
        select(
            _requests.c.id,
            _requests.c.number,
            _requests.c.title,
            _requests.c.enterprise_uscc,
            Enterprise.name,
            _requests.c.lead_department_code,
            Department.name,
        )
        .outerjoin(Enterprise, Enterprise.uscc == _requests.c.enterprise_uscc)
        .outerjoin(Department, Department.code == _requests.c.lead_department_code)
        .where(_requests.c.id.in_(sorted(request_ids)))
    )
    return {
        rid: RequestFacts(
            number=number or "",
            title=title or "",
            enterprise=enterprise or uscc or "",
            department=department or code or "",
        )
        for rid, number, title, uscc, enterprise, code, department in session.execute(query)
    }


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


@dataclass(frozen=True)
class Counts:
    pending: int = 0
    dead: int = 0


def counts_by_subscription(session: Session) -> dict[int, Counts]:
    """Pending and dead deliveries per subscription (those with none are left out)."""
    rows = session.execute(
        select(Delivery.subscription_id, Delivery.status, func.count())
        .where(Delivery.status.in_(("pending", "dead")))
        .group_by(Delivery.subscription_id, Delivery.status)
    )
    found: dict[int, dict[str, int]] = {}
    for sub_id, status, n in rows:
        found.setdefault(int(sub_id), {})[str(status)] = int(n)
    return {k: Counts(v.get("pending", 0), v.get("dead", 0)) for k, v in found.items()}


def count_events(session: Session, *, event_type: str) -> int:
    """Events of this type ever recorded."""
    found = session.scalar(select(func.count()).select_from(Event).where(Event.type == event_type))
    return int(found or 0)
