"""Alerts use cases for the admin: subscriptions and the deliveries' ledger; and the outbox's
backlog, for /healthz and /metrics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from huying import roles
from huying.alerts import reasons
from huying.alerts import repository as repo
from huying.alerts.catalogue import event_types
from huying.alerts.models import Delivery, WebhookSubscription
from huying.alerts.patterns import unmatched
from huying.alerts.public import PUBLIC
from huying.alerts.repository import Backlog
from huying.alerts.schemas import DeliveryOut, Status, WebhookCreated, WebhookIn, WebhookOut
from huying.alerts.signing import new_secret
from huying.alerts.urls import HostPolicy
from huying.auth.service import Principal
from huying.directory import service as directory
from huying.errors import Conflict, Forbidden, InvalidInput, NotFound, UnknownReference
from huying.runtime import Runtime


def subscription_out(sub: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=sub.id,
        url=sub.url,
        event_types=list(sub.event_types),
        description=sub.description,
        department=sub.scope_department,
        view="public" if sub.view == PUBLIC else "full",
        active=sub.active,
        created_at=sub.created_at,
        deactivated_at=sub.deactivated_at,
    )


def delivery_out(d: Delivery, event_uid: str) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        subscription_id=d.subscription_id,
        event_id=d.event_id,
        event_uid=event_uid,
        event_type=d.event_type,
        request_id=d.request_id,
        status=d.status,  # one of three: a CHECK constraint
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_attempt_at=d.last_attempt_at,
        last_status_code=d.last_status_code,
        last_error=reasons.shown(d.last_error),
        created_at=d.created_at,
        delivered_at=d.delivered_at,
    )


def subscribe(
    *,
    rt: Runtime,
    session: Session,
    data: WebhookIn,
    now: datetime,
    principal: Principal | None = None,
) -> WebhookCreated:
    """Events from the next fan-out on go to the new subscription, not earlier ones.
    Refused (422): a URL naming loopback, link-local or the unspecified address that
    `webhooks.allow_hosts` does not name, a pattern that matches no event type, and an
    unknown department. Its scope is `data.department`, else the subtree its creator is
    bound to (`_scope_department`). With `data.view` "public" it receives the public view's
    events only (`huying.alerts.public`)."""
    scope = _scope_department(session, principal, data.department)
    policy = HostPolicy.allowing(rt.settings.webhooks.allow_hosts)
    if refusal := policy.url_refusal(data.url):
        raise InvalidInput(f"url: {refusal}")
    known = event_types(rt.workflows)
    if unknown := unmatched(data.event_types, known):
        raise InvalidInput(
            f"event_types: {', '.join(unknown)} "
            f"{'matches' if len(unknown) == 1 else 'match'} no event type; "
            f"the event types are {', '.join(known)}",
            unknown=unknown,
            event_types=known,
        )
    sub = WebhookSubscription(
        url=data.url,
        event_types=data.event_types,
        secret=data.secret or new_secret(),
        description=data.description,
        active=True,
        created_at=now,
        scope_department=scope,
        view=data.view,
    )
    repo.add_subscription(session, sub)
    return WebhookCreated(**subscription_out(sub).model_dump(), secret=sub.secret)


def _scope_department(
    session: Session, principal: Principal | None, requested: str | None
) -> str | None:
    """The department whose subtree a new subscription is limited to. A creator bound to a
    department (`huying.roles.SCOPED_BY_DEPARTMENT`) never subscribes to more than it sees
    itself: its own department by default, or one below it; anyone else gets what it asks
    for, everything when it names none."""
    bound = (
        principal.department
        if principal is not None and principal.role in roles.SCOPED_BY_DEPARTMENT
        else None
    )
    if requested is None:
        return bound
    if not directory.known_departments(session=session, codes=[requested]):
        raise UnknownReference(
            f"department: no department {requested!r}",
            kind="department",
            codes=[requested],
            field="department",
        )
    if bound is not None and requested not in directory.subtree(session=session, code=bound):
        raise Forbidden(f"department: {requested!r} is not {bound!r} or below it")
    return requested


def subscriptions(*, session: Session, active_only: bool = False) -> list[WebhookOut]:
    """By id; with `active_only`, those still sent to."""
    return [subscription_out(s) for s in repo.subscriptions(session, active_only=active_only)]


def deliveries(
    *,
    session: Session,
    status: Status | None = None,
    subscription_id: int | None = None,
    event_type: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[DeliveryOut]:
    """Newest first; `before` (a delivery id) pages on."""
    rows = repo.deliveries(
        session,
        status=status,
        subscription_id=subscription_id,
        event_type=event_type,
        before=before,
        limit=limit,
    )
    return [delivery_out(d, uid) for d, uid in rows]


def deactivate(*, session: Session, subscription_id: int, now: datetime) -> WebhookOut:
    """Stop sending. Its pending deliveries become dead; its history stays listed."""
    sub = repo.subscription(session, subscription_id)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    if sub.active:
        sub.active, sub.deactivated_at = False, now
        repo.give_up_pending(session, sub.id, reason="the subscription is deactivated")
    return subscription_out(sub)


def redeliver(*, session: Session, delivery_id: int, now: datetime) -> DeliveryOut:
    """Send a dead or delivered message again, with the same webhook-id, as a fresh delivery.
    It heads its line again: later pending deliveries of its request wait for it."""
    found = repo.delivery(session, delivery_id)
    if found is None:
        raise NotFound(f"no delivery {delivery_id}")
    d, uid = found
    if d.status == "pending":
        raise Conflict(f"delivery {delivery_id} is still pending; wait for it or its next attempt")
    sub = repo.subscription(session, d.subscription_id)
    if sub is None or not sub.active:
        raise Conflict(f"webhook subscription {d.subscription_id} is deactivated")
    d.status, d.attempts, d.next_attempt_at, d.delivered_at = "pending", 0, now, None
    session.flush()
    return delivery_out(d, uid)


def backlog(*, session: Session) -> Backlog:
    """Events not fanned out yet, deliveries pending and dead deliveries."""
    return repo.backlog(session)


def escalations(*, session: Session) -> int:
    """Escalations ever recorded (`request.escalated` events)."""
    return repo.count_events(session, event_type="request.escalated")
