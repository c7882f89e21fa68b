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
