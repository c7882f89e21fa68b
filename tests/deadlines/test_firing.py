"""Deadlines with an injected clock: warnings, overdue, the ladder, auto-close, pause and catch-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, event, select, update
from sqlalchemy.orm.exc import StaleDataError

from huying.alerts.models import Event
from huying.clock import FrozenClock
from huying.errors import Conflict
from huying.requests.firing import RETRY_LATER, fire_due
from huying.requests.models import Request
from huying.requests.repository import write_batch
from huying.runtime import Runtime, build_runtime
from tests.conftest import QUIET_TASKS, Specs, World, empty_tables, make_settings, submit_body

API = "/api/v1/requests"


@pytest.fixture
def rt(migrated: str, clock: FrozenClock, workflows: Specs) -> Iterator[Runtime]:
    """tests/conftest.py's runtime with the co-department's task (POWER routes with STREET
    co-handling) quiet for these weeks: these tests count the lead's own steps."""
    settings = make_settings(migrated, time_limits=QUIET_TASKS)
    runtime = build_runtime(settings, clock=clock, workflows=workflows)
    yield runtime
    empty_tables(runtime)
    runtime.close()


def submit(client: TestClient, world: World, **over: Any) -> dict[str, Any]:
    r = client.post(API, json=submit_body(**over), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def get(client: TestClient, world: World, rid: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{API}/{rid}", headers=world.h("supervisor")).json()
    return body


def events(rt: Runtime, rid: int) -> list[str]:
    with rt.transaction() as s:
        return list(s.scalars(select(Event.type).where(Event.request_id == rid).order_by(Event.id)))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_sign_deadline_warns_goes_overdue_and_climbs_the_ladder(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    # submitted Wednesday 2026-11-18 10:00 +08:00; sign within 1 working day → Thu 17:30
    req = submit(client, world)
    sign = req["deadlines"][0]
    assert sign["due_at"] == "2026-11-19T17:30:00+08:00"
    warn_at = at(sign["warn_at"])
    assert at(req["created_at"]) < warn_at < at(sign["due_at"])

    clock.set(warn_at - timedelta(seconds=1))
    assert fire_due(rt, now=clock.now()).fired == 0
    clock.set(warn_at)
    assert fire_due(rt, now=clock.now()).fired == 1
    assert fire_due(rt, now=clock.now()).fired == 0  # never twice
    assert get(client, world, req["id"])["deadlines"][0]["warned"] is True

    clock.set(at("2026-11-19T17:30:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 2  # overdue, then rung 1 ("0 seconds" after)
    now = get(client, world, req["id"])
    assert now["overdue"] is True
    assert now["escalation_level"] == 1
    assert now["deadlines"][0]["status"] == "missed"

    # rung 2: 1 working day after the due instant → Friday 17:30; rung 3: 3 working days → Tue 17:30
    clock.set(at("2026-11-20T17:29:59+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 0
    clock.set(at("2026-11-20T17:30:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 1
    clock.set(at("2026-11-30T09:00:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 1
    assert fire_due(rt, now=clock.now()).fired == 0  # the ladder is climbed
    final = get(client, world, req["id"])
    assert final["escalation_level"] == 3
    assert events(rt, req["id"]) == [
        "request.dispatched",
        "request.warning",
        "request.overdue",
        "request.escalated",
        "request.escalated",
        "request.escalated",
    ]
    actions = [t["action"] for t in final["timeline"]]
    assert actions == ["submit", "route", "warn", "overdue", "escalate", "escalate", "escalate"]
    assert [t["seq"] for t in final["timeline"]] == list(range(1, 8))


def test_escalation_alert_names_whom_the_rung_notifies(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submit(client, world)
    clock.set(at("2026-11-30T09:00:00+08:00"))
    fire_due(rt, now=clock.now())
    with rt.transaction() as s:
        escalations = s.scalars(
            select(Event).where(Event.type == "request.escalated").order_by(Event.id)
        ).all()
        data = [e.data for e in escalations]
    assert [d["level"] for d in data] == [1, 2, 3]
    assert data[0]["request"]["lead_department"] == "GXJ"
    assert data[0]["notify"][0]["role"] == "department_head"
    assert [x["name"] for x in data[0]["notify"][0]["leaders"]] == ["陈局长"]
    # district_supervision leaders are found up the parent chain
    assert [x["name"] for x in data[2]["notify"][0]["leaders"]] == ["王区长"]
    assert data[0]["request"]["number"] == req["number"]


def test_a_met_deadline_stops_its_ladder(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submit(client, world)
    r = client.post(f"{API}/{req['id']}/actions/sign", json={}, headers=world.h("gxj"))
    assert r.status_code == 200
    clock.set(at("2026-11-19T18:00:00+08:00"))
    fire_due(rt, now=clock.now())
    after = get(client, world, req["id"])
    assert after["escalation_level"] == 0
    assert after["deadlines"][0]["status"] == "met"


def test_catch_up_after_downtime_fires_each_step_once_in_order(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submit(client, world)
    clock.set(at("2026-12-31T12:00:00+08:00"))  # the worker was down for six weeks
    result = fire_due(rt, now=clock.now())
    assert result.fired == 5  # warning, overdue, three rungs
    assert fire_due(rt, now=clock.now()).fired == 0
    assert events(rt, req["id"])[1:] == [
        "request.warning",
        "request.overdue",
        "request.escalated",
        "request.escalated",
        "request.escalated",
    ]


def test_unrated_reply_auto_closes_when_feedback_deadline_passes(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world)["id"]
    client.post(f"{API}/{rid}/actions/sign", json={}, headers=world.h("gxj"))
    r = client.post(
        f"{API}/{rid}/actions/reply",
        json={"content": "已办理", "resolved": True},
        headers=world.h("gxj"),
    )
    feedback = next(d for d in r.json()["deadlines"] if d["kind"] == "feedback")
    clock.set(at(feedback["due_at"]))
    fire_due(rt, now=clock.now())
    closed = get(client, world, rid)
    assert closed["state"] == "closed"
    assert closed["rating"] is None
    assert closed["escalation_level"] == 0
    assert closed["timeline"][-1]["action"] == "auto_close"


def test_suspension_adds_the_paused_working_days_back(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world)["id"]
    client.post(f"{API}/{rid}/actions/sign", json={}, headers=world.h("gxj"))
    reply = next(d for d in get(client, world, rid)["deadlines"] if d["kind"] == "reply")
    assert reply["due_at"] == "2026-11-25T17:30:00+08:00"  # 5 working days after Wed 18th
    asked = client.post(
        f"{API}/{rid}/actions/request_suspension",
        json={
            "reason_code": "awaiting_materials",
            "reason": "等待补充材料",
            "length": "10 working days",
        },
        headers=world.h("gxj"),
    )
    assert asked.status_code == 200, asked.text
    decided = client.post(
        f"{API}/{rid}/actions/decide_suspension",
        json={"approved": True},
        headers=world.h("supervisor"),
    )
    assert decided.json()["state"] == "suspended", decided.text
    clock.set(at("2026-11-26T10:00:00+08:00"))  # past the old due: nothing fires while paused
    assert fire_due(rt, now=clock.now()).fired == 0
    clock.set(at("2026-11-23T10:00:00+08:00"))
    client.post(f"{API}/{rid}/actions/resume", json={}, headers=world.h("gxj"))
    resumed = next(d for d in get(client, world, rid)["deadlines"] if d["kind"] == "reply")
    # 5 working days remained at the pause (Thu 19 … Wed 25); counted again from Monday 23
    assert resumed["due_at"] == "2026-11-30T17:30:00+08:00"
    assert resumed["status"] == "running"
    assert get(client, world, rid)["overdue"] is False


def test_two_claims_of_the_same_step_change_nothing(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    submit(client, world)
    clock.set(at("2026-11-19T17:30:00+08:00"))
    first = fire_due(rt, now=clock.now())
    second = fire_due(rt, now=clock.now())
    assert first.fired == 3 and second.fired == 0


def test_a_batch_writes_each_request_once_and_its_version_moves_once(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    """The worker writes a batch's requests with one UPDATE per set of changed columns, not
    one per request; the ETag moves as a unit-of-work flush would move it."""
    ids = [submit(client, world)["id"] for _ in range(3)]
    before = {i: get(client, world, i)["version"] for i in ids}
    updates: list[tuple[str, bool]] = []

    def count(_c: Any, _cur: Any, statement: str, _p: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("UPDATE requests"):
            updates.append((statement, many))

    event.listen(rt.db, "before_cursor_execute", count)
    try:
        clock.set(at("2026-11-19T17:30:00+08:00"))  # warning, overdue and rung 1 of each
        assert fire_due(rt, now=clock.now()).fired == 9
    finally:
        event.remove(rt.db, "before_cursor_execute", count)
    # one statement over arrays on PostgreSQL, one executemany elsewhere
    assert len(updates) == 1, updates
    assert updates[0][1] is (rt.db.dialect.name != "postgresql"), updates
    for i in ids:
        now = get(client, world, i)
        assert (now["escalation_level"], now["overdue"]) == (1, True)
        assert now["version"] == before[i] + 1
        assert [e["action"] for e in now["timeline"]][-3:] == ["warn", "overdue", "escalate"]


def test_a_request_changed_under_a_claimed_batch_fails_the_batch(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world)["id"]
    with pytest.raises(StaleDataError), rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        req.escalation_level = 2
        # another writer, which the claim's row lock keeps out on PostgreSQL
        table = cast(Table, Request.__table__)
        s.connection().execute(
            update(table).where(table.c.id == rid).values(version=table.c.version + 1)
        )
        write_batch(s, [req])
    assert get(client, world, rid)["escalation_level"] == 0  # nothing written


def test_a_refused_step_is_left_to_do_and_fired_later(
    client: TestClient,
    world: World,
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rid = submit(client, world)["id"]
    real_fire = rt.workflows.fire

    def refuse_overdue(*args: Any, **kwargs: Any) -> Any:
        if args[3] == "overdue":
            raise Conflict("refused for the test")
        return real_fire(*args, **kwargs)

    monkeypatch.setattr(rt.workflows, "fire", refuse_overdue)
    clock.set(at("2026-11-19T17:30:00+08:00"))  # warning, overdue and rung 1 are due
    fire_due(rt, now=clock.now())  # the warning fires; the overdue step is refused
    after = get(client, world, rid)
    assert after["overdue"] is False and after["deadlines"][0]["status"] == "running"
    assert [e["action"] for e in after["timeline"]][-1] == "warn"

    monkeypatch.setattr(rt.workflows, "fire", real_fire)
    clock.advance(RETRY_LATER)
    assert fire_due(rt, now=clock.now()).fired == 2  # overdue, then rung 1: nothing skipped
    after = get(client, world, rid)
    assert (after["overdue"], after["escalation_level"]) == (True, 1)
    assert [e["action"] for e in after["timeline"]][-3:] == ["warn", "overdue", "escalate"]
