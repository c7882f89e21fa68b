"""A real receiver on 127.0.0.1 and real requests: what a subscriber actually gets."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.alerts import delivery, fanout, signing
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, run_worker
from tests.conftest import World, submit_body


@dataclass
class Inbox:
    secret: str = ""
    now: float = 0.0
    got: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Inbox]]:
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            valid = signing.verify(inbox.secret, headers, raw, now=inbox.now)
            inbox.got.append((headers, raw, valid))
            self.send_response(204 if valid else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/huying", inbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_real_receiver_gets_signed_messages_of_a_request_in_order(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World, receiver: tuple[str, Inbox]
) -> None:
    url, inbox = receiver
    made = api.post(
        "/api/v1/webhooks",
        json={"url": url, "event_types": ["request.*"]},
        headers=world.h("admin"),
    )
    assert made.status_code == 201, made.text
    inbox.secret, inbox.now = made.json()["secret"], clock.now().timestamp()

    r = api.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    req = r.json()
    signed = api.post(
        f"/api/v1/requests/{req['id']}/actions/sign",
        json={},
        headers=world.h("gxj", **{"If-Match": f'"{req["version"]}"'}),
    )
    assert signed.status_code == 200, signed.text

    with delivery.make_client() as http:
        assert run_worker(rt, clock, http) == 2

    assert [valid for _, _, valid in inbox.got] == [True, True]
    messages = [json.loads(raw) for _, raw, _ in inbox.got]
    assert [m["type"] for m in messages] == ["request.dispatched", "request.signed"]
    assert [h["webhook-id"] for h, _, _ in inbox.got] == [m["id"] for m in messages]
    assert all(m["data"]["request"]["state"] for m in messages)
    headers = inbox.got[0][0]
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("Huying-Webhooks/")
    assert {d.status for d in deliveries(rt)} == {"delivered"}


def test_a_receiver_that_refuses_the_signature_is_retried(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World, receiver: tuple[str, Inbox]
) -> None:
    url, inbox = receiver
    inbox.secret, inbox.now = signing.new_secret(), clock.now().timestamp()  # not ours
    api.post("/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=world.h("admin"))
    api.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    fanout.fan_out(rt, now=clock.now())
    with delivery.make_client() as http:
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 1
    assert [valid for _, _, valid in inbox.got] == [False]
    (d,) = deliveries(rt)
    assert (d.status, d.last_status_code, d.last_error) == ("pending", 401, "HTTP 401")


def test_a_closed_port_is_a_retry(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api.post(
        "/api/v1/webhooks",
        json={"url": f"http://127.0.0.1:{port}/x", "event_types": ["*"]},
        headers=world.h("admin"),
    )
    api.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    fanout.fan_out(rt, now=clock.now())
    with delivery.make_client() as http:
        delivery.deliver_due(rt, client=http, now=clock.now())
    (d,) = deliveries(rt)
    assert d.status == "pending" and d.attempts == 1 and d.last_status_code is None
    assert d.last_error == "connection refused"
