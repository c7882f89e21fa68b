"""Delivery: backoff, dead letters, order per (request, subscription), crashes. The clock is
injected and jumped from one due time to the next; receivers are httpx.MockTransport."""

from __future__ import annotations

import errno
import json
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from huying.alerts import delivery, fanout, repository, service
from huying.alerts.delivery import SCHEDULE, backoff
from huying.clock import FrozenClock
from huying.runtime import Runtime
from huying.settings import ConfigError, WebhookSettings, settings_from_mapping
from tests.alerts.conftest import deliveries, emit, new_requests, run_worker, subscribe
from tests.alerts.receivers import Call, Receiver
from tests.conftest import T0, World

URL = "https://hooks.example/in"


def test_backoff_schedule() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 9)] == [
        5, 30, 120, 600, 1800, 3600, 7200, 14400,
    ]  # fmt: skip
    assert backoff(9) == timedelta(hours=8)
    assert backoff(50) == timedelta(hours=24)


def test_message_body_headers_and_signature(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "request.*")
    uid = emit(rt, "request.dispatched", lead_department="GXJ", title="用电增容")
    got: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request)
        return httpx.Response(204)

    clock.advance(timedelta(seconds=3))
    fanout.fan_out(rt, now=clock.now())
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 1

    (request,) = got
    assert request.method == "POST" and str(request.url) == URL
    body = request.read()
    assert json.loads(body) == {
        "id": uid,
        "type": "request.dispatched",
        "occurred_at": "2026-11-18T02:00:00Z",
        "data": {"lead_department": "GXJ", "title": "用电增容"},
    }
    h = request.headers
    assert h["content-type"] == "application/json"
    assert h["webhook-id"] == uid
    assert h["webhook-timestamp"] == str(int(clock.now().timestamp()))
    # Standard Webhooks, computed here independently
    from tests.alerts.test_signing import independent_signature

    assert h["webhook-signature"] == independent_signature(
        sub.secret, uid, int(h["webhook-timestamp"]), body
    )
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_status_code, d.delivered_at) == (
        "delivered", 1, 204, clock.now(),
    )  # fmt: skip
    assert d.next_attempt_at is None and d.last_error is None


def test_retries_with_backoff_then_success(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "*")
    uid = emit(rt, "request.dispatched")
    receiver = Receiver(clock, {URL: sub.secret}, policy=lambda n, _: 200 if n > 3 else 500, rt=rt)
    with receiver.client() as http:
        assert run_worker(rt, clock, http) == 4

    assert [c.at - T0 for c in receiver.calls] == [
        timedelta(0), SCHEDULE[0], SCHEDULE[0] + SCHEDULE[1], SCHEDULE[0] + SCHEDULE[1] + SCHEDULE[2],
    ]  # fmt: skip
    assert {c.msg_id for c in receiver.calls} == {uid}  # the same webhook-id every time
    assert [c.timestamp for c in receiver.calls] == [int(c.at.timestamp()) for c in receiver.calls]
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == ("delivered", 4, 200, None)
    assert d.delivered_at == T0 + timedelta(seconds=155)


def test_connection_errors_and_timeouts_are_retried(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "*")
    emit(rt, "request.dispatched")

    def flaky(n: int, call: Call) -> int:
        if n == 1:  # as httpx raises it, over the socket's error
            raise httpx.ConnectError("[Errno 111] Connection refused") from ConnectionRefusedError(
                errno.ECONNREFUSED, "Connection refused"
            )
        if n == 2:
            raise httpx.ReadTimeout("timed out")
        return 200

    receiver = Receiver(clock, {URL: sub.secret}, policy=flaky)
    with receiver.client() as http:
        fanout.fan_out(rt, now=clock.now())
        delivery.deliver_due(rt, client=http, now=clock.now())
        (d,) = deliveries(rt)
        assert (d.status, d.last_status_code) == ("pending", None)
        assert d.last_error == "connection refused"
        assert d.next_attempt_at == clock.now() + SCHEDULE[0]
        clock.set(d.next_attempt_at)
        delivery.deliver_due(rt, client=http, now=clock.now())
        (d,) = deliveries(rt)
        assert (d.status, d.last_status_code) == ("pending", None)
        assert d.last_error == "timed out after 10 s"  # webhooks.timeout
        run_worker(rt, clock, http)
    (d,) = deliveries(rt)
    assert (d.status, d.attempts) == ("delivered", 3)


def test_dead_after_max_attempts_kept_and_redeliverable(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "*")
    uid = emit(rt, "request.dispatched")
    broken = True

    def policy(_n: int, _call: Call) -> int:
        return 503 if broken else 200

    receiver = Receiver(clock, {URL: sub.secret}, policy=policy)
    with receiver.client() as http:
        run_worker(rt, clock, http)
        assert len(receiver.calls) == 8
        assert receiver.calls[-1].at - T0 == sum(SCHEDULE[:7], timedelta())
        (d,) = deliveries(rt)
        assert (d.status, d.attempts, d.last_status_code) == ("dead", 8, 503)
        assert d.last_error == "HTTP 503" and d.next_attempt_at is None  # not the body

        clock.advance(timedelta(days=3))  # dead stays dead
        assert run_worker(rt, clock, http) == 0

        broken = False
        with rt.transaction() as s:
            out = service.redeliver(session=s, delivery_id=d.id, now=clock.now())
        assert (out.status, out.attempts, out.next_attempt_at) == ("pending", 0, clock.now())
        assert run_worker(rt, clock, http) == 1
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.delivered_at) == ("delivered", 1, clock.now())
    assert receiver.accepted() == [uid]


def test_max_attempts_is_a_parameter(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "*")
    emit(rt, "request.dispatched")
    receiver = Receiver(clock, {URL: sub.secret}, policy=lambda n, c: 500)
    with receiver.client() as http:
        run_worker(rt, clock, http, max_attempts=3)
    assert [(d.status, d.attempts) for d in deliveries(rt)] == [("dead", 3)]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(400, text="bad key {secret} " + "x" * 1000), "HTTP 400"),
        (httpx.Response(502, text="<h1>nginx on gw-7.intranet</h1>"), "HTTP 502"),
        (httpx.ConnectError("cannot reach {secret}"), "connection failed"),
        # h11 quotes the bytes it got: a port that speaks SSH would tell its banner
        (
            httpx.RemoteProtocolError("illegal status line: bytearray(b'SSH-2.0-OpenSSH_9.6')"),
            "the receiver did not answer with valid HTTP",
        ),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "the connection broke off"),
        (RuntimeError("{secret}"), "internal error (RuntimeError); see the worker's log"),
    ],
)
def test_last_error_is_the_status_or_a_reason_never_what_the_receiver_said(
    rt: Runtime, clock: FrozenClock, answer: httpx.Response | Exception, reason: str
) -> None:
    sub = subscribe(rt, "*")
    emit(rt, "request.dispatched")

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise type(answer)(str(answer).format(secret=sub.secret))
        return httpx.Response(answer.status_code, text=answer.text.format(secret=sub.secret))

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        fanout.fan_out(rt, now=clock.now())
        delivery.deliver_due(rt, client=http, now=clock.now())
    (d,) = deliveries(rt)
    assert (d.status, d.last_error) == ("pending", reason)
    assert d.last_status_code == (None if isinstance(answer, Exception) else answer.status_code)


def test_order_per_request_and_subscription_while_an_earlier_one_fails(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    r1, r2 = new_requests(api, world, 2)
    picky = subscribe(rt, "*", url="https://picky.example/in")
    easy = subscribe(rt, "*", url="https://easy.example/in")
    a = emit(rt, "request.signed", r1)
    b = emit(rt, "request.replied", r1)
    c = emit(rt, "request.rated", r1)
    other = emit(rt, "request.signed", r2)
    loose = emit(rt, "system.notice")  # no request: no line to wait in

    # picky refuses `a` twice; everything else is taken at once
    refusals = {a: 2}

    def policy(_n: int, call: Call) -> int:
        if call.url.startswith("https://picky") and refusals.get(call.msg_id, 0) > 0:
            refusals[call.msg_id] -= 1
            return 500
        return 200

    receiver = Receiver(clock, {picky.url: picky.secret, easy.url: easy.secret}, policy=policy)
    with receiver.client() as http:
        fanout.fan_out(rt, now=clock.now())
        delivery.deliver_due(rt, client=http, now=clock.now())
        # the easy subscriber has everything; picky has what does not wait behind `a`
        assert sorted(receiver.accepted(easy.url)) == sorted([a, b, c, other, loose])
        assert sorted(receiver.accepted(picky.url)) == sorted([other, loose])
        picky_r1 = [
            x.msg_id for x in receiver.calls if x.url == picky.url and x.msg_id in (a, b, c)
        ]
        assert picky_r1 == [a]  # b and c were not even tried

        clock.advance(SCHEDULE[0])
        delivery.deliver_due(rt, client=http, now=clock.now())
        assert [x.msg_id for x in receiver.calls if x.url == picky.url and x.msg_id in (b, c)] == []
        run_worker(rt, clock, http)

    for sub in (picky, easy):
        got = receiver.accepted(sub.url)
        assert [m for m in got if m in (a, b, c)] == [a, b, c]
        assert sorted(got) == sorted([a, b, c, other, loose])
    assert {d.status for d in deliveries(rt)} == {"delivered"}


def test_a_dead_delivery_does_not_block_later_ones(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    (r1,) = new_requests(api, world, 1)
    sub = subscribe(rt, "*")
    poison = emit(rt, "request.signed", r1)
    after = emit(rt, "request.replied", r1)

    def policy(_n: int, call: Call) -> int:
        return 422 if call.msg_id == poison else 200

    receiver = Receiver(clock, {URL: sub.secret}, policy=policy)
    with receiver.client() as http:
        run_worker(rt, clock, http)
    assert receiver.accepted() == [after]
    assert [c.msg_id for c in receiver.calls] == [poison] * 8 + [after]
    assert [d.status for d in deliveries(rt)] == ["dead", "delivered"]


def test_a_receiver_failing_a_third_of_calls_gets_everything_in_order(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    requests = new_requests(api, world, 3)
    subs = [subscribe(rt, "*", url=f"https://r{i}.example/in") for i in range(2)]
    sent = {r: [emit(rt, f"request.step{i}", r, i=i) for i in range(6)] for r in requests}

    receiver = Receiver(
        clock,
        {s.url: s.secret for s in subs},
        policy=lambda n, _: 500 if n % 3 == 0 else 200,
        rt=rt,
    )
    with receiver.client() as http:
        run_worker(rt, clock, http, ticks=300)

    assert sum(c.status == 500 for c in receiver.calls) >= len(receiver.calls) // 3
    for sub in subs:
        got = receiver.accepted(sub.url)
        assert len(got) == len(set(got)) == 18  # each once
        for uids in sent.values():
            assert [m for m in got if m in uids] == uids
    assert {d.status for d in deliveries(rt)} == {"delivered"}


def test_a_receiver_down_for_a_while_gets_everything_in_order_when_back(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    requests = new_requests(api, world, 2)
    sub = subscribe(rt, "request.*")
    back_at = T0 + timedelta(minutes=20)

    def down(_n: int, call: Call) -> int:
        if call.at < back_at:
            raise httpx.ConnectError("connection refused")
        return 200

    receiver = Receiver(clock, {URL: sub.secret}, policy=down, rt=rt)
    sent: dict[int, list[str]] = {r: [] for r in requests}
    with receiver.client() as http:
        for minute in range(12):  # events keep coming while the receiver is down
            for r in requests:
                sent[r].append(emit(rt, "request.urged", r, minute=minute))
            fanout.fan_out(rt, now=clock.now())
            delivery.deliver_due(rt, client=http, now=clock.now())
            clock.advance(timedelta(minutes=1))
        assert receiver.accepted() == []
        run_worker(rt, clock, http)

    got = receiver.accepted()
    assert len(got) == len(set(got)) == 24
    for uids in sent.values():
        assert [m for m in got if m in uids] == uids
    # Each line's head was tried at 0, 1, 2, 4 (ticks a minute apart) and 14 min (+10 min),
    # all refused; the next try, 30 min later, found the receiver back and the lines ran.
    assert {c.at - T0 for c in receiver.calls if c.status == 200} == {timedelta(minutes=44)}


def test_the_lease_covers_a_round_and_follows_the_settings() -> None:
    # ceil(100 / 8) = 13 waves of POSTs of at most 10 s each, and 30 s to record them
    assert WebhookSettings().lease == timedelta(seconds=160)
    small = WebhookSettings(batch=16, concurrency=8, timeout="5 seconds")
    assert small.lease == timedelta(seconds=40)


@pytest.mark.parametrize("timeout", ["2 working hours", "0 seconds", "10 minutes", "soon"])
def test_a_bad_webhook_timeout_is_named(timeout: str) -> None:
    with pytest.raises(ConfigError, match=r"webhooks\.timeout"):
        settings_from_mapping({"webhooks": {"timeout": timeout}})


def test_the_lease_runs_from_the_claim_not_from_the_start_of_the_tick(
    rt: Runtime, clock: FrozenClock
) -> None:
    """A tick that spent a while firing deadlines passes its own, earlier `now`."""
    subscribe(rt, "*")
    emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())
    tick_started = clock.now()
    clock.advance(timedelta(seconds=90))  # a burst of deadlines fired meanwhile
    seen: list[datetime] = []

    def handler(_request: httpx.Request) -> httpx.Response:
        (d,) = deliveries(rt)
        assert d.next_attempt_at is not None
        seen.append(d.next_attempt_at)
        return httpx.Response(500)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        assert delivery.deliver_due(rt, client=http, now=tick_started) == 1
    assert seen == [clock.now() + rt.settings.webhooks.lease]  # leased from the claim
    (d,) = deliveries(rt)
    assert d.next_attempt_at == clock.now() + backoff(1)  # retried from the outcome


def test_a_worker_lost_mid_send_is_covered_by_the_lease(rt: Runtime, clock: FrozenClock) -> None:
    sub = subscribe(rt, "*")
    uid = emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())
    taken, outgoing = delivery.claim(rt, now=clock.now(), batch=10, max_attempts=8)
    assert taken == 1 and [o.msg_id for o in outgoing] == [uid]
    # ... and the worker dies before sending or recording.

    receiver = Receiver(clock, {URL: sub.secret})
    with receiver.client() as http:
        clock.advance(rt.settings.webhooks.lease - timedelta(seconds=1))
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 0  # still leased
        clock.advance(timedelta(seconds=1))
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 1
    assert receiver.accepted() == [uid]
    (d,) = deliveries(rt)
    assert (d.status, d.attempts) == ("delivered", 2)


def test_a_late_result_does_not_overwrite_a_newer_attempt(rt: Runtime, clock: FrozenClock) -> None:
    subscribe(rt, "*")
    emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())
    _, (first,) = delivery.claim(rt, now=clock.now(), batch=10, max_attempts=8)
    clock.advance(rt.settings.webhooks.lease)
    _, (second,) = delivery.claim(rt, now=clock.now(), batch=10, max_attempts=8)
    assert (first.attempt, second.attempt) == (1, 2)
    ok = delivery.Outcome(second.delivery_id, 2, 200, None)
    late = delivery.Outcome(first.delivery_id, 1, 500, "HTTP 500")
    delivery.store(rt, [ok, late], now=clock.now(), max_attempts=8)
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.last_status_code) == ("delivered", 2, 200)


@pytest.mark.parametrize("workers", [3])
def test_concurrent_workers_send_each_message_once_in_order(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World, workers: int
) -> None:
    import threading

    requests = new_requests(api, world, 4)
    subs = [subscribe(rt, "*", url=f"https://w{i}.example/in") for i in range(2)]
    sent = {r: [emit(rt, "request.urged", r, i=i) for i in range(5)] for r in requests}
    receiver = Receiver(clock, {s.url: s.secret for s in subs})
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with receiver.client() as http:
                for _ in range(40):
                    fanout.fan_out(rt, now=clock.now(), batch=3)
                    delivery.deliver_due(rt, client=http, now=clock.now(), batch=4)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)

    for sub in subs:
        got = receiver.accepted(sub.url)
        assert len(got) == len(set(got)) == 20  # nobody sent anything twice
        for uids in sent.values():
            assert [m for m in got if m in uids] == uids
    assert {d.status for d in deliveries(rt)} == {"delivered"}


def test_a_later_event_waits_for_an_earlier_one_still_being_fanned_out(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    """Two fan-outs on PostgreSQL skip each other's events; the one holding a request's
    earlier event may commit last. Its later event must not be sent first."""
    if rt.db.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED: PostgreSQL only (SQLite runs one worker)")
    (r1,) = new_requests(api, world, 1)
    sub = subscribe(rt, "*")
    first = emit(rt, "request.signed", r1)
    second = emit(rt, "request.replied", r1)
    receiver = Receiver(clock, {URL: sub.secret})
    with receiver.client() as http:
        with rt.transaction() as other_worker:
            assert len(repository.claim_unfanned(other_worker, batch=1)) == 1  # holds `first`
            assert fanout.fan_out(rt, now=clock.now()) == 1  # `second` only
            assert delivery.deliver_due(rt, client=http, now=clock.now()) == 0
        run_worker(rt, clock, http)
    assert receiver.accepted() == [first, second]


def test_a_delivery_waits_while_an_earlier_event_of_its_request_is_not_fanned_out(
    rt: Runtime, clock: FrozenClock, api: TestClient, world: World
) -> None:
    """The same, on either database: the state such a race leaves, built by hand."""
    (r1,) = new_requests(api, world, 1)
    sub = subscribe(rt, "*")
    first = emit(rt, "request.signed", r1)
    second = emit(rt, "request.replied", r1)
    with rt.transaction() as s:
        (_, (second_id, *_)) = repository.claim_unfanned(s, batch=2)
        repository.add_deliveries(
            s,
            [
                {
                    "event_id": second_id,
                    "subscription_id": sub.id,
                    "request_id": r1,
                    "event_type": "request.replied",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": clock.now(),
                    "created_at": clock.now(),
                }
            ],
        )
        repository.mark_fanned_out(s, [second_id], now=clock.now())
    receiver = Receiver(clock, {URL: sub.secret})
    with receiver.client() as http:
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 0
        run_worker(rt, clock, http)
    assert receiver.accepted() == [first, second]


def test_a_lost_last_attempt_ends_dead_without_another_send(
    rt: Runtime, clock: FrozenClock
) -> None:
    sub = subscribe(rt, "*")
    emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())
    delivery.claim(rt, now=clock.now(), batch=10, max_attempts=1)  # then the worker dies
    receiver = Receiver(clock, {URL: sub.secret})
    clock.advance(rt.settings.webhooks.lease)
    with receiver.client() as http:
        assert delivery.deliver_due(rt, client=http, now=clock.now(), max_attempts=1) == 0
    assert receiver.calls == []
    (d,) = deliveries(rt)
    assert (d.status, d.attempts, d.next_attempt_at) == ("dead", 1, None)
    assert d.last_error == "gave up after 1 attempts (the last one's outcome was lost)"


def test_a_delivery_left_pending_for_a_deactivated_subscription_is_not_sent(
    rt: Runtime, clock: FrozenClock
) -> None:
    """A fan-out that read the subscription just before it was deactivated."""
    sub = subscribe(rt, "*")
    emit(rt, "request.dispatched")
    fanout.fan_out(rt, now=clock.now())
    with rt.transaction() as s:
        found = repository.subscription(s, sub.id)
        assert found is not None
        found.active = False
    receiver = Receiver(clock, {URL: sub.secret})
    with receiver.client() as http:
        assert delivery.deliver_due(rt, client=http, now=clock.now()) == 0
    assert receiver.calls == []
    assert [(d.status, d.last_error) for d in deliveries(rt)] == [
        ("dead", "the subscription is deactivated")
    ]
