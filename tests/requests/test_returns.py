"""Returns are reviewed (退单审核, DESIGN.md part two "Many hands"): the lead's `return` from
`dispatched` or `in_progress`, before any reply, waits in `return_review` for the dispatcher
while the department's own sign or reply deadline runs on (and the worker fires it);
`accept_return` sends it back to dispatch, counted as a return, its tasks ended;
`refuse_return` sends it back where it came from, on the same deadline. With
`workflow_rules.returns_need_review: false` a return goes straight back, before signing only.

Dates: submitted Wednesday 2026-11-18 10:00 Shanghai, the sign deadline falls due Thursday
2026-11-19 17:30; signed at once, the reply deadline falls due Wednesday 2026-11-25 17:30."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.requests.firing import fire_due
from huying.runtime import Runtime, build_runtime
from tests.api.support import assert_problem, nothing_written
from tests.conftest import QUIET_TASKS, Specs, World, empty_tables, make_settings
from tests.requests.many_hands import (
    REPLY_DUE,
    SIGN_DUE,
    act,
    allowed,
    at,
    events,
    get,
    lead_deadlines,
    of_kind,
    post,
    return_rows,
    submit,
    submitted,
    task_of,
    tasks,
)

NO_REVIEW = {"workflow_rules": {"returns_need_review": False}}


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings beyond tests/conftest.py's; a test that needs others says so with
    `@pytest.mark.parametrize("overrides", [{...}])`."""
    return {}


@pytest.fixture
def rt(
    migrated: str, clock: FrozenClock, workflows: Specs, overrides: dict[str, Any]
) -> Iterator[Runtime]:
    """tests/conftest.py's runtime with `overrides`; the routed assist task's own deadline
    is out of the way (QUIET_TASKS), so the worker fires only the lead's and the review's."""
    settings = make_settings(migrated, **{"time_limits": QUIET_TASKS, **overrides})
    runtime = build_runtime(settings, clock=clock, workflows=workflows)
    yield runtime
    empty_tables(runtime)
    runtime.close()


def in_progress(client: TestClient, world: World) -> int:
    """A POWER request (GXJ leads, STREET assists) signed by GXJ at once."""
    rid: int = submit(client, world)["id"]
    act(client, world, "gxj", rid, "sign")
    return rid


def the_one(req: dict[str, Any], kind: str) -> dict[str, Any]:
    """The request's only deadline of `kind` (a second row would be a new round)."""
    [deadline] = of_kind(req, kind)
    return deadline


# --- the return waits for the review, the department's clock running on ----------------------


def test_a_return_before_signing_waits_for_review_on_the_running_sign_deadline(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submitted(client, world)
    rid, sign = req["id"], the_one(req, "sign")
    clock.set(at("2026-11-18T14:00:00+08:00"))
    asked = act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
    assert asked["state"] == "return_review"
    assert asked["returned_from"] == "dispatched"
    assert asked["lead_department"]["code"] == "GXJ"  # still the department's until decided
    assert (asked["return_count"], return_rows(rt, rid)) == (0, [])
    assert the_one(asked, "sign") == sign  # the same deadline, running, untouched
    review = the_one(asked, "review")
    assert (review["status"], review["duration"]) == ("running", "2 working hours")
    assert at(review["started_at"]) == clock.now()
    assert tasks(asked) == [("STREET", "assist", "pending")]  # nothing ends before the decision
    [event] = events(rt, rid, "request.return_requested")
    assert (event["note"], event["from_state"]) == ("不属于本部门职责", "dispatched")
    assert {"accept_return", "refuse_return", "reassign"} <= set(
        allowed(client, world, "dispatcher", rid)
    )
    with nothing_written(rt):  # the department cannot decide, nor return it twice
        assert_problem(post(client, world, "gxj", rid, "accept_return"), 403)
        r = post(client, world, "gxj", rid, "return", reason="再退")
        assert assert_problem(r, 409)["code"] == "not_allowed_now"
        r = post(client, world, "supervisor", rid, "refuse_return", reason="请办理")
        assert_problem(r, 403)


def test_a_return_while_in_progress_waits_on_the_running_reply_deadline(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    reply = the_one(get(client, world, rid), "reply")
    asked = act(client, world, "gxj", rid, "return", reason="需由街道牵头")
    assert (asked["state"], asked["returned_from"]) == ("return_review", "in_progress")
    assert the_one(asked, "reply") == reply
    assert reply["status"] == "running" and at(reply["due_at"]) == at(REPLY_DUE)


def test_the_worker_fires_the_department_s_deadline_during_the_review(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = submit(client, world)
    rid = req["id"]
    act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
    fire_due(rt, now=at(SIGN_DUE))  # nobody reviewed it in time
    after = get(client, world, rid)
    assert after["state"] == "return_review"
    sign = the_one(after, "sign")
    assert (sign["status"], sign["completed_at"], sign["escalations"]) == ("missed", None, 1)
    assert after["overdue"] is True
    assert after["escalation_level"] == 1
    assert [e["deadline"] for e in events(rt, rid, "request.overdue")] == ["review", "sign"]
    [escalated] = events(rt, rid, "request.escalated")
    assert escalated["deadline"] == "sign"
    # the review's own deadline passed too, but it is not the department's: no level of its
    assert the_one(after, "review")["status"] == "missed"


# --- the dispatcher's decision ----------------------------------------------------------------


def test_accept_return_sends_it_back_to_dispatch_counted_and_its_tasks_ended(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "return", reason="需由街道牵头")
    clock.set(at("2026-11-18T11:00:00+08:00"))
    returned = act(client, world, "dispatcher", rid, "accept_return", note="同意，重新派单")
    assert returned["state"] == "awaiting_dispatch"
    assert (returned["return_count"], returned["returned_from"]) == (1, None)
    assert returned["lead_department"] is None
    assert return_rows(rt, rid) == ["GXJ"]  # one return, the department's
    assert tasks(returned) == [("STREET", "assist", "cancelled")]
    assert task_of(returned, "STREET")["deadline"]["status"] == "cancelled"
    assert [(d["kind"], d["status"]) for d in lead_deadlines(returned)] == [
        ("sign", "met"),
        ("reply", "cancelled"),
        ("dispatch", "running"),
    ]
    review = the_one(returned, "review")
    assert review["completed_at"] is not None and review["status"] == "met"
    assert [e["to_state"] for e in events(rt, rid, "request.returned")] == ["awaiting_dispatch"]
    # the department it came from sees it no more; the dispatcher dispatches it anew
    assert client.get(f"/api/v1/requests/{rid}", headers=world.h("gxj")).status_code == 404
    again = act(client, world, "dispatcher", rid, "dispatch", lead_department="RSJ")
    assert again["state"] == "dispatched"


@pytest.mark.parametrize("signed", [False, True], ids=["dispatched", "in_progress"])
def test_refuse_return_sends_it_back_on_the_same_deadline(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, signed: bool
) -> None:
    rid = in_progress(client, world) if signed else submit(client, world)["id"]
    before = get(client, world, rid)
    kind, came_from = ("reply", "in_progress") if signed else ("sign", "dispatched")
    act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
    with nothing_written(rt):
        r = post(client, world, "dispatcher", rid, "refuse_return")
        assert assert_problem(r, 422, "reason")["code"] == "invalid_fields"

    clock.set(at("2026-11-18T11:00:00+08:00"))
    refused = act(client, world, "dispatcher", rid, "refuse_return", reason="属于本部门职责")
    assert refused["state"] == came_from
    assert (refused["returned_from"], refused["return_count"]) == (None, 0)
    assert refused["lead_department"]["code"] == "GXJ"
    assert return_rows(rt, rid) == []  # a refused return is not a return
    assert the_one(refused, kind) == the_one(before, kind)  # the same deadline, running on
    assert the_one(refused, kind)["status"] == "running"
    review = the_one(refused, "review")
    assert at(review["completed_at"]) == clock.now()
    assert tasks(refused) == [("STREET", "assist", "pending")]
    [event] = events(rt, rid, "request.return_refused")
    assert (event["note"], event["to_state"]) == ("属于本部门职责", came_from)
    # and the department carries on from there
    if signed:
        replied = act(client, world, "gxj", rid, "reply", content="已办结", resolved=True)
        assert replied["state"] == "replied"
    else:
        assert act(client, world, "gxj", rid, "sign")["state"] == "in_progress"


def test_a_deadline_missed_during_the_review_stays_missed_after_a_refusal(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world)["id"]
    act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
    fire_due(rt, now=at(SIGN_DUE))
    refused = act(client, world, "dispatcher", rid, "refuse_return", reason="属于本部门职责")
    assert refused["state"] == "dispatched"
    assert the_one(refused, "sign")["status"] == "missed"
    assert (refused["overdue"], refused["escalation_level"]) == (True, 1)


def test_a_return_after_a_reply_is_409(client: TestClient, world: World, rt: Runtime) -> None:
    rid = in_progress(client, world)
    act(client, world, "gxj", rid, "reply", content="已答复", resolved=True)
    reopened = act(client, world, "integration", rid, "rate", rating="dissatisfied", resolved=False)
    assert reopened["state"] == "in_progress"
    with nothing_written(rt):
        r = post(client, world, "gxj", rid, "return", reason="仍不属于本部门")
        problem = assert_problem(r, 409, "replied")
        assert problem["code"] == "refused"
        assert problem["refusals"] == ["never_replied"]
    assert "return" not in allowed(client, world, "gxj", rid)


# --- without review: v1's direct return ---------------------------------------------------


@pytest.mark.parametrize("overrides", [NO_REVIEW])
def test_without_review_a_return_goes_straight_back_to_dispatch(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world)["id"]
    returned = act(client, world, "gxj", rid, "return", reason="不属于本部门职责")
    assert returned["state"] == "awaiting_dispatch"
    assert (returned["return_count"], returned["returned_from"]) == (1, None)
    assert return_rows(rt, rid) == ["GXJ"]
    assert tasks(returned) == [("STREET", "assist", "cancelled")]
    assert of_kind(returned, "review") == []
    assert [(d["kind"], d["status"]) for d in lead_deadlines(returned)] == [
        ("sign", "cancelled"),
        ("dispatch", "running"),
    ]


@pytest.mark.parametrize("overrides", [NO_REVIEW])
def test_without_review_a_signed_request_cannot_be_returned(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = in_progress(client, world)
    assert "return" not in allowed(client, world, "gxj", rid)
    with nothing_written(rt):
        r = post(client, world, "gxj", rid, "return", reason="不属于本部门职责")
        problem = assert_problem(r, 409)
        assert problem["refusals"] == ["returns_reviewed"]
    assert get(client, world, rid)["state"] == "in_progress"
