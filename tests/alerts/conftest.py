"""Alerts fixtures: a runtime whose `webhooks.allow_hosts` names 127.0.0.1 (where the real
receivers listen), the app with the webhooks router, events, subscriptions, and a worker
loop that jumps the injected clock from one due time to the next (nobody sleeps)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.alerts import delivery, fanout, service
from huying.alerts.models import Delivery, Event, WebhookSubscription
from huying.alerts.router import router
from huying.alerts.schemas import WebhookCreated, WebhookIn
from huying.app import create_app
from huying.clock import FrozenClock
from huying.runtime import Runtime, build_runtime
from tests.conftest import Specs, World, empty_tables, make_settings, submit_body


@pytest.fixture
def allow_hosts() -> tuple[str, ...]:
    """`webhooks.allow_hosts` of the runtime. A test of the rule alone says so with
    `@pytest.mark.parametrize("allow_hosts", [()])`."""
    return ("127.0.0.1",)


@pytest.fixture
def rt(
    migrated: str, clock: FrozenClock, workflows: Specs, allow_hosts: tuple[str, ...]
) -> Iterator[Runtime]:
    """tests/conftest.py's runtime, with `allow_hosts`."""
    settings = make_settings(migrated, webhooks={"allow_hosts": list(allow_hosts)})
    runtime = build_runtime(settings, clock=clock, workflows=workflows)
    yield runtime
    empty_tables(runtime)
    runtime.close()


@pytest.fixture
def api(rt: Runtime, world: World) -> Iterator[TestClient]:
    app = create_app(rt)
    if not any(getattr(r, "path", "") == "/api/v1/webhooks" for r in app.routes):
        app.include_router(router, prefix="/api/v1")
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def new_requests(api: TestClient, world: World, n: int) -> list[int]:
    """n submitted requests; their own submit events are fanned out (to nobody) at once."""
    ids = []
    for _ in range(n):
        r = api.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    fanout.fan_out(world.rt, now=world.rt.now())
    return ids


def emit(rt: Runtime, type_: str, request_id: int | None = None, **data: object) -> str:
    """An outbox event, as huying.requests.service writes them. Returns its webhook-id."""
    uid = f"msg_{uuid.uuid4().hex}"
    with rt.transaction() as s:
        s.add(Event(uid=uid, type=type_, request_id=request_id, occurred_at=rt.now(), data=data))
    return uid


def subscribe(
    rt: Runtime, *patterns: str, url: str = "https://hooks.example/in", secret: str | None = None
) -> WebhookCreated:
    data = WebhookIn(url=url, event_types=list(patterns or ("*",)), secret=secret)
    with rt.transaction() as s:
        return service.subscribe(rt=rt, session=s, data=data, now=rt.now())


def deliveries(rt: Runtime) -> list[Delivery]:
    with rt.transaction() as s:
        return list(s.scalars(select(Delivery).order_by(Delivery.id)))


def paused_subscriptions(rt: Runtime) -> set[int]:
    with rt.transaction() as s:
        query = select(WebhookSubscription.id).where(WebhookSubscription.paused_at.is_not(None))
        return set(s.scalars(query))


def next_due(rt: Runtime, after: datetime) -> datetime | None:
    with rt.transaction() as s:
        return s.scalar(
            select(func.min(Delivery.next_attempt_at)).where(Delivery.next_attempt_at > after)
        )


def run_worker(
    rt: Runtime, clock: FrozenClock, http: httpx.Client, *, ticks: int = 100, **kw: int
) -> int:
    """Worker ticks until nothing is pending but for paused subscriptions: again at once
    while a tick sent something, else with the clock set to the next due time. Returns the
    attempts made."""
    attempts = 0
    for _ in range(ticks):
        sent = delivery.tick(rt, client=http, now=clock.now(), **kw)
        attempts += sent
        if sent:
            continue
        due = next_due(rt, clock.now())
        if due is None:
            held = paused_subscriptions(rt)
            assert all(
                d.status != "pending" or d.subscription_id in held for d in deliveries(rt)
            ), "stuck"
            return attempts
        clock.set(due)
    raise AssertionError(f"still pending after {ticks} ticks")
