"""Real `huying worker` processes on PostgreSQL: 2,000 deadlines falling due together, three
workers sharing them (one SIGKILLed and started again), and webhook receivers on loopback
that verify every Standard Webhooks signature, fail a third of their calls, or go down for
a while. Afterwards every deadline has fired exactly once in effect and every outbox event
has reached every receiver, in order per request.

Time: the requests are submitted with an injected clock an hour in the past, so every step
of every sign deadline (warning, overdue, rungs 1-3) is due when the workers start; no test
sleeps for a deadline. The only real waits are bounded polls, the receiver's downtime and
the 5 s first retry step of webhook delivery. A delivery lease lasts 160 s with the default
`webhooks` settings, so the leases a SIGKILLed worker leaves behind are made to run out once
delivery has stalled on them (see `expire_orphaned_leases`).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from huying import migrate
from huying.alerts import service as alerts_service
from huying.alerts.models import Delivery, Event, WebhookSubscription
from huying.alerts.schemas import WebhookIn
from huying.auth.service import authenticate
from huying.clock import FrozenClock
from huying.deadlines.models import Deadline
from huying.requests import service as requests_service
from huying.requests.models import Request, TimelineEntry
from huying.requests.schemas import SubmitIn
from huying.runtime import Runtime
from tests.conftest import PG_URL, World, _fresh_database, submit_body
from tests.processes import (
    EveryThirdCallFails,
    Processes,
    Receiver,
    analyze,
    autoanalyze,
    processes,
    receiving,
    runtime_for,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="several worker processes need PostgreSQL: set HUYING_TEST_DATABASE_URL (.ci/run does)",
)

# What one request's timeline and outbox hold once its sign deadline has run its course.
TIMELINE = ["submit", "route", "warn", "overdue", "escalate", "escalate", "escalate"]
EVENTS = [
    "request.dispatched",
    "request.warning",
    "request.overdue",
    "request.escalated",
    "request.escalated",
    "request.escalated",
]
LEASE_FAR = timedelta(seconds=60)  # a pending delivery due later than this is under a lease


@pytest.fixture
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh PostgreSQL database for this test alone, dropped after it."""
    yield from _fresh_database(tmp_path_factory)


# --- setting up ------------------------------------------------------------------------


@contextmanager
def prepared(
    tmp_path: Path, url: str, *, requests: int, receivers: list[Receiver], batch: int
) -> Iterator[tuple[Path, Runtime]]:
    """Write the config, migrate, load the directory, subscribe the receivers to `*`, and
    submit `requests` requests an hour ago, so that all their sign deadlines are due."""
    config = write_config(tmp_path, url, batch_size=batch)
    an_hour_ago = FrozenClock(datetime.now(UTC) - timedelta(hours=1))
    rt = runtime_for(config, clock=an_hour_ago)
    try:
        yield config, _fill(rt, requests=requests, receivers=receivers)
    finally:
        rt.close()


def _fill(rt: Runtime, *, requests: int, receivers: list[Receiver]) -> Runtime:
    migrate.upgrade(rt.db)
    world = World(rt)
    analyze(rt.db)
    body = SubmitIn.model_validate(submit_body())
    with rt.transaction() as s:
        who = authenticate(session=s, token=world.tokens["integration"], now=rt.now())
        for r in receivers:
            alerts_service.subscribe(
                rt=rt,
                session=s,
                data=WebhookIn(url=r.url, event_types=["*"], secret=r.secret),
                now=rt.now(),
            )
    for start in range(0, requests, 250):
        with rt.transaction() as s:
            for _ in range(start, min(start + 250, requests)):
                requests_service.submit(
                    rt=rt, session=s, principal=who, body=body, idempotency_key=None
                )
    analyze(rt.db)
    with rt.transaction() as s:
        due = s.scalar(
            select(func.count())
            .select_from(Deadline)
            .where(Deadline.kind == "sign", Deadline.next_fire_at <= datetime.now(UTC))
        )
    assert due == requests
    return rt


# --- watching ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    to_fire: int  # deadlines with a step due and still to fire
    climbed: int  # deadlines whose ladder is climbed to the top
    events: int
    unfanned: int
    pending: int
    delivered: int
    dead: int
    leased: int  # pending deliveries under a lease (an attempt in flight, or orphaned)

    @property
    def settled(self) -> bool:
        return self.to_fire == 0 and self.unfanned == 0 and self.pending == 0


def progress(rt: Runtime) -> Progress:
    now = datetime.now(UTC)
    with rt.transaction() as s:
        # due by now: a routed co-department's task deadline lies days ahead, not due here
        to_fire = s.scalar(
            select(func.count()).select_from(Deadline).where(Deadline.next_fire_at <= now)
        )
        climbed = s.scalar(
            select(func.count()).select_from(Deadline).where(Deadline.rungs_fired == 3)
        )
        events = s.scalar(select(func.count()).select_from(Event))
        unfanned = s.scalar(
            select(func.count()).select_from(Event).where(Event.fanned_out_at.is_(None))
        )
        status = dict(
            s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
        leased = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.next_attempt_at > now + LEASE_FAR)
        )
    return Progress(
        to_fire=to_fire or 0,
        climbed=climbed or 0,
        events=events or 0,
        unfanned=unfanned or 0,
        pending=status.get("pending", 0),
        delivered=status.get("delivered", 0),
        dead=status.get("dead", 0),
        leased=leased or 0,
    )


def expire_orphaned_leases(rt: Runtime, *, killed_at: datetime) -> int:
    """Stand in for the 160 s a delivery lease lasts (`webhooks.lease` of the default
    settings): the leases taken before the last SIGKILL run out now. Called once
    delivery has stalled on them; were a live worker's attempt among them still in flight,
    its message would at worst arrive twice, which at-least-once delivery allows (and
    `check_no_more_calls_than_attempts` bounds)."""
    now = datetime.now(UTC)
    with rt.transaction() as s:
        result = s.execute(
            update(Delivery)
            .where(
                Delivery.next_attempt_at > now + LEASE_FAR,
                Delivery.last_attempt_at <= killed_at,
            )
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
    return int(getattr(result, "rowcount", 0))


def run_until_settled(
    rt: Runtime, procs: Processes, *, timeout: float, killed_at: list[datetime]
) -> tuple[Progress, int]:
    """Poll until nothing is left to fire, fan out or deliver. When delivery stalls on the
    leases of killed workers, let those run out. Returns the last progress and how many
    leases were expired."""
    deadline = time.monotonic() + timeout
    expired = 0
    last: Progress | None = None
    stalled_since: float | None = None
    while True:
        now = progress(rt)
        if now.settled:
            return now, expired
        assert time.monotonic() < deadline, (
            f"not settled after {timeout:.0f} s: {now}\n{procs.logs()}"
        )
        stalled = (
            last is not None
            and now.to_fire == 0
            and now.unfanned == 0
            and now.delivered == last.delivered
            and now.leased > 0
        )
        if not stalled:
            stalled_since = None
        elif stalled_since is None:
            stalled_since = time.monotonic()
        elif time.monotonic() - stalled_since > 1.5 and killed_at:
            expired += expire_orphaned_leases(rt, killed_at=max(killed_at))
            stalled_since = None
        last = now
        time.sleep(0.25)


# --- checking ---------------------------------------------------------------------------


def check_fired_exactly_once(rt: Runtime, requests: int) -> None:
    """Each deadline's steps fired once each, in order; timelines have no gap."""
    with rt.transaction() as s:
        reqs = s.execute(select(Request.id, Request.escalation_level, Request.overdue)).all()
        assert len(reqs) == requests
        assert all(level == 3 and overdue for _, level, overdue in reqs), Counter(
            (level, overdue) for _, level, overdue in reqs
        )
        deadlines = s.execute(  # the sign deadlines (a co-department's task has its own)
            select(Deadline.status, Deadline.rungs_fired, Deadline.next_fire_at).where(
                Deadline.kind == "sign"
            )
        ).all()
        assert Counter(deadlines) == Counter({("missed", 3, None): requests})
        timelines: dict[int, list[tuple[int, str, int | None]]] = defaultdict(list)
        for rid, seq, action, data in s.execute(
            select(
                TimelineEntry.request_id,
                TimelineEntry.seq,
                TimelineEntry.action,
                TimelineEntry.data,
            ).order_by(TimelineEntry.request_id, TimelineEntry.seq)
        ):
            timelines[rid].append((seq, action, (data or {}).get("level")))
        events: dict[int, list[tuple[str, int | None]]] = defaultdict(list)
        for rid, type_, data in s.execute(
            select(Event.request_id, Event.type, Event.data).order_by(Event.id)
        ):
            events[rid].append((type_, data.get("level")))
    assert len(timelines) == requests
    wrong = {}
    for rid, rows in timelines.items():
        seqs = [seq for seq, _, _ in rows]
        actions = [action for _, action, _ in rows]
        levels = [level for _, action, level in rows if action == "escalate"]
        if seqs != list(range(1, len(TIMELINE) + 1)) or actions != TIMELINE or levels != [1, 2, 3]:
            wrong[rid] = rows
    assert not wrong, f"{len(wrong)} timeline(s) wrong, e.g. {next(iter(wrong.items()))}"
    wrong_events = {
        rid: evs
        for rid, evs in events.items()
        if [t for t, _ in evs] != EVENTS
        or [lvl for t, lvl in evs if t == "request.escalated"] != [1, 2, 3]
    }
    assert len(events) == requests
    assert not wrong_events, (
        f"{len(wrong_events)} outbox(es) wrong: {next(iter(wrong_events.items()))}"
    )


def check_delivered_in_order(rt: Runtime, receiver: Receiver) -> dict[str, int]:
    """Every outbox event reached `receiver` (at least once, signature valid), and per
    request the first acceptances came in event order. Returns a few figures."""
    with rt.transaction() as s:
        rows = s.execute(select(Event.uid, Event.request_id).order_by(Event.id)).all()
    expected: dict[int | None, list[str]] = defaultdict(list)
    for uid, rid in rows:
        expected[rid].append(uid)
    assert receiver.bad_signatures == 0
    got = receiver.accepted_ids()
    missing = {uid for uid, _ in rows} - got
    assert not missing, f"{len(missing)} event(s) never delivered, e.g. {sorted(missing)[:3]}"
    arrived: dict[int | None, list[str]] = defaultdict(list)
    for call in receiver.first_acceptances():
        assert call.request_id is not None
        arrived[call.request_id].append(call.msg_id)
    out_of_order = {
        rid: (arrived[rid], uids) for rid, uids in expected.items() if arrived[rid] != uids
    }
    assert not out_of_order, (
        f"{len(out_of_order)} request(s) delivered out of order, e.g. {next(iter(out_of_order.items()))}"
    )
    calls = receiver.snapshot()
    accepted = receiver.accepted()
    return {
        "events": len(rows),
        "calls": len(calls),
        "refused": sum(1 for c in calls if c.status >= 300),
        "duplicates": len(accepted) - len(got),
    }


def check_no_more_calls_than_attempts(rt: Runtime, receiver: Receiver) -> None:
    """A message reaches the receiver at most once per attempt recorded for it."""
    with rt.transaction() as s:
        attempts = dict(
            s.execute(
                select(Event.uid, Delivery.attempts)
                .join(Delivery, Delivery.event_id == Event.id)
                .join(WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id)
                .where(WebhookSubscription.url == receiver.url)
            ).all()
        )
    calls = Counter(c.msg_id for c in receiver.snapshot())
    extra = {uid: (n, attempts.get(uid)) for uid, n in calls.items() if n > attempts.get(uid, 0)}
    assert not extra, f"more calls than attempts: {list(extra.items())[:5]}"


def deliveries_of(rt: Runtime, receiver: Receiver) -> Counter[tuple[str, int]]:
    """(status, attempts) of every delivery to `receiver`'s subscription."""
    with rt.transaction() as s:
        rows = s.execute(
            select(Delivery.status, Delivery.attempts)
            .join(WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id)
            .where(WebhookSubscription.url == receiver.url)
        ).all()
    return Counter((status, attempts) for status, attempts in rows)


# --- the tests ----------------------------------------------------------------------------


def test_three_workers_one_killed_fire_2000_deadlines_once_and_deliver_every_event(
    tmp_path: Path, database_url: str
) -> None:
    n = 2000
    total = n * len(EVENTS)
    started = time.monotonic()
    with (
        receiving(Receiver()) as receiver,
        processes(tmp_path) as procs,
        prepared(tmp_path, database_url, requests=n, receivers=[receiver], batch=25) as (cfg, rt),
        autoanalyze(rt.db),
    ):
        submitted = time.monotonic()
        args = ("worker", "--config", str(cfg))
        workers = [procs.start(f"worker-{i}", *args) for i in range(3)]
        killed_at: list[datetime] = []

        # First SIGKILL: while the deadlines are being fired (a worker's first tick claims
        # batches of 25 until none is due, so it dies holding a claim or between two).
        at_first_kill = wait_until(
            "the workers to have fired a tenth of the deadlines",
            lambda: (p := progress(rt)).climbed >= n // 10 and p,
            timeout=60,
            interval=0.02,
            diagnose=procs.logs,
        )
        procs.kill(workers[0])
        killed_at.append(datetime.now(UTC))
        assert at_first_kill.to_fire > 0, f"the kill came after the firing: {at_first_kill}"
        workers[0] = procs.start("worker-0-second-life", *args)

        # Second SIGKILL: while alerts are being delivered. The receiver holds its calls
        # until more are waiting than two workers can send at once (8 each), so every
        # worker, the one killed included, is mid-round with deliveries under its lease.
        wait_until(
            "a fifth of the alerts to be delivered",
            lambda: progress(rt).delivered >= total // 5,
            timeout=60,
            interval=0.02,
            diagnose=procs.logs,
        )
        receiver.hold()
        held_from = time.monotonic()
        try:
            wait_until(
                "all three workers to be waiting on the receiver",
                lambda: receiver.held > 16,
                timeout=15,
                interval=0.01,
                diagnose=lambda: f"{receiver.held} call(s) held\n{procs.logs()}",
            )
            at_second_kill = progress(rt)
            procs.kill(workers[0])
            killed_at.append(datetime.now(UTC))
        finally:
            receiver.release()
            held_for = time.monotonic() - held_from
        assert at_second_kill.leased > 0
        workers[0] = procs.start("worker-0-third-life", *args)

        final, expired = run_until_settled(rt, procs, timeout=120, killed_at=killed_at)
        assert all(w.alive() for w in workers), procs.logs()
        settled = time.monotonic()

        check_fired_exactly_once(rt, n)
        assert final.dead == 0
        assert final.delivered == final.events == total
        figures = check_delivered_in_order(rt, receiver)
        assert figures["refused"] == 0
        # the killed worker's leases ran out and its deliveries were made by the others
        assert expired > 0
        # a message arrives once per attempt at most: a second time only when an attempt's
        # outcome was lost (its sender died with it in flight, or gave up waiting)
        check_no_more_calls_than_attempts(rt, receiver)
        attempts = deliveries_of(rt, receiver)
    print(
        f"\n{n} deadlines, 3 workers, 2 SIGKILLs: submitted in {submitted - started:.1f} s, "
        f"fired and delivered in {settled - submitted:.1f} s; first kill at {at_first_kill}, "
        f"second at {at_second_kill} (receiver held calls for {held_for:.1f} s); "
        f"{expired} orphaned lease(s) expired; {figures}; (status, attempts) {dict(attempts)}"
    )


def test_flaky_and_down_receivers_get_everything_in_order(
    tmp_path: Path, database_url: str
) -> None:
    n = 150
    flaky = Receiver(policy=EveryThirdCallFails())
    down = Receiver()
    started = time.monotonic()
    with (
        receiving(flaky),
        receiving(down),
        processes(tmp_path) as procs,
        prepared(tmp_path, database_url, requests=n, receivers=[flaky, down], batch=100) as (
            cfg,
            rt,
        ),
        autoanalyze(rt.db),
    ):
        for i in range(3):
            procs.start(f"worker-{i}", "worker", "--config", str(cfg))
        wait_until(
            "the second receiver to have taken a hundred messages",
            lambda: len(down.accepted()) >= 100,
            timeout=60,
            interval=0.02,
            diagnose=procs.logs,
        )
        down.stop()
        time.sleep(3)  # down for a while: connections refused; the first retry comes after 5 s
        down.start()

        final, _ = run_until_settled(rt, procs, timeout=90, killed_at=[])
        check_fired_exactly_once(rt, n)
        assert final.dead == 0
        assert final.delivered == final.events * 2
        flaky_figures = check_delivered_in_order(rt, flaky)
        down_figures = check_delivered_in_order(rt, down)
        check_no_more_calls_than_attempts(rt, flaky)
        check_no_more_calls_than_attempts(rt, down)
        # about a third of the flaky receiver's calls were refused, each retried once
        calls, refused = flaky_figures["calls"], flaky_figures["refused"]
        assert abs(refused - calls / 3) <= calls / 20, flaky_figures
        assert set(deliveries_of(rt, flaky)) <= {("delivered", 1), ("delivered", 2)}
        # the downtime cost attempts, and they were made up
        down_attempts = deliveries_of(rt, down)
        assert {status for status, _ in down_attempts} == {"delivered"}
        assert any(attempts > 1 for _, attempts in down_attempts), down_attempts
    print(
        f"\n{n} requests: flaky receiver {flaky_figures}; down-then-up receiver {down_figures}, "
        f"(status, attempts) {sorted(down_attempts.items())}; {time.monotonic() - started:.1f} s"
    )
