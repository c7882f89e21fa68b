"""Sending deliveries: at least once, signed, in order per (request, subscription).

One round claims a batch of due deliveries in a short transaction (each one's attempt
counted and `next_attempt_at` pushed a lease ahead, so no other worker takes it), commits,
POSTs outside any transaction, and records every outcome in a second short transaction.
A 2xx is delivered; anything else is retried on a fixed schedule until `max_attempts`, and
then the delivery is dead: kept, listed, redeliverable. A worker that dies mid-round loses
nothing: the lease runs out and the delivery is sent again with the same webhook-id.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from huying import __version__
from huying.alerts import fanout, public, reasons, signing
from huying.alerts import repository as repo
from huying.alerts.models import Event
from huying.alerts.transport import ALLOW_HOSTS, GuardedTransport, Resolver
from huying.runtime import Runtime

log = logging.getLogger("huying.alerts")

MAX_ATTEMPTS = 8
FAN_OUT_BATCH, FAN_OUT_BATCHES = 500, 20
ROUNDS = 10  # a round frees each line's next delivery; bounded so a tick stays short
SCHEDULE = tuple(timedelta(seconds=s) for s in (5, 30, 120, 600, 1800, 3600, 2 * 3600, 4 * 3600))
MAX_DELAY = timedelta(hours=24)
USER_AGENT = f"Huying-Webhooks/{__version__}"


def backoff(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based): 5 s, 30 s, 2 min, 10 min,
    30 min, 1 h, 2 h, 4 h, then doubling up to a day."""
    if attempt <= len(SCHEDULE):
        return SCHEDULE[max(attempt, 1) - 1]
    return min(SCHEDULE[-1] * (1 << min(attempt - len(SCHEDULE), 8)), MAX_DELAY)


def make_client(
    *, resolve: Resolver = socket.getaddrinfo, verify: ssl.SSLContext | bool = True
) -> httpx.Client:
    """The client a worker keeps for its lifetime (close it on shutdown). Its transport
    refuses loopback, link-local and unspecified addresses at the moment of connecting,
    whatever a name resolves to then; `send` hands it `webhooks.allow_hosts`. `resolve`
    (socket.getaddrinfo) and `verify` (the system's CAs) are there for tests."""
    return httpx.Client(
        transport=GuardedTransport(resolve, verify),
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )


def body(event: Event, *, view: str = public.FULL) -> bytes:
    """The message's JSON; with the public view, its data reduced to the public fields."""
    message = {
        "id": event.uid,
        "type": event.type,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": public.public_data(event.data) if view == public.PUBLIC else event.data,
    }
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    attempt: int
    url: str
    secret: str
    msg_id: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    attempt: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def send(
    client: httpx.Client,
    out: Outgoing,
    *,
    now: datetime,
    timeout: float,
    allow_hosts: Sequence[str] = (),
) -> Outcome:
    """One POST; never raises. Only a 2xx counts as delivered (redirects are not followed).
    A failure records the status or a reason of ours, never what the receiver answered."""
    headers = signing.headers(out.secret, out.msg_id, int(now.timestamp()), out.body)
    try:
        with client.stream(
            "POST",
            out.url,
            content=out.body,
            headers=headers,
            timeout=timeout,
            extensions={ALLOW_HOSTS: tuple(allow_hosts)},
        ) as r:
            ok = 200 <= r.status_code < 300
            error = None if ok else reasons.http_status(r.status_code)
            return Outcome(out.delivery_id, out.attempt, r.status_code, error)
    except Exception as exc:  # timeouts, refused connections, and anything else: retry
        if not isinstance(exc, httpx.HTTPError):
            log.exception("webhook delivery %d failed unexpectedly", out.delivery_id)
        return Outcome(out.delivery_id, out.attempt, None, reasons.failure(exc, timeout=timeout))


def claim(
    rt: Runtime, *, now: datetime, batch: int, max_attempts: int
) -> tuple[int, list[Outgoing]]:
    """Take due deliveries, each for one more attempt and for the lease of the settings
    (`webhooks.lease`), in one short transaction. Returns how many were taken and those to
    send (the rest were given up)."""
    lease = rt.settings.webhooks.lease
    outgoing: list[Outgoing] = []
    with rt.transaction() as s:
        due = repo.claim_due(s, now=now, batch=batch)
        for d, event, sub in due:
            if not sub.active or d.attempts >= max_attempts:
                d.status, d.next_attempt_at = "dead", None
                d.last_error = (
                    "the subscription is deactivated"
                    if not sub.active
                    else f"gave up after {d.attempts} attempts (the last one's outcome was lost)"
                )
                continue
            d.attempts += 1
            d.last_attempt_at = now
            d.next_attempt_at = now + lease
            message = body(event, view=sub.view)
            outgoing.append(Outgoing(d.id, d.attempts, sub.url, sub.secret, event.uid, message))
    return len(due), outgoing


def store(rt: Runtime, outcomes: list[Outcome], *, now: datetime, max_attempts: int) -> None:
    with rt.transaction() as s:
        for o in outcomes:
            values: dict[str, object] = {"last_status_code": o.status_code, "last_error": o.error}
            if o.ok:
                values |= {"status": "delivered", "next_attempt_at": None, "delivered_at": now}
            elif o.attempt >= max_attempts:
                values |= {"status": "dead", "next_attempt_at": None}
            else:
                values |= {"next_attempt_at": now + backoff(o.attempt)}
            if not repo.record(s, o.delivery_id, attempt=o.attempt, **values):
                log.info("delivery %d moved on while attempt %d ran", o.delivery_id, o.attempt)


def deliver_due(
    rt: Runtime,
    *,
    client: httpx.Client,
    now: datetime,
    batch: int | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> int:
    """Send what is due, round after round while rounds free more. Returns attempts made."""
    config = rt.settings.webhooks
    batch = batch or config.batch
    timeout, allow_hosts = config.timeout_seconds, config.allow_hosts
    attempted = 0
    for _ in range(ROUNDS):
        # A lease runs from its claim: the tick's own `now` may be a burst of firing ago.
        at = max(now, rt.now())
        taken, outgoing = claim(rt, now=at, batch=batch, max_attempts=max_attempts)
        if not taken:
            break
        if not outgoing:
            continue
        with ThreadPoolExecutor(max_workers=min(config.concurrency, len(outgoing))) as pool:
            outcomes = list(
                pool.map(
                    lambda o, at=at: send(
                        client, o, now=at, timeout=timeout, allow_hosts=allow_hosts
                    ),
                    outgoing,
                )
            )
        store(rt, outcomes, now=max(at, rt.now()), max_attempts=max_attempts)
        attempted += len(outgoing)
        failed = sum(not o.ok for o in outcomes)
        if failed:
            log.info("webhooks: %d of %d attempts failed", failed, len(outcomes))
    return attempted


def tick(
    rt: Runtime, *, client: httpx.Client, now: datetime, max_attempts: int = MAX_ATTEMPTS
) -> int:
    """One worker pass: fan out the new events, then send what is due. Returns attempts made."""
    for _ in range(FAN_OUT_BATCHES):
        if fanout.fan_out(rt, now=now, batch=FAN_OUT_BATCH) < FAN_OUT_BATCH:
            break
    return deliver_due(rt, client=client, now=now, max_attempts=max_attempts)
