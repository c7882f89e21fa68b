from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Path, Query

from huying import roles
from huying.alerts import delivery, service
from huying.alerts.schemas import (
    DeliveryOut,
    Status,
    TestOutcome,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from huying.api.deps import Rt
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow

# Webhooks and their deliveries are the admin's alone.
router = APIRouter(tags=["webhooks"], route_class=GatedRoute, dependencies=[allow(*roles.ADMINS)])
Id = Annotated[int, Path(ge=1, le=2**62)]
# The client a test message goes out with; tests override `delivery.one_off_client`.
Client = Annotated[httpx.Client, Depends(delivery.one_off_client)]


@router.post("/webhooks", status_code=201, response_model=WebhookCreated)
def create_webhook(body: WebhookIn, rt: Rt, auth: Auth) -> WebhookCreated:
    """Subscribe a URL. The response holds the signing secret; it is never shown again.
    With `department`, only the events of that department's subtree's requests are sent.
    With `format` wecom, dingtalk or feishu, the URL is a group robot's and the messages are
    that platform's, in Chinese."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.subscribe(rt=rt, session=s, data=body, now=rt.now(), principal=who)


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(
    rt: Rt,
    auth: Auth,
    active: Annotated[bool, Query(description="only the active ones")] = False,
) -> list[WebhookOut]:
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.subscriptions(session=s, active_only=active)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
def update_webhook(webhook_id: Id, body: WebhookPatch, rt: Rt, auth: Auth) -> WebhookOut:
    """Pause (`paused: true`: deliveries queue up, in order, and nothing is sent) or resume
    it, change its event types (each must match an event type that exists), description or
    URL (checked as when subscribing). 409 once it is deactivated."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.update(
            rt=rt, session=s, subscription_id=webhook_id, data=body, actor=who.id, now=rt.now()
        )


@router.post("/webhooks/{webhook_id}/test", response_model=TestOutcome)
def test_webhook(webhook_id: Id, rt: Rt, auth: Auth, client: Client) -> TestOutcome:
    """Send one test message now and answer what came of it (200 either way; `ok` says).
    Nothing is queued or recorded; a paused subscription is sent to too."""
    with rt.transaction() as s:
        auth.principal(s, rt)
    return delivery.send_test(rt, client=client, subscription_id=webhook_id)


@router.delete("/webhooks/{webhook_id}", response_model=WebhookOut)
def deactivate_webhook(webhook_id: Id, rt: Rt, auth: Auth) -> WebhookOut:
    """Deactivate: nothing more is sent; pending deliveries become dead; history stays."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.deactivate(session=s, subscription_id=webhook_id, now=rt.now(), actor=who.id)


@router.get("/deliveries", response_model=list[DeliveryOut])
def list_deliveries(
    rt: Rt,
    auth: Auth,
    status: Status | None = None,
    subscription_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    event_type: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="a delivery id")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryOut]:
    """Newest first. Page on with `before` = the last id seen."""
    with rt.transaction() as s:
        auth.principal(s, rt)
        return service.deliveries(
            session=s,
            status=status,
            subscription_id=subscription_id,
            event_type=event_type,
            before=before,
            limit=limit,
        )


@router.post("/deliveries/{delivery_id}/redeliver", response_model=DeliveryOut)
def redeliver(delivery_id: Id, rt: Rt, auth: Auth) -> DeliveryOut:
    """A dead or delivered message goes back to pending, attempts from zero (409 if pending)."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.redeliver(session=s, delivery_id=delivery_id, now=rt.now(), actor=who.id)
