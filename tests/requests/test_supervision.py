"""Supervision that holds (DESIGN.md part two), through the API and the worker: input the
configuration does not allow is a 422 naming the field, a rule of state or time a 409 saying
why, and either way nothing is written; the worker resumes a suspension; an extension asked
in time lifts overdue even when approved late; overdue is a fact; every escalation names
people; levels are rungs.

Dates: submitted Wednesday 2026-11-18 10:00 Shanghai and signed at once, the reply deadline
(5 working days) falls due Wednesday 2026-11-25 17:30."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.alerts.models import Event
from huying.app import create_app
from huying.clock import FrozenClock
from huying.requests.firing import fire_due
from huying.requests.models import Request
from huying.runtime import Runtime, build_runtime
from tests.conftest import QUIET_TASKS, Specs, World, empty_tables, make_settings, submit_body

API = "/api/v1/requests"
REPLY_DUE = "2026-11-25T17:30:00+08:00"
SUSPEND = {
    "reason_code": "awaiting_materials",
    "reason": "等待企业补充环评材料",
    "length": "2 working days",
}
CHEN = {  # GXJ's department_head (tests/world.yaml names no title or phone)
    "name": "陈局长",
    "title": "",
    "phone": "",
    "role": "department_head",
    "department": "GXJ",
    "department_name": "区工信局",
}
LI = {  # STREET's street_leadership
    "name": "李主任",
    "title": "",
    "phone": "",
    "role": "street_leadership",
    "department": "STREET",
    "department_name": "萝岗街道",
}
WANG = {  # DIST's district_supervision, GXJ's parent
    "name": "王区长",
    "title": "",
    "phone": "",
    "role": "district_supervision",
    "department": "DIST",
    "department_name": "区政府",
}
DEFAULT_LADDER: list[dict[str, Any]] = [
    {"after": "0 seconds", "level": 1, "notify": ["department_head"]},
    {"after": "1 working day", "level": 2, "notify": ["street_leadership"]},
    {"after": "3 working days", "level": 3, "notify": ["district_supervision"]},
]


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings the runtime is built with beyond tests/conftest.py's; a test that needs
    others says so with `@pytest.mark.parametrize("overrides", [{...}])`."""
    return {}


@pytest.fixture
def rt(
    migrated: str, clock: FrozenClock, workflows: Specs, overrides: dict[str, Any]
) -> Iterator[Runtime]:
    """tests/conftest.py's runtime, with `overrides`."""
    settings = make_settings(migrated, **{"time_limits": QUIET_TASKS, **overrides})
    runtime = build_runtime(settings, clock=clock, workflows=workflows)
    yield runtime
    empty_tables(runtime)
    runtime.close()


# --- helpers ----------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def submit(client: TestClient, world: World, **over: Any) -> dict[str, Any]:
    r = client.post(API, json=submit_body(**over), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def get(client: TestClient, world: World, rid: int) -> dict[str, Any]:
    body: dict[str, Any] = client.get(f"{API}/{rid}", headers=world.h("supervisor")).json()
    return body


def post(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    return client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    r = post(client, world, who, rid, action, **body)
    assert r.status_code == 200, r.text
    return r.json()


def in_progress(client: TestClient, world: World, **over: Any) -> int:
    """A request signed by GXJ at once: its reply deadline runs, due REPLY_DUE."""
    rid: int = submit(client, world, **over)["id"]
    act(client, world, "gxj", rid, "sign")
    return rid


def reply_of(req: dict[str, Any]) -> dict[str, Any]:
    """The request's latest reply deadline."""
    found: dict[str, Any] = [d for d in req["deadlines"] if d["kind"] == "reply"][-1]
    return found


def events(rt: Runtime, rid: int, type_: str | None = None) -> list[dict[str, Any]]:
    """The data of the request's outbox events (of one type), oldest first."""
    with rt.transaction() as s:
        query = select(Event).where(Event.request_id == rid).order_by(Event.id)
        if type_ is not None:
            query = query.where(Event.type == type_)
        return [dict(e.data) for e in s.scalars(query)]


def event_count(rt: Runtime, rid: int) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).where(Event.request_id == rid)) or 0)


def written(client: TestClient, world: World, rt: Runtime, rid: int) -> tuple[Any, ...]:
    """What an action writes: the request (its version and fields), its timeline, its
    deadlines and its events."""
    req = get(client, world, rid)
    return (
        req["version"],
        len(req["timeline"]),
        req["state"],
        req["pending_extension"],
        req["pending_suspension"],
        req["suspension_count"],
        req["escalation_level"],
        [(d["kind"], d["status"], d["due_at"], d["extensions"]) for d in req["deadlines"]],
        event_count(rt, rid),
    )


def refused_with(
    client: TestClient, world: World, rt: Runtime, who: str, rid: int, action: str, **body: Any
) -> dict[str, Any]:
    """The 409 problem of an action, having checked that it wrote nothing."""
    before = written(client, world, rt, rid)
    r = post(client, world, who, rid, action, **body)
    assert r.status_code == 409, r.text
    assert written(client, world, rt, rid) == before
    problem: dict[str, Any] = r.json()
    return problem


def invalid(
    client: TestClient, world: World, rt: Runtime, who: str, rid: int, action: str, **body: Any
) -> dict[str, Any]:
    """The 422 problem of an action, having checked that it wrote nothing."""
    before = written(client, world, rt, rid)
    r = post(client, world, who, rid, action, **body)
    assert r.status_code == 422, r.text
    assert written(client, world, rt, rid) == before
    problem: dict[str, Any] = r.json()
    return problem


def fields_named(problem: dict[str, Any]) -> list[str]:
    return [e["loc"][-1] for e in problem["errors"]]


def timeline_data(req: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [t["data"] for t in req["timeline"] if t["action"] == action]


# --- 422: input the configuration does not allow ------------------------------------------


def test_an_unknown_reason_code_is_422_and_writes_nothing(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    problem = invalid(
        client, world, rt, "gxj", rid, "request_suspension", **{**SUSPEND, "reason_code": "weather"}
    )
    assert fields_named(problem) == ["reason_code"]
    assert problem["code"] == "unknown_reason_code"
    assert problem["detail"].startswith("reason_code:")
    assert "awaiting_materials" in problem["detail"]


def test_a_suspension_longer_than_the_maximum_is_422(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    problem = invalid(
        client,
        world,
        rt,
        "gxj",
        rid,
        "request_suspension",
        **{**SUSPEND, "length": "11 working days"},
    )
    assert fields_named(problem) == ["length"]
    assert problem["code"] == "suspension_too_long"
    assert "suspension.max_length" in problem["detail"]
    # the maximum itself is allowed
    ok = act(
        client, world, "gxj", rid, "request_suspension", **{**SUSPEND, "length": "10 working days"}
    )
    assert ok["pending_suspension"]["length"] == "10 working days"


def test_a_suspension_of_no_length_is_422(client: TestClient, world: World, rt: Runtime) -> None:
    rid = in_progress(client, world)
    problem = invalid(
        client, world, rt, "gxj", rid, "request_suspension", **{**SUSPEND, "length": "0 hours"}
    )
    assert fields_named(problem) == ["length"]


@pytest.mark.parametrize("zero", ["0 hours", "0 working days", "0 working hours"])
def test_an_extension_by_nothing_is_422(
    client: TestClient, world: World, rt: Runtime, zero: str
) -> None:
    rid = in_progress(client, world)
    problem = invalid(
        client, world, rt, "gxj", rid, "request_extension", extend_by=zero, reason="r"
    )
    assert fields_named(problem) == ["extend_by"]


def test_an_extension_over_the_cap_is_422(client: TestClient, world: World, rt: Runtime) -> None:
    rid = in_progress(client, world)
    problem = invalid(
        client, world, rt, "gxj", rid, "request_extension", extend_by="11 working days", reason="r"
    )
    assert fields_named(problem) == ["extend_by"]
    assert problem["code"] == "extension_too_long"
    assert "extension.max_length" in problem["detail"]


def test_the_cap_is_counted_in_working_time(client: TestClient, world: World, rt: Runtime) -> None:
    """10 working days after the due instant (Wed 25 17:30) is Wed 9 Dec 17:30: 70 working
    hours (7 a day), whatever unit the extension is asked in."""
    rid = in_progress(client, world)
    problem = invalid(
        client, world, rt, "gxj", rid, "request_extension", extend_by="71 working hours", reason="r"
    )
    assert fields_named(problem) == ["extend_by"]
    act(client, world, "gxj", rid, "request_extension", extend_by="70 working hours", reason="r")
    after = act(client, world, "supervisor", rid, "decide_extension", approved=True)
    assert at(reply_of(after)["due_at"]) == at("2026-12-09T17:30:00+08:00")


def test_an_approval_granting_more_than_the_cap_is_422(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_extension", extend_by="2 working days", reason="r")
    problem = invalid(
        client,
        world,
        rt,
        "supervisor",
        rid,
        "decide_extension",
        approved=True,
        extend_by="11 working days",
    )
    assert fields_named(problem) == ["extend_by"]


@pytest.mark.parametrize("overrides", [{"extension": {"max_count": 2}}])
def test_a_second_extension_past_the_total_cap_is_422(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_extension", extend_by="6 working days", reason="一")
    act(client, world, "supervisor", rid, "decide_extension", approved=True)
    problem = invalid(
        client, world, rt, "gxj", rid, "request_extension", extend_by="5 working days", reason="二"
    )
    assert fields_named(problem) == ["extend_by"]
    assert "already extended" in problem["detail"]
    # what is left of the cap is allowed
    act(client, world, "gxj", rid, "request_extension", extend_by="4 working days", reason="二")
    after = act(client, world, "supervisor", rid, "decide_extension", approved=True)
    assert reply_of(after)["extensions"] == 2


def test_supervise_above_the_ladder_top_is_422(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    problem = invalid(client, world, rt, "supervisor", rid, "supervise", level=4)
    assert fields_named(problem) == ["level"]
    assert problem["code"] == "level_above_ladder"
    assert act(client, world, "supervisor", rid, "supervise", level=3)["escalation_level"] == 3


# --- 409: rules of state and time ------------------------------------------------------------


def test_an_extension_after_the_reply_deadline_passed_is_409(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    clock.set(at(REPLY_DUE))  # the due instant: the worker has not looked yet
    problem = refused_with(
        client, world, rt, "gxj", rid, "request_extension", extend_by="2 working days", reason="r"
    )
    assert problem["code"] == "refused"
    assert problem["refusals"] == ["extension_in_time"]
    assert "the deadline has passed; an extension must be asked before it" in problem["detail"]
    assert "request_extension" not in problem["allowed"]
    fire_due(rt, now=clock.now())  # now marked missed
    problem = refused_with(
        client, world, rt, "gxj", rid, "request_extension", extend_by="2 working days", reason="r"
    )
    assert problem["refusals"] == ["extension_in_time"]
    actions = client.get(f"{API}/{rid}/actions", headers=world.h("gxj")).json()["actions"]
    assert "request_extension" not in actions and "request_suspension" not in actions


def test_a_suspension_after_the_reply_deadline_passed_is_409(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    clock.set(at("2026-11-26T09:00:00+08:00"))
    problem = refused_with(client, world, rt, "gxj", rid, "request_suspension", **SUSPEND)
    assert problem["refusals"] == ["suspension_in_time"]
    assert "an overdue request cannot be suspended" in problem["detail"]


def test_a_third_suspension_is_409(client: TestClient, world: World, rt: Runtime) -> None:
    rid = in_progress(client, world)
    for _ in range(2):
        act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
        act(client, world, "supervisor", rid, "decide_suspension", approved=True)
        act(client, world, "gxj", rid, "resume")
    assert get(client, world, rid)["suspension_count"] == 2
    problem = refused_with(client, world, rt, "gxj", rid, "request_suspension", **SUSPEND)
    assert problem["refusals"] == ["under_suspension_limit"]
    assert "as many suspensions as allowed" in problem["detail"]


def test_a_refused_suspension_does_not_count(client: TestClient, world: World, rt: Runtime) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    refused = act(
        client, world, "dispatcher", rid, "decide_suspension", approved=False, note="不同意"
    )
    assert (refused["state"], refused["pending_suspension"], refused["suspension_count"]) == (
        "in_progress",
        None,
        0,
    )
    assert reply_of(refused)["status"] == "running"
    assert events(rt, rid, "request.suspension_refused")


def test_a_second_extension_is_409_with_max_count_1(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_extension", extend_by="1 working day", reason="一")
    act(client, world, "supervisor", rid, "decide_extension", approved=True)
    problem = refused_with(
        client, world, rt, "gxj", rid, "request_extension", extend_by="1 working day", reason="二"
    )
    assert problem["refusals"] == ["under_extension_limit"]
    assert "as many extensions as allowed" in problem["detail"]


def test_a_suspension_whose_deadline_passed_while_it_waited_cannot_be_approved(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    clock.set(at("2026-11-25T18:00:00+08:00"))  # the clock ran while the decision waited
    fire_due(rt, now=clock.now())
    assert get(client, world, rid)["overdue"] is True
    problem = refused_with(client, world, rt, "supervisor", rid, "decide_suspension", approved=True)
    assert "suspension_in_time" in problem["refusals"]
    assert "an overdue request cannot be suspended" in problem["detail"]
    # it can still be refused, which clears it
    refused = act(client, world, "supervisor", rid, "decide_suspension", approved=False)
    assert refused["pending_suspension"] is None
    assert refused["overdue"] is True


# --- the worker resumes a suspension ---------------------------------------------------------


def test_the_worker_resumes_when_the_approved_length_has_passed(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)  # 2 working days
    suspended = act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    timer = next(d for d in suspended["deadlines"] if d["kind"] == "suspension")
    resumes_at = suspended["suspension"]["resumes_at"]
    # working days end at the close of the day: Thu 19 and Fri 20
    assert at(resumes_at) == at(timer["due_at"]) == at("2026-11-20T17:30:00+08:00")
    assert timer["warn_at"] is None
    assert reply_of(suspended)["status"] == "paused"
    assert events(rt, rid, "request.suspended")[0]["resumes_at"] == resumes_at

    clock.set(at("2026-11-20T17:29:59+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 0
    clock.set(at(resumes_at))
    assert fire_due(rt, now=clock.now()).fired == 1
    assert fire_due(rt, now=clock.now()).fired == 0

    after = get(client, world, rid)
    assert after["state"] == "in_progress"
    assert after["suspension"] is None
    assert after["overdue"] is False
    last = after["timeline"][-1]
    assert (last["action"], last["actor"], last["role"]) == ("resume", "system", "system")
    assert (last["from_state"], last["to_state"]) == ("suspended", "in_progress")
    assert [d["status"] for d in after["deadlines"] if d["kind"] == "suspension"] == ["met"]
    reply = reply_of(after)
    assert reply["status"] == "running"
    # the two working days it was paused (Thu 19, Fri 20) are added back: the five that
    # remained (Thu 19 … Wed 25) count again from Mon 23, Wed 25 17:30 → Fri 27 17:30
    assert at(reply["due_at"]) == at("2026-11-27T17:30:00+08:00")
    assert rt.calendar.workdays(at(REPLY_DUE).date(), at(reply["due_at"]).date())[1:] == [
        at("2026-11-26T00:00:00+08:00").date(),
        at("2026-11-27T00:00:00+08:00").date(),
    ]
    assert events(rt, rid, "request.resumed")


def test_the_department_may_resume_before_the_timer(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    clock.set(at("2026-11-19T10:00:00+08:00"))
    act(client, world, "gxj", rid, "resume")
    clock.set(at("2026-11-20T17:30:00+08:00"))  # the timer would have fallen due: it is met
    assert fire_due(rt, now=clock.now()).fired == 0
    after = get(client, world, rid)
    assert [t["action"] for t in after["timeline"]].count("resume") == 1
    assert at(reply_of(after)["due_at"]) == at("2026-11-26T17:30:00+08:00")  # one day back


def test_the_lead_department_is_offered_resume_while_suspended(
    client: TestClient, world: World
) -> None:
    """`resume` is the lead department's as well as the system's (version 2): the actions
    the API and the console offer the department list it, as the action itself is accepted."""
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    actions = client.get(f"{API}/{rid}/actions", headers=world.h("gxj")).json()["actions"]
    assert "resume" in actions


@pytest.mark.parametrize("overrides", [{"suspension": {"requires_approval": False}}])
def test_without_approval_the_request_suspends_at_once(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    suspended = act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    assert suspended["state"] == "suspended"
    assert suspended["pending_suspension"] is None
    assert suspended["suspension"]["approved_by"] is None
    assert suspended["suspension"]["resumes_at"]
    assert reply_of(suspended)["status"] == "paused"


# --- an extension asked in time, approved late ---------------------------------------------


def test_an_extension_asked_in_time_and_approved_late_lifts_overdue_and_keeps_the_level(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    clock.set(at("2026-11-25T16:00:00+08:00"))
    act(
        client,
        world,
        "gxj",
        rid,
        "request_extension",
        extend_by="3 working days",
        reason="需现场勘查",
    )
    clock.set(at(REPLY_DUE))
    assert fire_due(rt, now=clock.now()).fired == 3  # warning, overdue, rung 1
    late = get(client, world, rid)
    assert (late["overdue"], late["escalation_level"]) == (True, 1)
    assert reply_of(late)["status"] == "missed"

    clock.set(at("2026-11-26T10:00:00+08:00"))
    approved = act(client, world, "supervisor", rid, "decide_extension", approved=True)
    assert approved["overdue"] is False
    assert approved["escalation_level"] == 1  # the level stays
    reply = reply_of(approved)
    assert reply["status"] == "running"
    assert at(reply["due_at"]) == at("2026-11-30T17:30:00+08:00")
    assert (reply["escalations"], reply["extensions"]) == (1, 1)
    actions = [t["action"] for t in approved["timeline"]]
    assert actions[-5:] == ["request_extension", "warn", "overdue", "escalate", "decide_extension"]

    # rung 2 of the old due instant (Thu 26 17:30) no longer fires; the reply is on time
    clock.set(at("2026-11-27T10:00:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 0
    replied = act(client, world, "gxj", rid, "reply", content="已办结", resolved=True)
    assert replied["overdue"] is False
    assert reply_of(replied)["status"] == "met"
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        assert req.first_reply_on_time is True


def test_a_deadline_extended_late_climbs_on_from_the_rung_it_reached(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_extension", extend_by="1 working day", reason="r")
    clock.set(at(REPLY_DUE))
    fire_due(rt, now=clock.now())
    clock.set(at("2026-11-26T10:00:00+08:00"))
    act(client, world, "supervisor", rid, "decide_extension", approved=True)  # due Thu 26 17:30
    clock.set(at("2026-11-26T17:30:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 1  # overdue again; rung 1 is not fired twice
    again = get(client, world, rid)
    assert (again["overdue"], again["escalation_level"]) == (True, 1)
    clock.set(at("2026-11-27T17:30:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 1  # rung 2, a working day later
    assert get(client, world, rid)["escalation_level"] == 2


def test_an_approval_whose_new_due_instant_also_passed_lifts_nothing(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "request_extension", extend_by="1 working hour", reason="r")
    clock.set(at(REPLY_DUE))
    fire_due(rt, now=clock.now())
    clock.set(at("2026-11-26T15:00:00+08:00"))  # the new due, Thu 26 10:00, passed too
    approved = act(client, world, "supervisor", rid, "decide_extension", approved=True)
    assert approved["overdue"] is True
    assert reply_of(approved)["status"] == "missed"
    assert at(reply_of(approved)["due_at"]) == at("2026-11-26T10:00:00+08:00")
    replied = act(client, world, "gxj", rid, "reply", content="已办结", resolved=True)
    assert reply_of(replied)["status"] == "missed"
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        assert req.first_reply_on_time is False


# --- overdue is a fact (version 1, where suspending a late request is still possible) ----------


@pytest.fixture
def v1_client(
    migrated: str, clock: FrozenClock, workflows: Specs, rt: Runtime
) -> Iterator[TestClient]:
    """An app whose only workflow is version 1, on `rt`'s database: its submits start on v1."""
    only_v1 = {key: spec for key, spec in workflows.items() if key[1] == 1}
    runtime = build_runtime(make_settings(migrated), clock=clock, workflows=only_v1)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c
    runtime.close()


def test_a_v1_request_suspended_while_overdue_stays_overdue(
    client: TestClient, v1_client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submit(v1_client, world)
    assert req["workflow"] == {"name": "service_request", "version": 1}
    rid = req["id"]
    act(client, world, "gxj", rid, "sign")
    clock.set(at("2026-11-26T10:00:00+08:00"))
    fire_due(rt, now=clock.now())
    assert get(client, world, rid)["overdue"] is True
    suspended = act(client, world, "gxj", rid, "suspend", reason="等待材料")
    assert suspended["state"] == "suspended"
    assert suspended["overdue"] is True
    assert reply_of(suspended)["status"] == "paused"
    clock.set(at("2026-11-30T10:00:00+08:00"))
    assert fire_due(rt, now=clock.now()).fired == 0  # nothing climbs while paused
    resumed = act(client, world, "gxj", rid, "resume")
    assert resumed["overdue"] is True
    assert reply_of(resumed)["status"] == "missed"


def test_a_v1_extension_asked_after_the_deadline_passed_lifts_nothing(
    client: TestClient, v1_client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(v1_client, world)["id"]
    act(client, world, "gxj", rid, "sign")
    clock.set(at("2026-11-26T10:00:00+08:00"))
    fire_due(rt, now=clock.now())
    act(client, world, "gxj", rid, "request_extension", extend_by="5 working days", reason="r")
    approved = act(client, world, "supervisor", rid, "decide_extension", approved=True)
    reply = reply_of(approved)
    assert at(reply["due_at"]) == at("2026-12-02T17:30:00+08:00")  # moved
    assert approved["overdue"] is True  # but asked too late to lift anything
    assert reply["status"] == "missed"


# --- every escalation names people ---------------------------------------------------------


def test_the_ladder_names_the_leaders_found_up_the_tree(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world)["id"]  # led by GXJ; the sign deadline climbs
    clock.set(at("2026-11-30T09:00:00+08:00"))
    fire_due(rt, now=clock.now())
    escalated = events(rt, rid, "request.escalated")
    assert [e["level"] for e in escalated] == [1, 2, 3]
    assert escalated[0]["notify"] == [{"role": "department_head", "leaders": [CHEN]}]
    assert escalated[1]["notify"] == [{"role": "street_leadership", "leaders": []}]  # a gap
    assert escalated[2]["notify"] == [{"role": "district_supervision", "leaders": [WANG]}]
    rows = timeline_data(get(client, world, rid), "escalate")
    assert [r["notify"] for r in rows] == [e["notify"] for e in escalated]


@pytest.mark.parametrize(
    "overrides",
    [
        {
            "escalation": [
                {
                    "after": "0 seconds",
                    "level": 1,
                    "notify": [
                        "department_head",
                        {"department": "STREET", "role": "street_leadership"},
                    ],
                },
                *DEFAULT_LADDER[1:],
            ]
        }
    ],
)
def test_a_department_entry_names_that_departments_leaders_whoever_leads(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world)["id"]
    clock.set(at("2026-11-19T17:30:00+08:00"))  # the sign deadline's due: overdue and rung 1
    fire_due(rt, now=clock.now())
    (escalated,) = events(rt, rid, "request.escalated")
    assert escalated["notify"] == [
        {"role": "department_head", "leaders": [CHEN]},
        {"department": "STREET", "role": "street_leadership", "leaders": [LI]},
    ]
    (row,) = timeline_data(get(client, world, rid), "escalate")
    assert row["notify"] == escalated["notify"]


DISPATCH_CENTER: dict[str, Any] = {
    "dispatch_center": "STREET",
    "escalation": [
        {"after": "0 seconds", "level": 1, "notify": ["street_leadership"]},
        *DEFAULT_LADDER[1:],
    ],
}


@pytest.mark.parametrize("overrides", [DISPATCH_CENTER])
def test_the_dispatch_deadline_escalates_to_the_dispatch_centre(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submit(client, world, category="OTHER")
    assert req["state"] == "awaiting_dispatch" and req["lead_department"] is None
    clock.set(at("2026-11-19T10:00:00+08:00"))
    fire_due(rt, now=clock.now())
    escalated = events(rt, req["id"], "request.escalated")
    assert escalated[0]["level"] == 1
    assert escalated[0]["notify"] == [{"role": "street_leadership", "leaders": [LI]}]
    rows = timeline_data(get(client, world, req["id"]), "escalate")
    assert rows[0]["notify"] == escalated[0]["notify"]


def test_without_a_dispatch_centre_an_unled_escalation_names_nobody(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world, category="OTHER")["id"]
    clock.set(at("2026-11-19T10:00:00+08:00"))
    fire_due(rt, now=clock.now())
    escalated = events(rt, rid, "request.escalated")
    assert escalated[0]["notify"] == [{"role": "department_head", "leaders": []}]


@pytest.mark.parametrize("overrides", [DISPATCH_CENTER])
def test_the_return_limit_escalation_carries_notify(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world)["id"]
    for _ in range(3):  # return_escalate_after: 2
        act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
        last = act(client, world, "dispatcher", rid, "accept_return")
        if last["return_count"] < 3:
            act(client, world, "dispatcher", rid, "dispatch", lead_department="GXJ")
    assert last["escalation_level"] == 1
    (escalated,) = events(rt, rid, "request.escalated")
    assert escalated["reason"] == "returned 3 times"
    # the request has no lead department once returned: the dispatch centre's leaders
    assert escalated["notify"] == [{"role": "street_leadership", "leaders": [LI]}]
    rows = timeline_data(get(client, world, rid), "accept_return")
    assert "notify" not in rows[0] and "notify" not in rows[1]
    assert rows[2]["notify"] == escalated["notify"]


def test_the_reopen_limit_escalation_carries_notify(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "reply", content="答复一", resolved=True)
    act(client, world, "integration", rid, "rate", rating="dissatisfied", resolved=False)
    act(client, world, "gxj", rid, "reply", content="答复二", resolved=True)
    closed = act(
        client, world, "integration", rid, "rate", rating="very_dissatisfied", resolved=False
    )
    assert closed["state"] == "closed"
    assert closed["enterprise_resolved"] is False
    seen = get(client, world, rid)  # the integration's answer is the public view: no level
    assert seen["escalation_level"] == 1
    (escalated,) = events(rt, rid, "request.escalated")
    assert escalated["notify"] == [{"role": "department_head", "leaders": [CHEN]}]
    rows = timeline_data(seen, "rate")
    assert "notify" not in rows[0]
    assert rows[1]["notify"] == escalated["notify"]


def test_supervise_carries_notify_by_the_level_it_reached(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    act(client, world, "supervisor", rid, "supervise", note="列入督办")
    act(client, world, "supervisor", rid, "supervise", level=3, note="区领导督办")
    escalated = events(rt, rid, "request.escalated")
    assert [(e["level"], e["previous_level"]) for e in escalated] == [(1, 0), (3, 1)]
    assert escalated[0]["notify"] == [{"role": "department_head", "leaders": [CHEN]}]
    assert escalated[1]["notify"] == [{"role": "district_supervision", "leaders": [WANG]}]
    rows = timeline_data(get(client, world, rid), "supervise")
    assert [r["notify"] for r in rows] == [e["notify"] for e in escalated]
    supervised = events(rt, rid, "request.supervised")
    assert len(supervised) == 2


# --- levels are rungs ------------------------------------------------------------------------


def test_a_later_ladder_never_lifts_the_level_above_the_top(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world)["id"]
    clock.set(at("2026-11-25T10:00:00+08:00"))  # the sign ladder's rung 3 was Tue 24 17:30
    fire_due(rt, now=clock.now())
    assert get(client, world, rid)["escalation_level"] == 3
    act(client, world, "gxj", rid, "sign")  # late; the reply deadline is due Wed 2 Dec 17:30
    clock.set(at("2026-12-10T10:00:00+08:00"))
    fire_due(rt, now=clock.now())
    after = get(client, world, rid)
    assert reply_of(after)["escalations"] == 3  # the reply ladder climbed all its rungs
    assert after["escalation_level"] == 3
    levels = [e["level"] for e in events(rt, rid, "request.escalated")]
    assert levels == [1, 2, 3, 3, 3, 3]
    supervised = act(client, world, "supervisor", rid, "supervise", note="再次督办")
    assert supervised["escalation_level"] == 3
    assert act(client, world, "supervisor", rid, "supervise", level=3)["escalation_level"] == 3


def test_a_later_ladder_raises_the_level_only_at_a_higher_rung(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = submit(client, world)["id"]
    clock.set(at("2026-11-20T10:00:00+08:00"))  # sign overdue, rung 1 only (rung 2 at 17:30)
    fire_due(rt, now=clock.now())
    assert get(client, world, rid)["escalation_level"] == 1
    act(client, world, "gxj", rid, "sign")  # reply due Fri 27 17:30; its rung 2 Mon 30 17:30
    clock.set(at("2026-11-30T17:29:00+08:00"))
    fire_due(rt, now=clock.now())
    assert get(client, world, rid)["escalation_level"] == 1
    clock.set(at("2026-11-30T17:30:00+08:00"))
    fire_due(rt, now=clock.now())
    assert get(client, world, rid)["escalation_level"] == 2
    assert [e["level"] for e in events(rt, rid, "request.escalated")] == [1, 1, 2]
