"""Webhook receivers on httpx.MockTransport: they verify every signature, keep what they
accepted in arrival order, and fail the way each test needs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from huying.alerts import signing
from huying.clock import FrozenClock
from huying.runtime import Runtime


@dataclass
class Call:
    url: str
    at: datetime  # the worker's clock when the call came
    msg_id: str
    timestamp: int
    body: dict[str, Any]
    status: int


# A policy gets (call number from 1, the message) and answers a status, or raises.
Policy = Callable[[int, "Call"], int]


def always_ok(_n: int, _call: Call) -> int:
    return 200


@dataclass
class Receiver:
    clock: FrozenClock
    secrets: dict[str, str] = field(default_factory=dict)  # url -> secret
    policy: Policy = always_ok
    rt: Runtime | None = None  # when set, asserts no database connection is held
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.rt is not None:
            assert self.rt.db.pool.checkedout() == 0, "an HTTP call inside a transaction"  # type: ignore[attr-defined]
        raw = request.read()
        url = str(request.url)
        secret = self.secrets[url]
        assert request.headers["content-type"] == "application/json"
        assert signing.verify(secret, request.headers, raw, now=self.clock.now().timestamp())
        call = Call(
            url=url,
            at=self.clock.now(),
            msg_id=request.headers["webhook-id"],
            timestamp=int(request.headers["webhook-timestamp"]),
            body=json.loads(raw),
            status=0,
        )
        with self.lock:
            n = len(self.calls) + 1
            try:
                call.status = self.policy(n, call)
            finally:
                self.calls.append(call)
        return httpx.Response(call.status, text="nope" if call.status >= 300 else "")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def accepted(self, url: str | None = None) -> list[str]:
        """The webhook-ids taken with a 2xx, in arrival order."""
        return [c.msg_id for c in self.calls if 200 <= c.status < 300 and url in (None, c.url)]


# --- group robots, each checking what its platform documents --------------------------

SIGN_WINDOW_SECONDS = 3600  # DingTalk and Feishu refuse a timestamp an hour away


@dataclass
class RobotCall:
    url: str
    at: datetime
    body: dict[str, Any]
    answer: dict[str, Any]


@dataclass
class Robot:
    """A robot of `platform` ("wecom", "dingtalk", "feishu") as the platform runs it: it
    checks the signature the way the platform documents it (independently of Huying's
    code) and answers 200 with the platform's error code, 0 when it took the message.
    `refuse` makes it answer a given error code for call number n (from 1)."""

    clock: FrozenClock
    platform: str
    secret: str = ""
    refuse: Callable[[int], int] = lambda n: 0
    calls: list[RobotCall] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _sign_error(self, request: httpx.Request, body: dict[str, Any]) -> int:
        import base64
        import hashlib
        import hmac
        from urllib.parse import quote_plus

        now = self.clock.now().timestamp()
        if self.platform == "dingtalk" and self.secret:
            stamp = request.url.params.get("timestamp", "")
            sign = request.url.params.get("sign", "")
            if not stamp.isdigit() or abs(now * 1000 - int(stamp)) > SIGN_WINDOW_SECONDS * 1000:
                return 310000
            digest = hmac.new(
                self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256
            ).digest()
            # httpx decodes the query: compare with the value before URL-encoding, and the
            # raw query must carry it URL-encoded as DingTalk's sample does.
            expected = base64.b64encode(digest).decode()
            raw = request.url.query.decode()
            if sign != expected or f"sign={quote_plus(expected)}" not in raw:
                return 310000
        if self.platform == "feishu" and self.secret:
            stamp, sign = str(body.get("timestamp", "")), str(body.get("sign", ""))
            if not stamp.isdigit() or abs(now - int(stamp)) > SIGN_WINDOW_SECONDS:
                return 19021
            key = f"{stamp}\n{self.secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if sign != expected:
                return 19021
        return 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        body = json.loads(request.read())
        with self.lock:
            n = len(self.calls) + 1
            code = self._sign_error(request, body) or self.refuse(n)
            if self.platform == "feishu":
                answer: dict[str, Any] = {"code": code, "msg": "success" if not code else "x"}
                if not code:
                    answer["data"] = {}
            else:
                answer = {"errcode": code, "errmsg": "ok" if not code else "sign not match"}
            self.calls.append(RobotCall(str(request.url), self.clock.now(), body, answer))
        return httpx.Response(200, json=answer)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handle))

    def taken(self) -> list[dict[str, Any]]:
        """The bodies the robot took, in arrival order."""
        ok = [c for c in self.calls if c.answer.get("errcode", c.answer.get("code")) == 0]
        return [c.body for c in ok]

    def texts(self) -> list[str]:
        """What the group saw, message by message."""
        out = []
        for body in self.taken():
            if self.platform == "wecom":
                out.append(body["text"]["content"])
            elif self.platform == "dingtalk":
                out.append(body["markdown"]["text"])
            else:
                out.append(body["content"]["text"])
        return out
