from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from huying.alerts import delivery, fanout
from huying.alerts.models import Delivery
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
    b = create(api, world, event_types=["*.overdue"], url="https://b.example/in").json()
    dispatched = emit(rt, "request.dispatched")
    overdue = emit(rt, "request.overdue")

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
    assert "HTTP 500" in {d["last_error"] for d in rows}
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


@pytest.mark.parametrize("allow_hosts", [()])
@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8080/hooks", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://localhost:8000/", "loopback"),
        ("http://im.localhost/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
    ],
)
def test_create_refuses_loopback_link_local_and_unspecified_urls(
    api: TestClient, world: World, url: str, kind: str
) -> None:
    r = create(api, world, url=url)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    detail = r.json()["detail"]
    assert detail.startswith("url: ") and f" {kind} " in detail
    assert "webhooks.allow_hosts" in detail
    assert api.get("/api/v1/webhooks", headers=world.h("admin")).json() == []


@pytest.mark.parametrize("allow_hosts", [()])
def test_create_allows_the_private_ranges(api: TestClient, world: World) -> None:
    for url in (
        "http://10.20.0.5:8080/im",
        "http://172.20.1.1/",
        "http://192.168.0.10/hooks",
        "http://[fd12:3456::1]/",
    ):
        r = create(api, world, url=url)
        assert r.status_code == 201, (url, r.text)


@pytest.mark.parametrize("allow_hosts", [("127.0.0.1", "gw.localhost")])
def test_allow_hosts_lets_the_named_hosts_through(api: TestClient, world: World) -> None:
    for url in ("http://127.0.0.1:9000/in", "http://127.1/in", "http://gw.localhost/in"):
        r = create(api, world, url=url)
        assert r.status_code == 201, (url, r.text)
    for url in ("http://[::1]/in", "http://localhost/in", "http://169.254.169.254/"):
        r = create(api, world, url=url)
        assert r.status_code == 422, (url, r.text)


def test_create_refuses_patterns_that_match_no_event_type(api: TestClient, world: World) -> None:
    r = create(api, world, event_types=["request.*", "deadline.*", "request.sigend", "*.overdue"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["detail"].startswith("event_types: deadline.*, request.sigend match no event")
    assert problem["unknown"] == ["deadline.*", "request.sigend"]
    known = problem["event_types"]
    for event_type in ("request.dispatched", "request.signed", "request.overdue", "request.closed"):
        assert event_type in known and event_type in problem["detail"]
    assert known == sorted(known)

    one = create(api, world, event_types=["request.sign"])
    assert one.status_code == 422
    assert one.json()["detail"].startswith("event_types: request.sign matches no event type;")
    assert create(api, world, event_types=["*.overdue", "request.escalated"]).status_code == 201


def test_the_ledger_never_shows_what_the_receiver_answered(
    api: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    create(api, world, event_types=["*"])
    emit(rt, "request.dispatched")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="SSH-2.0-OpenSSH_9.6 on gw-7.intranet")

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        fanout.fan_out(rt, now=clock.now())
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 1
    (row,) = api.get("/api/v1/deliveries", headers=world.h("admin")).json()
    assert (row["last_status_code"], row["last_error"]) == (500, "HTTP 500")

    # rows recorded before: the status or the exception's name, and nothing after it
    for stored, shown in (
        ("HTTP 502: <html>gw-7.intranet</html>", "HTTP 502"),
        ("RemoteProtocolError: illegal status line: bytearray(b'SSH-2.0-OpenSSH_9.6')",
         "RemoteProtocolError"),
        ("ConnectError: [Errno 111] Connection refused", "ConnectError"),
        ("timed out after 10 s", "timed out after 10 s"),
    ):  # fmt: skip
        with rt.transaction() as s:
            s.execute(update(Delivery).values(last_error=stored))
        (row,) = api.get("/api/v1/deliveries", headers=world.h("admin")).json()
        assert row["last_error"] == shown
