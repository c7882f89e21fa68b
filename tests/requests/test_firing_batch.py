"""Firing a batch set-wise (`huying.requests.firing`): a claimed batch of mixed kinds leaves
exactly what firing each deadline through the unit of work leaves, and a batch that fails
half-way leaves nothing of itself behind.

Dates: submitted Wednesday 2026-11-18 10:00 Shanghai (tests/conftest.py's T0). At FIRE
(Monday 23, 17:30) a plain submit's sign deadline has warned, gone overdue and climbed to
rung 2, and every routed co-department's assist task (3 working days) has warned, gone
overdue and reached its own rung 1; a reply of the 18th has let its feedback deadline pass
(auto-close, which cancels the open task); a 2-working-day suspension has ended (resume).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.orm import defer, raiseload

from huying.alerts.models import Event
from huying.clock import FrozenClock
from huying.deadlines import service as deadlines_service
from huying.deadlines.models import Deadline
from huying.requests import firing
from huying.requests import repository as requests_repository
from huying.requests import service as requests_service
from huying.requests.firing import FireResult, fire_due, fire_one
from huying.requests.models import Request, RequestTask, TimelineEntry
from huying.requests.repository import claim_due
from huying.runtime import Runtime
from tests.conftest import World, submit_body

API = "/api/v1/requests"
FIRE = datetime.fromisoformat("2026-11-23T17:30:00+08:00")
SUSPEND = {
    "reason_code": "awaiting_materials",
    "reason": "等待补充材料",
    "length": "2 working days",
}


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> None:
    r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
    assert r.status_code == 200, r.text


def submitted(client: TestClient, world: World) -> int:
    """A plain submit: POWER, led by GXJ, STREET co-handling with an assist task."""
    r = client.post(API, json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    rid: int = r.json()["id"]
    return rid


def scenario(client: TestClient, world: World) -> dict[str, int]:
    """One request of each kind of firing, by name."""
    made = {k: submitted(client, world) for k in ("ladder", "task_only", "auto_close", "resume")}
    act(client, world, "gxj", made["task_only"], "sign")  # on time: only its task runs late
    act(client, world, "gxj", made["auto_close"], "sign")
    act(client, world, "gxj", made["auto_close"], "reply", content="已办理", resolved=True)
    act(client, world, "gxj", made["resume"], "sign")
    act(client, world, "gxj", made["resume"], "request_suspension", **SUSPEND)
    act(client, world, "supervisor", made["resume"], "decide_suspension", approved=True)
    return made


def lives(rt: Runtime, rids: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Each request's row with its events, timeline, deadlines and tasks, keyed by its place
    in `rids`, without what differs between two copies of the same life (ids, numbers,
    uids, receipt tokens)."""
    out: dict[str, dict[str, Any]] = {}
    drop = {"id", "request_id", "number", "receipt_token", "title", "uid", "task_id"}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in drop}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    with rt.transaction() as s:
        for k, rid in enumerate(rids):
            req = s.get(Request, rid)
            assert req is not None
            columns = {c.key: getattr(req, c.key) for c in Request.__table__.columns}
            timeline = s.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.request_id == rid)
                .order_by(TimelineEntry.seq)
            )
            events = s.scalars(select(Event).where(Event.request_id == rid).order_by(Event.id))
            deadlines = s.scalars(
                select(Deadline).where(Deadline.request_id == rid).order_by(Deadline.id)
            )
            tasks = s.scalars(
                select(RequestTask).where(RequestTask.request_id == rid).order_by(RequestTask.id)
            )
            out[str(k)] = clean(
                {
                    "request": columns,
                    "timeline": [
                        {c.key: getattr(t, c.key) for c in TimelineEntry.__table__.columns}
                        for t in timeline
                    ],
                    "events": [
                        {c.key: getattr(e, c.key) for c in Event.__table__.columns} for e in events
                    ],
                    "deadlines": [
                        {c.key: getattr(d, c.key) for c in Deadline.__table__.columns}
                        for d in deadlines
                    ],
                    "tasks": [
                        {c.key: getattr(t, c.key) for c in RequestTask.__table__.columns}
                        for t in tasks
                    ],
                }
            )
    return out


def assert_lived_alike(rt: Runtime, got: dict[str, int], want: dict[str, int]) -> None:
    """The requests `got` lived what the requests `want` lived, in the same order; the
    version moves once per transaction that wrote the request, so it may be ahead."""
    lived, wanted = lives(rt, list(got.values())), lives(rt, list(want.values()))
    for k in wanted:
        assert lived[k]["request"].pop("version") >= wanted[k]["request"].pop("version")
    assert lived == wanted


def fire_through_the_unit_of_work(rt: Runtime, rids: Sequence[int], now: datetime) -> int:
    """The reference: each due deadline of these requests fired on its own by `fire_one`
    with the session as is, every row written by the ORM's flush."""
    fired = 0
    with rt.transaction() as s:
        due = s.scalars(
            select(Deadline)
            .where(Deadline.request_id.in_(rids), Deadline.next_fire_at <= now)
            .order_by(Deadline.next_fire_at, Deadline.id)
        ).all()
        for d in due:
            req = s.get(Request, d.request_id)
            assert req is not None
            fired += fire_one(s, rt, d, req, now=now)
    return fired


def counts(rt: Runtime) -> dict[str, Any]:
    with rt.transaction() as s:
        return {
            "timeline": s.scalar(select(func.count()).select_from(TimelineEntry)),
            "events": s.scalar(select(func.count()).select_from(Event)),
            "deadlines": sorted(
                (d.id, d.status, d.next_fire_at, d.warned_at, d.rungs_fired, d.version)
                for d in s.scalars(select(Deadline))
            ),
            "requests": sorted(
                (r.id, r.state, r.version, r.escalation_level, r.overdue, r.timeline_seq)
                for r in s.scalars(select(Request))
            ),
            "tasks": sorted((t.id, t.status) for t in s.scalars(select(RequestTask))),
        }


def test_a_mixed_batch_leaves_what_the_unit_of_work_leaves(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    reference = scenario(client, world)
    batched = scenario(client, world)
    clock.set(FIRE)
    by_one = fire_through_the_unit_of_work(rt, list(reference.values()), FIRE)
    result = fire_due(rt, now=FIRE)  # the reference's deadlines have nothing left due
    assert result.fired == by_one
    assert result.claimed == 7  # 4 tasks, the ladder's sign, a feedback, a suspension's timer
    assert_lived_alike(rt, batched, reference)

    ladder, task_only, closed, resumed = (lives(rt, [batched[k]])["0"] for k in batched)
    assert [t["action"] for t in ladder["timeline"]][2:] == [
        "warn",
        "overdue",
        "escalate",
        "escalate",
        "task_warn",
        "task_overdue",
        "task_escalate",
    ]
    assert (ladder["request"]["overdue"], ladder["request"]["escalation_level"]) == (True, 2)
    # a task's lateness is not the lead's: neither overdue nor a level on the request
    assert (task_only["request"]["overdue"], task_only["request"]["escalation_level"]) == (
        False,
        0,
    )
    escalated = [e for e in task_only["events"] if e["type"] == "request.task_escalated"]
    assert escalated and escalated[0]["data"]["notify"]  # whom the rung tells, resolved
    assert escalated[0]["public"] is False
    assert [e["data"]["level"] for e in ladder["events"] if e["type"] == "request.escalated"] == [
        1,
        2,
    ]
    assert all(e["data"]["notify"] for e in ladder["events"] if e["type"] == "request.escalated")
    assert closed["request"]["state"] == "closed"
    assert [t["status"] for t in closed["tasks"]] == ["cancelled"]
    assert resumed["request"]["state"] == "in_progress"
    assert resumed["timeline"][-1]["action"] in ("resume", "task_escalate")
    assert "resume" in [t["action"] for t in resumed["timeline"]]
    assert fire_due(rt, now=FIRE).fired == 0  # each step once


def test_a_step_ends_a_task_whose_deadline_the_claim_did_not_read(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """A batch reads its requests' tasks' deadlines only when a step needs them: an
    auto-close cancels the open task, and with it the task's deadline, which is not due and
    so was not claimed."""
    made = {}
    for name in ("reference", "batched"):
        made[name] = rid = submitted(client, world)
        act(client, world, "gxj", rid, "sign")
        act(client, world, "gxj", rid, "reply", content="已办理", resolved=True)
    later = FIRE + timedelta(days=30)
    with rt.transaction() as s:  # the tasks' deadlines: running, due long after FIRE
        for d in s.scalars(
            select(Deadline).where(
                Deadline.request_id.in_(made.values()), Deadline.task_id.is_not(None)
            )
        ):
            d.due_at = d.next_fire_at = later
            d.warn_at = None
    clock.set(FIRE)
    by_one = fire_through_the_unit_of_work(rt, [made["reference"]], FIRE)
    result = fire_due(rt, now=FIRE)
    assert (result.claimed, result.fired) == (1, by_one)
    assert_lived_alike(rt, {"0": made["batched"]}, {"0": made["reference"]})
    closed = lives(rt, [made["batched"]])["0"]
    assert closed["request"]["state"] == "closed"
    assert [t["status"] for t in closed["tasks"]] == ["cancelled"]
    (task_deadline,) = [d for d in closed["deadlines"] if d["kind"] == "task"]
    assert (task_deadline["status"], task_deadline["next_fire_at"]) == ("cancelled", None)
    assert task_deadline["completed_at"] is not None


def reads_of_tasks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each time a batch reads its requests' tasks as the session's objects, or their
    deadlines."""
    read: list[str] = []
    load, open_of_tasks = requests_repository.load_collections, deadlines_service.open_of_tasks

    def loading(session: Any, reqs: Any) -> None:
        read.append("tasks")
        load(session, reqs)

    def opening(**kwargs: Any) -> Any:
        read.append("their deadlines")
        return open_of_tasks(**kwargs)

    monkeypatch.setattr(requests_repository, "load_collections", loading)
    monkeypatch.setattr(deadlines_service, "open_of_tasks", opening)
    return read


def task_escalations(rt: Runtime, rid: int) -> list[tuple[str, str]]:
    """(department named, task's department) of each task_escalated event of request rid."""
    life = lives(rt, [rid])["0"]
    (task,) = life["tasks"]
    return [
        (e["data"]["department"], task["department_code"])
        for e in life["events"]
        if e["type"] == "request.task_escalated"
    ]


def test_the_ladders_steps_read_no_task_as_an_object(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warnings, overdues and rungs, the lead's and a task's, read the tasks and
    co-departments as the claim read them, as rows: the batch loads no task as an object,
    nor any task's deadline, and a task's rung still names the task's department."""
    ladder, task_only = submitted(client, world), submitted(client, world)
    act(client, world, "gxj", task_only, "sign")
    clock.set(FIRE)
    read = reads_of_tasks(monkeypatch)
    result = fire_due(rt, now=FIRE)
    assert result.claimed == 3  # the ladder's sign deadline and the two tasks'
    assert read == []
    for rid in (ladder, task_only):
        named = task_escalations(rt, rid)
        assert named and all(said == own for said, own in named)


def test_a_step_after_one_that_read_the_tasks_reads_the_requests_own(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a step has read the tasks as objects (an auto-close cancels them), every step
    after it in the batch reads those, not the rows the claim read: a task's rung of
    another request, fired after it, lives what it lives alone."""
    made: dict[str, dict[str, int]] = {}
    for name in ("reference", "batched"):
        closing, laddered = submitted(client, world), submitted(client, world)
        act(client, world, "gxj", closing, "sign")
        act(client, world, "gxj", closing, "reply", content="已办理", resolved=True)
        act(client, world, "gxj", laddered, "sign")
        made[name] = {"closing": closing, "laddered": laddered}
    first = datetime.fromisoformat("2026-11-18T11:00:00+08:00")
    with rt.transaction() as s:  # the feedback deadlines fall due first: claimed first
        for d in s.scalars(
            select(Deadline).where(
                Deadline.request_id.in_([m["closing"] for m in made.values()]),
                Deadline.kind == "feedback",
            )
        ):
            d.due_at = d.next_fire_at = first
            d.warn_at = None
    clock.set(FIRE)
    fire_through_the_unit_of_work(rt, list(made["reference"].values()), FIRE)
    read = reads_of_tasks(monkeypatch)
    result = fire_due(rt, now=FIRE)
    assert result.claimed == 3  # the feedback deadline, and both tasks'
    assert read == ["tasks", "their deadlines"]  # once, for the whole batch
    assert_lived_alike(rt, made["batched"], made["reference"])
    named = task_escalations(rt, made["batched"]["laddered"])
    assert named and all(said == own for said, own in named)


def test_with_tasks_adds_each_open_task_deadline_once(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """`_Batch.with_tasks` loads the tasks as objects and adds their open deadlines: a
    claimed one (held already) once, one a step has ended not at all; the rows the claim
    read are dropped."""
    rid = submitted(client, world)
    for ended in (False, True):
        with rt.transaction() as s:
            # as the claim loads it: its tasks and co-departments not
            req = s.get(Request, rid, options=requests_repository._COLLECTIONS_BY_HAND)
            assert req is not None
            (own,) = s.scalars(
                select(Deadline).where(Deadline.request_id == rid, Deadline.task_id.is_not(None))
            )
            if ended:  # ended by a step of this batch, not yet written
                own.completed_at, own.status = clock.now(), "cancelled"
            claimed = [] if ended else [own]
            batch = firing._Batch.load(s, [req], claimed, claim=True)
            assert batch.views is not None and "tasks" not in req.__dict__
            batch.with_tasks()
            assert sum(d is own for d in batch.deadlines[rid]) == (0 if ended else 1)
            assert batch.views is None and len(req.tasks) == 1
            s.rollback()


def test_a_batch_that_fails_half_way_leaves_nothing_and_fires_all_after(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = scenario(client, world)
    clock.set(FIRE)
    before = counts(rt)
    real = requests_service.apply_system
    calls = {"n": 0}

    def crash_on_the_fifth(**kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("the worker dies mid-batch")
        real(**kwargs)

    monkeypatch.setattr(requests_service, "apply_system", crash_on_the_fifth)
    with pytest.raises(RuntimeError):
        fire_due(rt, now=FIRE)
    assert counts(rt) == before  # nothing of the batch, not its first four steps either

    monkeypatch.setattr(requests_service, "apply_system", real)
    fired = fire_due(rt, now=FIRE).fired
    assert fired > 5
    after = lives(rt, list(made.values()))
    overdue = [t for r in after.values() for t in r["timeline"] if t["action"] == "overdue"]
    assert len(overdue) == 1  # the ladder's sign deadline, once
    assert fire_due(rt, now=FIRE).fired == 0


@pytest.mark.parametrize("failing", [Event, TimelineEntry])
def test_a_batch_whose_insert_fails_leaves_nothing(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    failing: type[Any],
) -> None:
    scenario(client, world)
    clock.set(FIRE)
    before = counts(rt)
    real = firing._insert

    def insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
        if model is failing:
            raise RuntimeError("the connection drops during the batch's writes")
        real(session, model, rows)

    monkeypatch.setattr(firing, "_insert", insert)
    with pytest.raises(RuntimeError):
        fire_due(rt, now=FIRE)
    assert counts(rt) == before
    monkeypatch.setattr(firing, "_insert", real)
    assert fire_due(rt, now=FIRE).fired > 0
    assert fire_due(rt, now=FIRE).fired == 0


def test_small_batches_fire_the_same_as_one(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """Batches of 2 split a request's deadlines between transactions; nothing is lost or
    fired twice, and each event stays in the order it happened."""
    reference = scenario(client, world)
    batched = scenario(client, world)
    clock.set(FIRE)
    fire_through_the_unit_of_work(rt, list(reference.values()), FIRE)
    result = fire_due(rt, now=FIRE, batch=2)
    assert result.claimed == 7
    assert_lived_alike(rt, batched, reference)


def test_the_cycle_collector_is_off_for_a_burst_but_passes_every_few_batches(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Off while the steps fire, one pass over the young objects every `EVERY` batches, and
    on again after the call, whether it returns or raises."""
    scenario(client, world)
    clock.set(FIRE)
    real_apply, real_collect = requests_service.apply_system, gc.collect
    during: list[bool] = []
    passes: list[int] = []

    def apply_system(**kwargs: Any) -> None:
        during.append(gc.isenabled())
        real_apply(**kwargs)

    def collect(generation: int = 2) -> int:
        passes.append(generation)
        return real_collect(generation)

    def crash(**kwargs: Any) -> None:
        during.append(gc.isenabled())
        raise RuntimeError("the worker dies mid-batch")

    monkeypatch.setattr(requests_service, "apply_system", crash)
    with pytest.raises(RuntimeError):
        fire_due(rt, now=FIRE, batch=2)
    assert during == [False]
    assert gc.isenabled()
    during.clear()

    monkeypatch.setattr(requests_service, "apply_system", apply_system)
    monkeypatch.setattr(gc, "collect", collect)
    monkeypatch.setattr(firing._CycleCollector, "EVERY", 2)
    real_fire_batch, batches = firing._fire_batch, []

    def fire_batch(*args: Any, **kwargs: Any) -> None:
        batches.append(len(args[1].rows))
        real_fire_batch(*args, **kwargs)

    monkeypatch.setattr(firing, "_fire_batch", fire_batch)
    assert fire_due(rt, now=FIRE, batch=2).claimed == 7
    assert during and not any(during)
    assert len(batches) >= 4 and batches[-1] < 2
    assert passes == [0] * ((len(batches) - 1) // 2)  # every second batch, not the last
    assert gc.isenabled()


def test_a_batch_another_worker_holds_is_skipped_not_fired_twice(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """Two workers never fire the same deadline: while one holds its claimed batch, a second
    claims none of it (SKIP LOCKED); what the first gives up, the second fires, once."""
    if rt.db.dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED: PostgreSQL only (SQLite runs one worker)")
    scenario(client, world)
    clock.set(FIRE)
    with rt.transaction() as held:
        claimed = claim_due(held, now=FIRE, batch=500)
        assert len(claimed) == 7
        assert fire_due(rt, now=FIRE) == FireResult(claimed=0, fired=0)
        held.rollback()  # the first worker dies before it fired anything
    second = fire_due(rt, now=FIRE)
    assert second.claimed == 7 and second.fired > 7
    assert fire_due(rt, now=FIRE).fired == 0


def test_even_a_first_claim_rules_out_a_bitmap_scan(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """The statistics never know how many are due (`next_fire_at` moves with every step),
    so the planner may take a burst for a few rows and plan a bitmap scan, which reads and
    sorts every due row before the first lock (190-500 ms for a first claim of 10,000 due,
    BENCHMARKS.md). The claim rules it out for its transaction on the first claim of a tick
    too, not only once a claim came back full: a tick cannot know it starts a burst. (A
    plan cannot show it here: on a few rows the index's order is the planner's own choice.)"""
    if rt.db.dialect.name != "postgresql":
        pytest.skip("the planner's settings: PostgreSQL only")
    scenario(client, world)
    clock.set(FIRE)

    def bitmap_scans(session: Any) -> str:
        return str(session.connection().exec_driver_sql("SHOW enable_bitmapscan").scalar())

    with rt.transaction() as s:
        assert bitmap_scans(s) == "on"  # the server's default, for every other transaction
        assert len(claim_due(s, now=FIRE, batch=500)) == 7
        assert bitmap_scans(s) == "off"
        s.rollback()
    with rt.transaction() as s:  # SET LOCAL: ends with the claim's transaction
        assert bitmap_scans(s) == "on"


def test_a_claim_never_locks_a_deadline_without_its_request(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """A request that another transaction holds (another worker's batch, or this worker's
    batch in flight): the claim neither returns nor locks any of its deadlines. Locked, one
    of them would make the holder's UPDATE of it (the auto-close below ends the request's
    open task deadline, due as well) wait for the claim's transaction, which may itself be
    waiting for the holder to commit."""
    if rt.db.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite runs one worker)")
    made = scenario(client, world)
    clock.set(FIRE)
    closing = made["auto_close"]
    with rt.transaction() as s:
        ids = set(s.scalars(select(Deadline.id).where(Deadline.request_id == closing)))
    assert len(ids) >= 2  # the feedback deadline and the open task's, both due at FIRE
    with rt.db.connect() as holder, rt.transaction() as held:
        holder.execute(select(Request.id).where(Request.id == closing).with_for_update())
        claimed = claim_due(held, now=FIRE, batch=500)
        assert len(claimed) == 5 and closing not in {r.id for _, r in claimed}
        with rt.db.connect() as other:  # a third transaction may lock them at once
            locked = other.execute(
                select(Deadline.id).where(Deadline.id.in_(ids)).with_for_update(nowait=True)
            ).all()
            assert {i for (i,) in locked} == ids
            other.rollback()
        held.rollback()
        holder.rollback()
    assert fire_due(rt, now=FIRE).claimed == 7


def test_a_claim_made_while_a_batch_is_written_never_blocks_it(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of one on PostgreSQL, each claimed while the one before is written. The
    auto-close's batch ends the request's task deadline, which is due right after it: had
    the next claim locked that deadline (its request being held, it would fire nothing),
    the auto-close's UPDATE would wait for the next batch, which commits only after it.
    With lock_timeout at 1 s any such wait fails the call."""
    if rt.db.dialect.name != "postgresql":
        pytest.skip("a writer thread and row locks: PostgreSQL only")
    closing = scenario(client, world)["auto_close"]
    clock.set(FIRE)
    with rt.transaction() as s:  # the task's deadline next in the claim's order
        feedback, task = (
            s.scalars(
                select(Deadline).where(Deadline.request_id == closing, Deadline.kind == kind)
            ).one()
            for kind in ("feedback", "task")
        )
        assert feedback.next_fire_at is not None and task.next_fire_at is not None
        assert feedback.next_fire_at <= FIRE and task.next_fire_at <= FIRE
        task.next_fire_at = feedback.next_fire_at + timedelta(microseconds=1)

    def no_waiting(connection: Any, *_: Any) -> None:
        connection.exec_driver_sql("SET LOCAL lock_timeout = '1s'")

    # each batch's writes start once the next claim is made, as they may on a busy machine
    claims: list[set[int]] = []
    made = threading.Condition()
    real_claim, real_write = requests_repository.claim_due, firing._write

    def claim(session: Any, **kwargs: Any) -> Any:
        rows = real_claim(session, **kwargs)
        with made:
            claims.append({d.id for d, _ in rows})
            made.notify_all()
        return rows

    def write(session: Any, written: Any, rows: Any) -> None:
        if rows and threading.current_thread().name.startswith("huying-firing"):
            mine = next(k for k, ids in enumerate(claims) if rows[0][0].id in ids)
            with made:
                assert made.wait_for(lambda: len(claims) > mine + 1, timeout=10)
        real_write(session, written, rows)

    monkeypatch.setattr(requests_repository, "claim_due", claim)
    monkeypatch.setattr(firing, "_write", write)
    event.listen(rt.db, "begin", no_waiting)
    try:
        assert fire_due(rt, now=FIRE, batch=1).claimed >= 6
    finally:
        event.remove(rt.db, "begin", no_waiting)
    monkeypatch.undo()
    closed = lives(rt, [closing])["0"]
    assert closed["request"]["state"] == "closed"
    assert [t["status"] for t in closed["tasks"]] == ["cancelled"]
    assert fire_due(rt, now=FIRE).fired == 0


def test_no_step_reads_what_the_claim_leaves_out(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim defers the columns no step reads, and does not load the requests' tasks
    and co-departments; were one read, it would cost a SELECT per request of a burst.
    Refused here instead, each kind of step still fires."""
    made = scenario(client, world)
    clock.set(FIRE)

    def refused(columns: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(defer(column, raiseload=True) for column in columns)

    monkeypatch.setattr(
        requests_repository, "_left_out", lambda: refused(requests_repository._NOT_FIRED_ON)
    )
    monkeypatch.setattr(
        requests_repository,
        "_left_out_of_tasks",
        lambda: refused(requests_repository._TASK_NOT_FIRED_ON),
    )
    # and its tasks and co-departments: read as rows, or for the whole batch at once
    monkeypatch.setattr(
        requests_repository,
        "_COLLECTIONS_BY_HAND",
        (raiseload(Request.co_departments), raiseload(Request.tasks)),
    )
    result = fire_due(rt, now=FIRE)
    assert result.claimed == 7
    fired = lives(rt, list(made.values()))
    actions = {t["action"] for r in fired.values() for t in r["timeline"]}
    assert {"escalate", "task_escalate", "auto_close", "resume"} <= actions


def test_batches_are_written_while_the_next_is_fired(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL a full batch is written and committed on a thread of its own while the
    next is claimed and fired; the result is what batches written one after the other leave
    (`test_small_batches_fire_the_same_as_one`), each deadline once. SQLite writes in the
    caller's thread: one writer at a time, nothing to overlap."""
    reference = scenario(client, world)
    batched = scenario(client, world)
    clock.set(FIRE)
    fire_through_the_unit_of_work(rt, list(reference.values()), FIRE)
    threads: list[str] = []
    real = firing._write

    def write(session: Any, written: Any, rows: Any) -> None:
        threads.append(threading.current_thread().name)
        real(session, written, rows)

    monkeypatch.setattr(firing, "_write", write)
    result = fire_due(rt, now=FIRE, batch=2)
    assert result.claimed == 7
    on_their_own = [t for t in threads if t.startswith("huying-firing")]
    if rt.db.dialect.name == "postgresql":
        assert on_their_own, threads  # the full batches of 2
    else:
        assert not on_their_own
    assert_lived_alike(rt, batched, reference)
    assert fire_due(rt, now=FIRE, batch=2).fired == 0


def test_a_batch_in_flight_that_fails_fails_the_call_and_keeps_what_was_committed(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second batch's writes fail (on the writer's thread on PostgreSQL): `fire_due`
    raises, the first batch stays committed, the second leaves nothing, and the next call
    fires what is left: in the end each step once, as the unit of work fires them."""
    reference = scenario(client, world)
    made = scenario(client, world)
    clock.set(FIRE)
    fire_through_the_unit_of_work(rt, list(reference.values()), FIRE)
    before = counts(rt)["timeline"]
    real = firing._insert
    calls = {"timeline": 0}

    def insert(session: Any, model: Any, rows: list[dict[str, Any]]) -> None:
        if model is TimelineEntry:
            calls["timeline"] += 1
            if calls["timeline"] == 2:
                raise RuntimeError("the connection drops during the second batch's writes")
        real(session, model, rows)

    monkeypatch.setattr(firing, "_insert", insert)
    with pytest.raises(RuntimeError, match="second batch"):
        fire_due(rt, now=FIRE, batch=2)
    assert counts(rt)["timeline"] > before  # the first batch is committed
    monkeypatch.setattr(firing, "_insert", real)
    assert 0 < fire_due(rt, now=FIRE, batch=2).claimed < 7
    assert_lived_alike(rt, made, reference)
    assert fire_due(rt, now=FIRE).fired == 0
