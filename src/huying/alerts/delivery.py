"""Sending deliveries: at least once, signed, in order per (request, subscription).

One round claims a batch of due deliveries in a short transaction (each one's attempt
counted and `next_attempt_at` pushed a lease ahead, so no other worker takes it), commits,
POSTs outside any transaction, and records every outcome in a second short transaction.
A 2xx is delivered; anything else is retried on a fixed schedule until `max_attempts`, and
then the delivery is dead: kept, listed, redeliverable. A worker that dies mid-round loses
nothing: the lease runs out and the delivery is sent again with the same webhook-id.

A paused subscription's deliveries wait in the queue, in order, and are claimed again once
it is resumed.

Group robots (`huying.alerts.robots`) get the same guarantees, one message per robot per
round, and at most `webhooks.robot_per_minute` messages in any minute: while the robot has
room, the head of its queue goes alone; when more is due than the minute has room for,
everything due for it is folded into one digest, in order. The digest's deliveries share its
fate: all delivered with its success, all retried (each counting the attempt) with its
failure. A robot whose minute is full waits until a slot frees, and then gets the digest.
A robot answers 200 with an error code in the body for a refused message: that is a failed
attempt like any other.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from huying import __version__
from huying.alerts import catalogue, fanout, messages, public, reasons, robots, signing
from huying.alerts import repository as repo
from huying.alerts.messages import Notice
from huying.alerts.models import Delivery, Event, WebhookSubscription
from huying.alerts.schemas import TestOutcome
from huying.alerts.transport import ALLOW_HOSTS, GuardedTransport, Resolver
from huying.errors import Conflict, NotFound
from huying.runtime import Runtime

log = logging.getLogger("huying.alerts")

MAX_ATTEMPTS = 8
FAN_OUT_BATCH, FAN_OUT_BATCHES = 500, 20
ROUNDS = 10  # a round frees each line's next delivery; bounded so a tick stays short
SCHEDULE = tuple(timedelta(seconds=s) for s in (5, 30, 120, 600, 1800, 3600, 2 * 3600, 4 * 3600))
MAX_DELAY = timedelta(hours=24)
USER_AGENT = f"Huying-Webhooks/{__version__}"
ROBOT_WINDOW = timedelta(minutes=1)
FOLD_MAX = 500  # deliveries one digest carries at most; the rest go in the next one


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
    """One message: to a standard subscription, `body` signed with `secret`; to a robot,
    `notice` shaped and signed for `format` when it is sent. `members` are the deliveries it
    carries, each with its attempt number: the delivery itself, or a digest's."""

    delivery_id: int
    attempt: int
    url: str
    secret: str
    msg_id: str
    body: bytes
    format: str = robots.STANDARD
    notice: Notice | None = None
    fallback_link: str = ""
    members: tuple[tuple[int, int], ...] = field(default=())

    def carried(self) -> tuple[tuple[int, int], ...]:
        return self.members or ((self.delivery_id, self.attempt),)


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
    """One POST; never raises. Only a 2xx counts as delivered (redirects are not followed),
    and from a robot only a 2xx whose body says 0. A failure records the status or a reason
    of ours, never what the receiver answered."""
    if out.notice is not None:
        prepared = robots.prepare(
            out.format,
            out.url,
            out.secret or None,
            out.notice,
            now_ms=int(now.timestamp() * 1000),
            fallback_link=out.fallback_link,
        )
        url, content, headers = prepared.url, prepared.body, prepared.headers
    else:
        url, content = out.url, out.body
        headers = signing.headers(out.secret, out.msg_id, int(now.timestamp()), out.body)
    try:
        with client.stream(
            "POST",
            url,
            content=content,
            headers=headers,
            timeout=timeout,
            extensions={ALLOW_HOSTS: tuple(allow_hosts)},
        ) as r:
            ok = 200 <= r.status_code < 300
            error = None if ok else reasons.http_status(r.status_code)
            if ok and out.notice is not None:
                error = robots.answer_error(out.format, _answer(r))
            return Outcome(out.delivery_id, out.attempt, r.status_code, error)
    except Exception as exc:  # timeouts, refused connections, and anything else: retry
        if not isinstance(exc, httpx.HTTPError):
            log.exception("webhook delivery %d failed unexpectedly", out.delivery_id)
        return Outcome(out.delivery_id, out.attempt, None, reasons.failure(exc, timeout=timeout))


def _answer(r: httpx.Response) -> bytes:
    """A robot's answer, read up to MAX_ANSWER_BYTES (a longer one is not a robot's)."""
    raw = b""
    for chunk in r.iter_bytes():
        raw += chunk
        if len(raw) > robots.MAX_ANSWER_BYTES:
            return b""
    return raw


def claim(
    rt: Runtime, *, now: datetime, batch: int, max_attempts: int
) -> tuple[int, list[Outgoing]]:
    """Take due deliveries, each for one more attempt and for the lease of the settings
    (`webhooks.lease`), in one short transaction. Returns how many were taken (a robot's
    message counting once) and those to send (the rest were given up)."""
    lease = rt.settings.webhooks.lease
    outgoing: list[Outgoing] = []
    with rt.transaction() as s:
        taken = _claim_robots(s, rt, now=now, batch=batch, max_attempts=max_attempts, out=outgoing)
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
    return taken + len(due), outgoing


def _claim_robots(
    s: Session, rt: Runtime, *, now: datetime, batch: int, max_attempts: int, out: list[Outgoing]
) -> int:
    """One message per robot with something due: the head of its queue alone while its
    minute has room for everything due, else a digest of everything due (`foldable`); none
    when its minute is full (what is due waits for the first slot to free) or when it got
    one at this very instant already. Returns the messages made."""
    lease = rt.settings.webhooks.lease
    per_minute = rt.settings.webhooks.robot_per_minute
    made = 0
    for sub in repo.robots_due(s, now=now, limit=batch):
        sent, earliest, latest = repo.messages_since(s, sub.id, since=now - ROBOT_WINDOW)
        if latest is not None and latest >= now:
            continue  # its messages are told apart by their instants
        due: list[tuple[Delivery, Event]] = []
        for d, event in repo.foldable(s, sub.id, now=now, limit=FOLD_MAX):
            if d.attempts >= max_attempts:  # the last attempt's outcome was lost
                d.status, d.next_attempt_at = "dead", None
                d.last_error = (
                    f"gave up after {d.attempts} attempts (the last one's outcome was lost)"
                )
            else:
                due.append((d, event))
        if not due:
            continue
        room = per_minute - sent
        if room <= 0:
            assert earliest is not None  # `sent` counted it
            repo.postpone(s, [d.id for d, _ in due], until=earliest + ROBOT_WINDOW)
            continue
        carried = due[:1] if len(due) <= room else due
        for d, _ in carried:
            d.attempts += 1
            d.last_attempt_at = now
            d.next_attempt_at = now + lease
        notice = _robot_notice(s, rt, sub, [event for _, event in carried], per_minute)
        first, _ = carried[0]
        out.append(
            Outgoing(
                first.id,
                first.attempts,
                sub.url,
                sub.secret,
                "",
                b"",
                format=sub.format,
                notice=notice,
                fallback_link=f"{rt.settings.public_url}/board",
                members=tuple((d.id, d.attempts) for d, _ in carried),
            )
        )
        made += 1
    return made


def _robot_notice(
    s: Session, rt: Runtime, sub: WebhookSubscription, events: Sequence[Event], per_minute: int
) -> Notice:
    """The notice of one event, or the digest of several, as the subscription's view sees
    them (the public view: no leaders, no level)."""
    facts = repo.request_facts(s, {e.request_id for e in events if e.request_id is not None})
    labels = catalogue.labels(rt.workflows)
    notices = []
    for e in events:
        data = public.public_data(e.data) if sub.view == public.PUBLIC else e.data
        found = facts.get(e.request_id) if e.request_id is not None else None
        notices.append(
            messages.notice(
                event_type=e.type,
                data=data,
                occurred_at=e.occurred_at,
                facts=None
                if found is None
                else messages.Facts(found.number, found.title, found.enterprise, found.department),
                label=labels.get(e.type, ""),
                link=f"{rt.settings.public_url}/requests/{e.request_id}" if e.request_id else "",
                tz=rt.calendar.tz,
            )
        )
    if len(notices) == 1:
        return notices[0]
    note = f"提醒较多（每分钟超过 {per_minute} 条），以下 {len(notices)} 条按发生顺序合并发送："
    return messages.digest(notices, limit_note=note)


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
            sent = list(
                pool.map(
                    lambda o, at=at: send(
                        client, o, now=at, timeout=timeout, allow_hosts=allow_hosts
                    ),
                    outgoing,
                )
            )
        # a digest's outcome is each of its deliveries' outcome
        outcomes = [
            Outcome(delivery_id, attempt, o.status_code, o.error)
            for out, o in zip(outgoing, sent, strict=True)
            for delivery_id, attempt in out.carried()
        ]
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


def one_off_client() -> Iterator[httpx.Client]:
    """A client for one test message from the API or the console (a FastAPI dependency,
    which tests override with their receivers), closed afterwards."""
    client = make_client()
    try:
        yield client
    finally:
        client.close()


def send_test(rt: Runtime, *, client: httpx.Client, subscription_id: int) -> TestOutcome:
    """Send one test message to a subscription now and say what came of it: to a robot,
    `messages.connection_notice` in its format; to a standard endpoint, a signed
    `webhook.test` message. Paused subscriptions too (an admin checks the robot before
    resuming), not deactivated ones (409). The call is made outside any transaction and
    changes nothing; the ledger does not hold it."""
    now = rt.now()
    with rt.transaction() as s:
        sub = repo.subscription(s, subscription_id)
        if sub is None:
            raise NotFound(f"no webhook subscription {subscription_id}")
        if not sub.active:
            raise Conflict(
                f"webhook subscription {subscription_id} is deactivated", problem="deactivated"
            )
        link = f"{rt.settings.public_url}/admin/webhooks"
        if robots.is_robot(sub.format):
            notice = messages.connection_notice(
                description=sub.description, now=now, tz=rt.calendar.tz, link=link
            )
            out = Outgoing(0, 0, sub.url, sub.secret, "", b"", format=sub.format, notice=notice)
        else:
            uid = f"msg_test_{uuid.uuid4().hex}"
            message = {
                "id": uid,
                "type": "webhook.test",
                "occurred_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "data": {"subscription_id": sub.id, "description": sub.description},
            }
            raw = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
            out = Outgoing(0, 0, sub.url, sub.secret, uid, raw)
    config = rt.settings.webhooks
    outcome = send(
        client, out, now=now, timeout=config.timeout_seconds, allow_hosts=config.allow_hosts
    )
    return TestOutcome(ok=outcome.ok, status_code=outcome.status_code, error=outcome.error)
