from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from huying.alerts import delivery, fanout
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, emit, run_worker
from tests.conftest import World

PROBLEM = "application/problem+json"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def create(api: TestClient, world: World, **body: object) -> httpx.Response:
    body = {"url": "https://hooks.example/in", "event_types": ["request.*"], **body}
    response: httpx.Response = api.post("/api/v1/webhooks", json=body, headers=world.h("admin"))
    return response


def test_create_shows_the_secret_once(api: TestClient, world: World) -> None:
    r = create(api, world, description="督办平台", event_types=["request.*", "*", "request.*"])
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["secret"].startswith("whsec_") and made["active"] is True
    assert made["event_types"] == ["request.*", "*"]
    assert made["description"] == "督办平台" and made["deactivated_at"] is None

    given = create(api, world, secret=SECRET).json()
    assert given["secret"] == SECRET

    listed = api.get("/api/v1/webhooks", headers=world.h("admin"))
    assert listed.status_code == 200
    assert [w["id"] for w in listed.json()] == [made["id"], given["id"]]
    assert "secret" not in listed.text and SECRET not in listed.text


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"url": "ftp://hooks.example/in"}, "url"),
        ({"url": "hooks.example/in"}, "url"),
        ({"url": "https:///no-host"}, "url"),
        ({"url": "https://hooks.example:99999/"}, "url"),
        ({"url": "https://hooks.example/a b"}, "url"),
        ({"url": "https://h.example/" + "x" * 2000}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["Request.*"]}, "event_types"),
        ({"event_types": ["request..signed"]}, "event_types"),
        ({"secret": "not-a-secret"}, "secret"),
        ({"secret": "whsec_c2hvcnQ="}, "secret"),
        ({"active": False}, "active"),
    ],
)
def test_create_refuses_bad_input(
    api: TestClient, world: World, body: dict[str, object], where: str
) -> None:
    r = create(api, world, **body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert where in r.json()["detail"]


def test_only_admins(api: TestClient, world: World) -> None:
    for who in ("dispatcher", "supervisor", "integration", "gxj"):
        for method, path in (
            ("POST", "/api/v1/webhooks"),
            ("GET", "/api/v1/webhooks"),
            ("DELETE", "/api/v1/webhooks/1"),
            ("GET", "/api/v1/deliveries"),
            ("POST", "/api/v1/deliveries/1/redeliver"),
        ):
            body = {"url": "https://hooks.example/in", "event_types": ["*"]}
            r = api.request(method, path, headers=world.h(who), json=body)
            assert r.status_code == 403, (who, method, path, r.text)
            assert r.headers["content-type"] == PROBLEM
    assert api.get("/api/v1/webhooks").status_code == 401
    assert api.get("/api/v1/webhooks", headers=world.h("admin")).json() == []


def test_deactivate_stops_sending_and_keeps_history(
    api: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    hook = create(api, world, event_types=["*"]).json()
    emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())

    r = api.delete(f"/api/v1/webhooks/{hook['id']}", headers=world.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["deactivated_at"]
    assert api.delete(f"/api/v1/webhooks/{hook['id']}", headers=world.h("admin")).json() == r.json()
    assert api.delete("/api/v1/webhooks/999", headers=world.h("admin")).status_code == 404

    (d,) = deliveries(rt)
    assert (d.status, d.last_error) == ("dead", "the subscription is deactivated")
    emit(rt, "request.signed")
    fanout.fan_out(rt, now=clock.now())
    assert len(deliveries(rt)) == 1  # nothing new for it
    active = api.get("/api/v1/webhooks?active=true", headers=world.h("admin")).json()
    assert active == []
    assert api.get("/api/v1/webhooks", headers=world.h("admin")).json()[0]["active"] is False
    redo = api.post(f"/api/v1/deliveries/{d.id}/redeliver", headers=world.h("admin"))
    assert redo.status_code == 409


def test_deliveries_listed_filtered_and_redelivered(
    api: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    a = create(api, world, event_types=["*"], url="https://a.example/in").json()
    b = create(api, world, event_types=["deadline.*"], url="https://b.example/in").json()
    dispatched = emit(rt, "request.dispatched")
    overdue = emit(rt, "deadline.overdue")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if request.url.host == "a.example" else 500)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        run_worker(rt, clock, http, max_attempts=2)

    admin = world.h("admin")
    rows = api.get("/api/v1/deliveries", headers=admin).json()
    assert [(d["event_uid"], d["subscription_id"]) for d in rows] == [
        (overdue, b["id"]),
        (overdue, a["id"]),
        (dispatched, a["id"]),
    ]  # newest first
    assert [d["status"] for d in rows] == ["dead", "delivered", "delivered"]
    dead = rows[0]
    assert (dead["attempts"], dead["last_status_code"], dead["next_attempt_at"]) == (2, 500, None)

    def ids(query: str) -> list[int]:
        r = api.get(f"/api/v1/deliveries?{query}", headers=admin)
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()]

    assert ids("status=dead") == [dead["id"]]
    assert ids(f"subscription_id={a['id']}") == [rows[1]["id"], rows[2]["id"]]
    assert ids("event_type=request.dispatched") == [rows[2]["id"]]
    assert ids("limit=1") == [rows[0]["id"]]
    assert ids(f"limit=1&before={rows[0]['id']}") == [rows[1]["id"]]
    assert api.get("/api/v1/deliveries?status=lost", headers=admin).status_code == 422
    assert api.get("/api/v1/deliveries?limit=0", headers=admin).status_code == 422

    # redeliver: the dead one and a delivered one go back to pending; a pending one is a 409
    clock.advance(timedelta(hours=1))
    r = api.post(f"/api/v1/deliveries/{dead['id']}/redeliver", headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    assert r.json()["next_attempt_at"] is not None
    again = api.post(f"/api/v1/deliveries/{dead['id']}/redeliver", headers=admin)
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    ok = api.post(f"/api/v1/deliveries/{rows[2]['id']}/redeliver", headers=admin)
    assert ok.status_code == 200 and ok.json()["delivered_at"] is None
    assert api.post("/api/v1/deliveries/999/redeliver", headers=admin).status_code == 404

    with httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(202))) as http:
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 2
    assert ids("status=pending") == []
    assert ids("status=delivered") == [rows[0]["id"], rows[1]["id"], rows[2]["id"]]
