"""Reassign (改派, DESIGN.md part two "Many hands"): the dispatcher hands a request to another
lead from `dispatched`, `in_progress`, `suspended` or `return_review`. It is not a return:
nothing is counted against the old lead. The old lead's deadline is cancelled, the new lead
signs anew on a new sign deadline, the old tasks end and the new co-departments get theirs.

Dates: submitted Wednesday 2026-11-18 10:00 Shanghai and reassigned at 14:00; the new sign
deadline (1 working day) falls due Thursday 2026-11-19 17:30."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.runtime import Runtime
from tests.api.support import assert_problem, nothing_written
from tests.conftest import World
from tests.requests.many_hands import (
    API,
    SUSPEND,
    act,
    at,
    events,
    get,
    lead_deadlines,
    listed,
    of_kind,
    post,
    return_rows,
    submit,
    submitted,
    task_of,
    tasks,
)

REASSIGNED_AT = "2026-11-18T14:00:00+08:00"
NEW_SIGN_DUE = "2026-11-19T17:30:00+08:00"


def _dispatched(client: TestClient, world: World, rid: int) -> None:
    """Left waiting for GXJ's signature."""


def _in_progress(client: TestClient, world: World, rid: int) -> None:
    act(client, world, "gxj", rid, "sign")


def _suspended(client: TestClient, world: World, rid: int) -> None:
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    act(client, world, "supervisor", rid, "decide_suspension", approved=True)


def _returned_before_signing(client: TestClient, world: World, rid: int) -> None:
    act(client, world, "gxj", rid, "return", reason="不属于本部门职责")


def _returned_while_in_progress(client: TestClient, world: World, rid: int) -> None:
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "return", reason="需由人社局牵头")


Setup = Callable[[TestClient, World, int], None]
# Each way into a state that may be reassigned, the state it leaves the request in, and the
# kinds of the deadlines running then (a task's aside) that the reassignment cancels.
SOURCES: dict[str, tuple[Setup, str, list[str]]] = {
    "dispatched": (_dispatched, "dispatched", ["sign"]),
    "in_progress": (_in_progress, "in_progress", ["reply"]),
    "suspended": (_suspended, "suspended", ["reply", "suspension"]),
    "return_review_from_dispatched": (
        _returned_before_signing,
        "return_review",
        ["sign", "review"],
    ),
    "return_review_from_in_progress": (
        _returned_while_in_progress,
        "return_review",
        ["reply", "review"],
    ),
}


def reassign(
    client: TestClient, world: World, rid: int, who: str = "dispatcher", **over: Any
) -> Any:
    body: dict[str, Any] = {
        "lead_department": "RSJ",
        "co_departments": ["GXJ"],
        "reason": "职能调整，改由人社局牵头",
    }
    body.update(over)
    return post(client, world, who, rid, "reassign", **body)


@pytest.mark.parametrize("source", list(SOURCES))
def test_reassign_hands_the_request_to_a_new_lead_who_signs_anew(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, source: str
) -> None:
    setup, state, cancelled = SOURCES[source]
    rid: int = submit(client, world)["id"]  # GXJ leads, STREET assists
    setup(client, world, rid)
    before = get(client, world, rid)
    assert before["state"] == state
    old_street_task = task_of(before, "STREET")["id"]

    clock.set(at(REASSIGNED_AT))
    r = reassign(client, world, rid)
    assert r.status_code == 200, r.text
    after: dict[str, Any] = r.json()
    assert after["state"] == "dispatched"
    assert after["lead_department"]["code"] == "RSJ"
    assert [c["code"] for c in after["co_departments"]] == ["GXJ"]
    assert after["version"] == before["version"] + 1

    # the new lead's sign deadline starts now; every deadline of the old lead is cancelled
    running = [d for d in lead_deadlines(after) if d["completed_at"] is None]
    assert [(d["kind"], d["status"]) for d in running] == [("sign", "running")]
    assert at(running[0]["started_at"]) == clock.now()
    assert at(running[0]["due_at"]) == at(NEW_SIGN_DUE)
    old = [d for d in after["deadlines"] if d not in running and d["kind"] != "task"]
    assert all(d["completed_at"] is not None for d in old)
    ended_now = [d for d in old if at(d["completed_at"]) == clock.now()]
    assert sorted((d["kind"], d["status"]) for d in ended_now) == sorted(
        (kind, "cancelled") for kind in cancelled
    )
    was_running = [
        d for d in before["deadlines"] if d["completed_at"] is None and d["kind"] != "task"
    ]
    assert sorted(d["kind"] for d in was_running) == sorted(cancelled)

    # not a return
    assert after["return_count"] == 0
    assert return_rows(rt, rid) == []
    assert (after["returned_from"], after["pending_suspension"], after["suspension"]) == (
        None,
        None,
        None,
    )

    # the old assist task ends with the old assignment; the new co-department gets one
    assert tasks(after) == [("STREET", "assist", "cancelled"), ("GXJ", "assist", "pending")]
    street = task_of(after, "STREET")
    assert (street["id"], street["deadline"]["status"]) == (old_street_task, "cancelled")
    new_task = task_of(after, "GXJ")["deadline"]
    assert (new_task["status"], at(new_task["started_at"])) == ("running", clock.now())
    assert [d["task_id"] for d in of_kind(after, "task") if d["completed_at"] is None] == [
        task_of(after, "GXJ")["id"]
    ]

    last = after["timeline"][-1]
    assert (last["action"], last["from_state"], last["to_state"]) == (
        "reassign",
        state,
        "dispatched",
    )
    assert last["data"]["previous_lead_department"] == "GXJ"
    [event] = events(rt, rid, "request.reassigned")
    assert (event["lead_department"], event["previous_lead_department"]) == ("RSJ", "GXJ")

    # the new lead sees it and signs; the old one is now only a co-department
    assert rid in listed(client, world, "rsj")
    assert_problem(post(client, world, "gxj", rid, "sign"), 403)
    assert act(client, world, "rsj", rid, "sign")["state"] == "in_progress"


def test_the_new_lead_s_sign_deadline_is_not_the_old_one_s(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    """Reassigned the next morning, a request still waiting for a signature gets a whole new
    sign deadline (the old one would have been due that evening)."""
    rid = submit(client, world)["id"]
    clock.set(at("2026-11-19T09:00:00+08:00"))
    after = reassign(client, world, rid).json()
    signs = [(d["status"], d["due_at"]) for d in of_kind(after, "sign")]
    assert [s for s, _ in signs] == ["cancelled", "running"]
    assert at(signs[1][1]) == at("2026-11-20T17:30:00+08:00")


def test_reassign_without_co_departments_leaves_no_task_open(
    client: TestClient, world: World
) -> None:
    rid = submit(client, world)["id"]
    after = reassign(client, world, rid, co_departments=[]).json()
    assert after["co_departments"] == []
    assert tasks(after) == [("STREET", "assist", "cancelled")]


def test_a_task_replied_before_the_reassignment_stays_done(
    client: TestClient, world: World
) -> None:
    req = submitted(client, world)
    rid, task_id = req["id"], task_of(req, "STREET")["id"]
    act(client, world, "street", rid, "task_reply", task_id=task_id, content="已核实")
    after = reassign(client, world, rid, co_departments=["STREET"]).json()
    assert tasks(after) == [("STREET", "assist", "done"), ("STREET", "assist", "pending")]
    assert after["tasks"][0]["reply"] == "已核实"


def test_reassign_to_the_same_lead_is_422(client: TestClient, world: World, rt: Runtime) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(rt):
        r = reassign(client, world, rid, lead_department="GXJ")
        problem = assert_problem(r, 422, "lead_department", "already leads")
        assert problem["code"] == "same_lead"


def test_reassign_to_an_unknown_department_is_422(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(rt):
        r = reassign(client, world, rid, co_departments=["NOPE"])
        problem = assert_problem(r, 422, "NOPE")
        assert (problem["code"], problem["kind"]) == ("unknown_reference", "department")


@pytest.mark.parametrize("who", ["gxj", "street", "rsj", "supervisor", "integration"])
def test_only_a_dispatcher_or_an_admin_reassigns(
    client: TestClient, world: World, rt: Runtime, who: str
) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(rt):
        r = reassign(client, world, rid, who=who)
        # RSJ sees nothing of the request; the others may see it, not reassign it
        assert_problem(r, 404 if who == "rsj" else 403)
    assert act(client, world, "admin", rid, "reassign", lead_department="RSJ", reason="改派")[
        "lead_department"
    ] == {"code": "RSJ", "name": "区人社局"}


def test_reassign_needs_a_reason(client: TestClient, world: World, rt: Runtime) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(rt):
        r = client.post(
            f"{API}/{rid}/actions/reassign",
            json={"lead_department": "RSJ"},
            headers=world.h("dispatcher"),
        )
        assert_problem(r, 422, "reason")


@pytest.mark.parametrize("state", ["awaiting_dispatch", "replied", "closed"])
def test_reassign_is_409_outside_its_states(
    client: TestClient, world: World, rt: Runtime, state: str
) -> None:
    if state == "awaiting_dispatch":
        rid = submit(client, world, category="OTHER")["id"]
    else:
        rid = submit(client, world)["id"]
        act(client, world, "gxj", rid, "sign")
        act(client, world, "gxj", rid, "reply", content="已办结", resolved=True)
        if state == "closed":
            act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True)
    with nothing_written(rt):
        problem = assert_problem(reassign(client, world, rid), 409, state)
        assert problem["code"] == "not_allowed_now"
