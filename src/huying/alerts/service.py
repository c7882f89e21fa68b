"""Alerts use cases for the admin: subscriptions and the deliveries' ledger; and the outbox's
backlog, for /healthz and /metrics.

Every write appends its audit entry (`huying.audit.service.record`) in the caller's
transaction: webhook.create, webhook.update, webhook.pause, webhook.resume,
webhook.deactivate, delivery.redeliver. What is recorded is the public form (`WebhookOut`,
`DeliveryOut`): never a secret."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy.orm import Session

from huying import roles
from huying.alerts import reasons, robots
from huying.alerts import repository as repo
from huying.alerts.catalogue import event_types
from huying.alerts.models import Delivery, WebhookSubscription
from huying.alerts.patterns import unmatched
from huying.alerts.public import PUBLIC
from huying.alerts.repository import Backlog, Counts
from huying.alerts.schemas import (
    DeliveryOut,
    Status,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from huying.alerts.signing import new_secret
from huying.alerts.urls import HostPolicy
from huying.audit import service as audit
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
        format=sub.format if robots.is_robot(sub.format) else "standard",
        active=sub.active,
        paused=sub.paused_at is not None,
        paused_at=sub.paused_at,
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


def _dump(out: WebhookOut | DeliveryOut) -> dict[str, object]:
    return out.model_dump(mode="json")


def _check_url(rt: Runtime, fmt: str, url: str) -> None:
    """The host rule of every webhook (`webhooks.allow_hosts`), then a robot's own."""
    policy = HostPolicy.allowing(rt.settings.webhooks.allow_hosts)
    if refusal := policy.url_refusal(url):
        raise InvalidInput(f"url: {refusal}", field="url", problem="url_refused")
    if problem := robots.url_problem(fmt, url, rt.settings.webhooks.robot_hosts):
        raise InvalidInput(f"url: {problem}", field="url", problem="robot_url", format=fmt)


def _check_event_types(rt: Runtime, patterns: list[str]) -> None:
    """Each pattern must match one of the event types that exist (422 naming those that
    match none, with the list)."""
    known = event_types(rt.workflows)
    if unknown := unmatched(patterns, known):
        raise InvalidInput(
            f"event_types: {', '.join(unknown)} "
            f"{'matches' if len(unknown) == 1 else 'match'} no event type; "
            f"the event types are {', '.join(known)}",
            unknown=unknown,
            event_types=known,
            field="event_types",
            problem="unknown_event_types",
        )


def subscribe(
    *,
    rt: Runtime,
    session: Session,
    data: WebhookIn,
    now: datetime,
    principal: Principal | None = None,
    actor: str | None = None,
) -> WebhookCreated:
    """Events from the next fan-out on go to the new subscription, not earlier ones.
    Refused (422): a URL naming loopback, link-local or the unspecified address that
    `webhooks.allow_hosts` does not name, a robot URL that is not that platform's
    (`robots.url_problem`), a pattern that matches no event type, and an unknown department.
    Its scope is `data.department`, else the subtree its creator is bound to
    (`_scope_department`). With `data.view` "public" it receives the public view's events
    only (`huying.alerts.public`). `actor` (else the principal's id, else "cli") is who the
    audit log names."""
    scope = _scope_department(session, principal, data.department)
    _check_url(rt, data.format, data.url)
    if data.secret is not None and (problem := robots.secret_problem(data.format, data.secret)):
        raise InvalidInput(
            f"secret: {problem}", field="secret", problem="secret", format=data.format
        )
    _check_event_types(rt, data.event_types)
    standard = not robots.is_robot(data.format)
    sub = WebhookSubscription(
        url=data.url,
        event_types=data.event_types,
        # a robot without signing keeps "" (the column is not nullable)
        secret=data.secret or (new_secret() if standard else ""),
        description=data.description,
        active=True,
        created_at=now,
        scope_department=scope,
        view=data.view,
        format=data.format,
    )
    repo.add_subscription(session, sub)
    out = subscription_out(sub)
    audit.record(
        session,
        actor=actor or (principal.id if principal is not None else "cli"),
        action="webhook.create",
        target_type="webhook",
        target_id=sub.id,
        before=None,
        after=_dump(out),
        now=now,
    )
    return WebhookCreated(**out.model_dump(), secret=sub.secret)


def live(*, session: Session, subscription_id: int) -> WebhookSubscription:
    """A subscription that may still be changed: 404 unknown, 409 deactivated (nothing
    more is sent to it; a new subscription starts afresh)."""
    sub = repo.subscription(session, subscription_id)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    if not sub.active:
        raise Conflict(
            f"webhook subscription {subscription_id} is deactivated; subscribe anew",
            problem="deactivated",
        )
    return sub


def update(
    *,
    rt: Runtime,
    session: Session,
    subscription_id: int,
    data: WebhookPatch,
    actor: str,
    now: datetime,
) -> WebhookOut:
    """Change what `data` names, checked as when subscribing. New event types apply from
    the next fan-out on (deliveries already queued stay). Pausing keeps fanning out: the
    deliveries queue up, in order, and the worker sends none until it is resumed; then
    they go out as they would have, the earliest of each request first. Audited as
    webhook.update (the fields) and webhook.pause / webhook.resume, each only when it
    changes something."""
    sub = live(session=session, subscription_id=subscription_id)
    if data.url is not None:
        _check_url(rt, sub.format, data.url)
    if data.event_types is not None:
        _check_event_types(rt, data.event_types)
    before = _dump(subscription_out(sub))
    if data.url is not None:
        sub.url = data.url
    if data.event_types is not None:
        sub.event_types = data.event_types
    if data.description is not None:
        sub.description = data.description
    changed = _dump(subscription_out(sub))
    audit.record(
        session,
        actor=actor,
        action="webhook.update",
        target_type="webhook",
        target_id=sub.id,
        before=before,
        after=changed,
        now=now,
    )
    if data.paused is not None and data.paused != (sub.paused_at is not None):
        sub.paused_at = now if data.paused else None
        audit.record(
            session,
            actor=actor,
            action="webhook.pause" if data.paused else "webhook.resume",
            target_type="webhook",
            target_id=sub.id,
            before=changed,
            after=_dump(subscription_out(sub)),
            now=now,
        )
    session.flush()
    return subscription_out(sub)


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


def deactivate(
    *, session: Session, subscription_id: int, now: datetime, actor: str = "cli"
) -> WebhookOut:
    """Stop sending. Its pending deliveries become dead; its history stays listed. Again
    is harmless (and not audited again)."""
    sub = repo.subscription(session, subscription_id)
    if sub is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    if sub.active:
        before = _dump(subscription_out(sub))
        sub.active, sub.deactivated_at = False, now
        repo.give_up_pending(session, sub.id, reason="the subscription is deactivated")
        audit.record(
            session,
            actor=actor,
            action="webhook.deactivate",
            target_type="webhook",
            target_id=sub.id,
            before=before,
            after=_dump(subscription_out(sub)),
            now=now,
        )
    return subscription_out(sub)


def redeliver(
    *, session: Session, delivery_id: int, now: datetime, actor: str = "cli"
) -> DeliveryOut:
    """Send a dead or delivered message again, with the same webhook-id, as a fresh delivery.
    It heads its line again: later pending deliveries of its request wait for it. To a
    paused subscription it waits, queued, like the rest."""
    found = repo.delivery(session, delivery_id)
    if found is None:
        raise NotFound(f"no delivery {delivery_id}")
    d, uid = found
    if d.status == "pending":
        raise Conflict(
            f"delivery {delivery_id} is still pending; wait for it or its next attempt",
            problem="pending",
        )
    sub = repo.subscription(session, d.subscription_id)
    if sub is None or not sub.active:
        raise Conflict(
            f"webhook subscription {d.subscription_id} is deactivated", problem="deactivated"
        )
    before = _dump(delivery_out(d, uid))
    d.status, d.attempts, d.next_attempt_at, d.delivered_at = "pending", 0, now, None
    session.flush()
    out = delivery_out(d, uid)
    audit.record(
        session,
        actor=actor,
        action="delivery.redeliver",
        target_type="delivery",
        target_id=d.id,
        before=before,
        after=_dump(out),
        now=now,
    )
    return out


def request_numbers(*, session: Session, request_ids: Collection[int]) -> dict[int, str]:
    """The numbers of these requests (for the ledger's readers)."""
    return {k: v.number for k, v in repo.request_facts(session, request_ids).items()}


def counts(*, session: Session) -> dict[int, Counts]:
    """Pending and dead deliveries of each subscription that has any."""
    return repo.counts_by_subscription(session)


def backlog(*, session: Session) -> Backlog:
    """Events not fanned out yet, deliveries pending and dead deliveries."""
    return repo.backlog(session)


def escalations(*, session: Session) -> int:
    """Escalations ever recorded (`request.escalated` events)."""
    return repo.count_events(session, event_type="request.escalated")
