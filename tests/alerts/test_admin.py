"""Administering subscriptions (issue 14): PATCH (pause, resume, event types, description,
URL), what a pause does to the queue, and the audit entry of every write."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.alerts import fanout
from huying.audit.models import AuditEntry
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, emit, new_requests, run_worker
from tests.alerts.receivers import Receiver
from tests.conftest import World

URL = "https://hooks.example/in"
PROBLEM = "application/problem+json"


def create(api: TestClient, world: World, **body: Any) -> dict[str, Any]:
    r = api.post(
        "/api/v1/webhooks",
        json={"url": URL, "event_types": ["request.*"], **body},
        headers=world.h("admin"),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def patch(api: TestClient, world: World, webhook_id: int, **body: Any) -> Any:
    return api.patch(f"/api/v1/webhooks/{webhook_id}", json=body, headers=world.h("admin"))


def audit(rt: Runtime) -> list[AuditEntry]:
    """The entries of webhook and delivery writes (the world's loading has its own)."""
    with rt.transaction() as s:
        query = select(AuditEntry).where(AuditEntry.target_type.in_(("webhook", "delivery")))
        return list(s.scalars(query.order_by(AuditEntry.id)))


def test_patch_changes_what_it_names_and_shows_paused_and_format(
    api: TestClient, world: World
) -> None:
    made = create(api, world, description="督办系统")
    assert (made["paused"], made["format"], made["paused_at"]) == (False, "standard", None)
    r = patch(api, world, made["id"], event_types=["request.overdue", "request.escalated"])
    assert r.status_code == 200, r.text
    assert r.json()["event_types"] == ["request.overdue", "request.escalated"]
    assert r.json()["description"] == "督办系统"  # left out: unchanged
    r = patch(api, world, made["id"], description="", url="https://other.example/hook")
    assert (r.json()["description"], r.json()["url"]) == ("", "https://other.example/hook")
    paused = patch(api, world, made["id"], paused=True).json()
    assert paused["paused"] is True and paused["paused_at"] is not None and paused["active"]
    listed = api.get("/api/v1/webhooks", headers=world.h("admin")).json()
    assert [w["paused"] for w in listed] == [True]
    assert patch(api, world, made["id"], paused=False).json()["paused"] is False


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"event_types": ["request.nothing"]}, "request.nothing"),
        ({"event_types": ["ticket.*"]}, "ticket.*"),
        ({"event_types": []}, "event_types"),
        ({"url": "ftp://hooks.example/in"}, "url"),
        ({"url": "http://127.0.0.2/in"}, "loopback"),
        ({"paused": "maybe"}, "paused"),
        ({"paused": None}, "paused"),
        ({}, "at least one"),
        ({"format": "wecom"}, "format"),
        ({"secret": "whsec_x"}, "secret"),
    ],
)
def test_patch_refuses_bad_input_and_changes_nothing(
    api: TestClient, world: World, body: dict[str, Any], where: str
) -> None:
    made = create(api, world)
    before = api.get("/api/v1/webhooks", headers=world.h("admin")).json()
    r = patch(api, world, made["id"], **body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert where in r.text
    assert api.get("/api/v1/webhooks", headers=world.h("admin")).json() == before


def test_unknown_event_type_is_named_with_the_list(api: TestClient, world: World) -> None:
    made = create(api, world)
    problem = patch(api, world, made["id"], event_types=["request.overdue", "request.nope"]).json()
    assert problem["unknown"] == ["request.nope"]
    assert "request.overdue" in problem["event_types"]


def test_patch_404_and_409(api: TestClient, world: World) -> None:
    assert patch(api, world, 999, paused=True).status_code == 404
    made = create(api, world)
    assert api.delete(f"/api/v1/webhooks/{made['id']}", headers=world.h("admin")).status_code == 200
    r = patch(api, world, made["id"], paused=True)
    assert r.status_code == 409 and "deactivated" in r.json()["detail"]


def test_patch_is_for_admins_only(api: TestClient, world: World) -> None:
    made = create(api, world)
    for who in ("dispatcher", "supervisor", "integration", "gxj"):
        r = api.patch(f"/api/v1/webhooks/{made['id']}", json={"paused": True}, headers=world.h(who))
        assert r.status_code == 403, (who, r.text)
        r = api.post(f"/api/v1/webhooks/{made['id']}/test", headers=world.h(who))
        assert r.status_code == 403, (who, r.text)


def test_paused_queues_in_order_and_resume_sends_them(
    api: TestClient, rt: Runtime, clock: FrozenClock, world: World
) -> None:
    (rid,) = new_requests(api, world, 1)  # its submit event fanned out before subscribing
    made = create(api, world, event_types=["*"])
    secret = api.post(  # a second subscription, never paused, as a witness
        "/api/v1/webhooks",
        json={"url": "https://witness.example/in", "event_types": ["*"]},
        headers=world.h("admin"),
    ).json()["secret"]
    assert patch(api, world, made["id"], paused=True).status_code == 200
    uids = [emit(rt, f"request.step{i}", rid) for i in range(5)]
    receiver = Receiver(clock, {URL: made["secret"], "https://witness.example/in": secret}, rt=rt)
    with receiver.client() as http:
        run_worker(rt, clock, http)
        # fanned out (nothing lost), but only the witness was sent to
        mine = [d for d in deliveries(rt) if d.subscription_id == made["id"]]
        assert len(mine) == 5 and all(d.status == "pending" and d.attempts == 0 for d in mine)
        assert receiver.accepted(URL) == []
        assert receiver.accepted("https://witness.example/in") == uids
        assert patch(api, world, made["id"], paused=False).status_code == 200
        run_worker(rt, clock, http)
    assert receiver.accepted(URL) == uids  # in order, each once


def test_redelivery_to_a_paused_subscription_waits(
    api: TestClient, rt: Runtime, clock: FrozenClock, world: World
) -> None:
    made = create(api, world, event_types=["*"])
    uid = emit(rt, "request.dispatched")
    receiver = Receiver(clock, {URL: made["secret"]}, policy=lambda n, _: 500 if n == 1 else 200)
    with receiver.client() as http:
        run_worker(rt, clock, http, max_attempts=1)
        (d,) = deliveries(rt)
        assert d.status == "dead"
        patch(api, world, made["id"], paused=True)
        r = api.post(f"/api/v1/deliveries/{d.id}/redeliver", headers=world.h("admin"))
        assert r.status_code == 200
        run_worker(rt, clock, http)
        assert deliveries(rt)[0].status == "pending"
        patch(api, world, made["id"], paused=False)
        run_worker(rt, clock, http)
    assert receiver.accepted() == [uid]


def test_every_write_is_audited_without_the_secret(
    api: TestClient, rt: Runtime, clock: FrozenClock, world: World
) -> None:
    made = create(api, world, event_types=["*"])
    patch(api, world, made["id"], event_types=["request.*"], description="督办")
    patch(api, world, made["id"], paused=True)
    patch(api, world, made["id"], paused=True)  # no change, no entry
    patch(api, world, made["id"], paused=False)
    emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())
    receiver = Receiver(clock, {URL: made["secret"]}, policy=lambda n, _: 500)
    with receiver.client() as http:
        run_worker(rt, clock, http, max_attempts=1)
    (d,) = deliveries(rt)
    api.post(f"/api/v1/deliveries/{d.id}/redeliver", headers=world.h("admin"))
    api.delete(f"/api/v1/webhooks/{made['id']}", headers=world.h("admin"))
    api.delete(f"/api/v1/webhooks/{made['id']}", headers=world.h("admin"))  # again: no entry

    entries = audit(rt)
    assert [e.action for e in entries] == [
        "webhook.create",
        "webhook.update",
        "webhook.pause",
        "webhook.resume",
        "delivery.redeliver",
        "webhook.deactivate",
    ]
    assert len({e.actor for e in entries}) == 1 and entries[0].actor.startswith("key:")
    create_entry, update, pause, resume, redeliver, deactivate = entries
    assert create_entry.before is None and create_entry.after is not None
    assert create_entry.after["url"] == URL and create_entry.target_id == str(made["id"])
    assert update.before is not None and update.after is not None
    assert (update.before["event_types"], update.after["event_types"]) == (["*"], ["request.*"])
    assert update.after["description"] == "督办" and update.after["paused"] is False
    assert pause.after is not None and pause.after["paused"] is True
    assert resume.after is not None and resume.after["paused"] is False
    assert redeliver.target_type == "delivery" and redeliver.target_id == str(d.id)
    assert redeliver.before is not None and redeliver.after is not None
    assert (redeliver.before["status"], redeliver.after["status"]) == ("dead", "pending")
    assert deactivate.after is not None and deactivate.after["active"] is False
    for e in entries:
        assert made["secret"] not in str(e.before) + str(e.after)
        assert "secret" not in (e.after or {})
