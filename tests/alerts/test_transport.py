"""The webhook client checks the address it connects to: real receivers on loopback, the
DNS answers injected (no test resolves a name, and none connects beyond this machine)."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from huying.alerts import delivery, fanout
from huying.alerts.models import WebhookSubscription
from huying.alerts.signing import new_secret
from huying.alerts.transport import ALLOW_HOSTS
from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, emit, subscribe


class Listener:
    """An HTTP(S) receiver on a loopback address: it answers 204 and keeps each call's
    Host header, and for TLS the name the client asked for (SNI)."""

    def __init__(
        self, address: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.hosts: list[str] = []
        self.sni: list[str | None] = []
        got = self.hosts

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the connection open for the next call
            timeout = 5

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                got.append(self.headers["host"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((address, port), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def dns(answers: dict[str, list[str]]) -> Callable[..., list[tuple[Any, ...]]]:
    """A resolver with fixed answers (the dict may be changed between calls)."""

    def resolve(host: str, port: int, *_: Any, **__: Any) -> list[tuple[Any, ...]]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in answers[host]
        ]

    return resolve


def send_all(rt: Runtime, clock: FrozenClock, **client: Any) -> None:
    fanout.fan_out(rt, now=clock.now())
    with delivery.make_client(**client) as http:
        delivery.deliver_due(rt, client=http, now=clock.now())


@pytest.mark.parametrize("allow_hosts", [()])
def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(
    rt: Runtime, clock: FrozenClock
) -> None:
    with Listener() as receiver:
        subscribe(rt, "*", url=f"http://hooks.example:{receiver.port}/in")  # a name: allowed
        emit(rt, "request.dispatched")
        send_all(rt, clock, resolve=dns({"hooks.example": ["127.0.0.1"]}))
    assert receiver.hosts == []
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, None)
    assert d.last_error == "refused: hooks.example resolves to 127.0.0.1, which is loopback"


@pytest.mark.parametrize("allow_hosts", [("127.0.0.2",)])
def test_each_connection_is_checked_on_the_address_the_name_has_then(
    rt: Runtime, clock: FrozenClock
) -> None:
    """DNS rebinding: the name answers an allowed address, then this machine's 127.0.0.1."""
    answers = {"hooks.example": ["127.0.0.2"]}
    with Listener("127.0.0.2") as allowed, Listener("127.0.0.1", allowed.port) as forbidden:
        url = f"http://hooks.example:{allowed.port}/in"
        subscribe(rt, "*", url=url)
        emit(rt, "request.dispatched")
        fanout.fan_out(rt, now=clock.now())
        with delivery.make_client(resolve=dns(answers)) as http:
            assert delivery.deliver_due(rt, client=http, now=clock.now()) == 1
            assert allowed.hosts == [f"hooks.example:{allowed.port}"]
            answers["hooks.example"] = ["127.0.0.1"]  # the name now points here
            emit(rt, "request.signed")
            fanout.fan_out(rt, now=clock.now())
            assert delivery.deliver_due(rt, client=http, now=clock.now()) == 1
    assert len(allowed.hosts) == 1 and forbidden.hosts == []
    first, second = deliveries(rt)
    assert first.status == "delivered"
    assert (second.status, second.last_error) == (
        "pending",
        "refused: hooks.example resolves to 127.0.0.1, which is loopback",
    )


def test_an_allowed_address_gets_the_post_under_the_host_name(
    rt: Runtime, clock: FrozenClock
) -> None:
    with Listener() as receiver:  # allow_hosts: 127.0.0.1
        subscribe(rt, "*", url=f"http://hooks.example:{receiver.port}/in")
        emit(rt, "request.dispatched")
        send_all(rt, clock, resolve=dns({"hooks.example": ["127.0.0.1"]}))
    assert receiver.hosts == [f"hooks.example:{receiver.port}"]  # the connection went to the
    (d,) = deliveries(rt)  # checked address, the request still names the host
    assert (d.status, d.last_error) == ("delivered", None)


@pytest.mark.parametrize("allow_hosts", [()])
def test_a_subscription_stored_before_the_rule_is_refused_when_sending(
    rt: Runtime, clock: FrozenClock
) -> None:
    with Listener() as receiver:
        with rt.transaction() as s:  # as rows written before URLs were checked
            s.add(
                WebhookSubscription(
                    url=f"http://0x7f000001:{receiver.port}/in",
                    event_types=["*"],
                    secret=new_secret(),
                    created_at=clock.now(),
                )
            )
        emit(rt, "request.dispatched")
        send_all(rt, clock)  # the system's resolver reads 0x7f000001 as 127.0.0.1
    assert receiver.hosts == []
    (d,) = deliveries(rt)
    assert (d.status, d.last_error) == ("pending", "refused: address 127.0.0.1 is loopback")


def test_a_name_that_does_not_resolve_is_a_failed_attempt(rt: Runtime, clock: FrozenClock) -> None:
    subscribe(rt, "*", url="https://gone.example/in")
    emit(rt, "request.dispatched")
    send_all(rt, clock, resolve=dns({}))
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_error) == ("pending", 1, "cannot resolve the host name")


@pytest.fixture
def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for hooks.example (made by the
    openssl command), and a client context that trusts it."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "hooks.pem", tmp_path / "hooks.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=hooks.example",
         "-addext", "subjectAltName=DNS:hooks.example", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


SAME_ADDRESS = {"hooks.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]}


def test_https_checks_the_certificate_against_the_name_not_the_address(
    rt: Runtime, clock: FrozenClock, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server, trust = tls
    with Listener(tls=server) as receiver:
        subscribe(rt, "request.dispatched", url=f"https://hooks.example:{receiver.port}/in")
        subscribe(rt, "request.signed", url=f"https://other.example:{receiver.port}/in")
        emit(rt, "request.dispatched")
        emit(rt, "request.signed")
        send_all(rt, clock, resolve=dns(SAME_ADDRESS), verify=trust)
    assert sorted(map(str, receiver.sni)) == ["hooks.example", "other.example"]  # by name
    assert receiver.hosts == [f"hooks.example:{receiver.port}"]
    assert [(d.status, d.last_error) for d in deliveries(rt)] == [
        ("delivered", None),
        ("pending", "TLS handshake failed (certificate verify failed)"),
    ]


def test_a_tls_connection_serves_only_the_name_it_was_verified_for(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """Connections are pooled per name: other.example, on the same address, must not ride on
    the open connection whose certificate was checked for hooks.example."""
    server, trust = tls
    allow = {ALLOW_HOSTS: ("127.0.0.1",)}
    with (
        Listener(tls=server) as receiver,
        delivery.make_client(resolve=dns(SAME_ADDRESS), verify=trust) as http,
    ):
        for _ in range(2):
            r = http.post(f"https://hooks.example:{receiver.port}/in", json={}, extensions=allow)
            assert r.status_code == 204
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            http.post(f"https://other.example:{receiver.port}/in", json={}, extensions=allow)
    assert receiver.sni == ["hooks.example", "other.example"]  # the second POST reused the first
    assert receiver.hosts == [f"hooks.example:{receiver.port}"] * 2
