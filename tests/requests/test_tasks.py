"""Tasks (子任务, DESIGN.md part two "Many hands"), through the API and the worker: dispatching
with co-departments makes one `assist` task each, the lead delegates (下派) to its sub-units,
each task runs its own `task` deadline whose ladder alerts the task department's leaders and
leaves the request's own level alone, the task department acts on its own task only and
never as the lead, and it sees the request while a sibling sees nothing.

Dates: submitted Wednesday 2026-11-18 10:00 Shanghai; a task's default limit (3 working days)
falls due Monday 2026-11-23 17:30, its warning at 09:15 that day."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.requests.firing import fire_due
from huying.runtime import Runtime
from tests.api.support import assert_problem, nothing_written
from tests.api.tree import add_keys, grow
from tests.conftest import World
from tests.requests.many_hands import (
    API,
    SIGN_DUE,
    TASK_DUE,
    TASK_WARN,
    act,
    allowed,
    at,
    dispatched,
    events,
    get,
    listed,
    of_kind,
    post,
    submit,
    submitted,
    task_of,
    tasks,
)

LI = {  # STREET's street_leadership (tests/world.yaml names no title or phone)
    "name": "李主任",
    "title": "",
    "phone": "",
    "role": "street_leadership",
    "department": "STREET",
    "department_name": "萝岗街道",
}
ZHOU = {  # LUOFENG's department_head (tests/api/tree.py)
    "name": "周书记",
    "title": "",
    "phone": "",
    "role": "department_head",
    "department": "LUOFENG",
    "department_name": "萝峰社区",
}


@pytest.fixture
def tree(rt: Runtime, world: World) -> World:
    """The world with 萝峰社区 under the street, the sibling street 夏港街道 and their keys."""
    grow(rt)
    add_keys(world)
    return world


def street_led(client: TestClient, world: World) -> int:
    """A HIRE request in the street's grid: led by STREET (RSJ assisting), signed at once."""
    req = submit(client, world, category="HIRE")
    assert req["lead_department"]["code"] == "STREET"
    act(client, world, "street", req["id"], "sign")
    rid: int = req["id"]
    return rid


# --- assist tasks from dispatch ----------------------------------------------------------


def test_dispatch_makes_one_assist_task_per_co_department_with_its_own_deadline(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    req = dispatched(client, world, "GXJ", ["STREET", "RSJ"])
    assert req["state"] == "dispatched"
    assert tasks(req) == [("STREET", "assist", "pending"), ("RSJ", "assist", "pending")]
    [sign] = of_kind(req, "sign")
    assert at(sign["due_at"]) == at(SIGN_DUE)
    for task in req["tasks"]:
        deadline = task["deadline"]
        assert deadline["kind"] == "task"
        assert deadline["task_id"] == task["id"]
        assert deadline["duration"] == "3 working days"  # time_limits.*.task's default
        assert deadline["status"] == "running"
        assert at(deadline["started_at"]) == clock.now()
        assert at(deadline["due_at"]) == at(TASK_DUE)  # its own, not the lead's
        assert at(deadline["warn_at"]) == at(TASK_WARN)
        assert (task["signed_at"], task["replied_at"], task["reply"], task["on_time"]) == (
            None,
            None,
            None,
            None,
        )
    # one task deadline each, beside the lead's sign deadline
    assert sorted(d["task_id"] for d in of_kind(req, "task")) == sorted(
        t["id"] for t in req["tasks"]
    )


def test_the_routed_co_department_gets_an_assist_task_at_submit(
    client: TestClient, world: World
) -> None:
    answer = submit(client, world)  # POWER: GXJ leads, STREET co-handles
    assert answer["tasks"] == []  # the integration sees the public view
    req = get(client, world, answer["id"])
    assert tasks(req) == [("STREET", "assist", "pending")]
    assert at(task_of(req, "STREET")["deadline"]["due_at"]) == at(TASK_DUE)


def test_the_co_department_signs_and_replies_in_time(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submitted(client, world)
    rid, task_id = req["id"], task_of(req, "STREET")["id"]
    assert allowed(client, world, "street", rid) == ["task_sign", "task_reply"]

    clock.set(at("2026-11-18T11:00:00+08:00"))
    signed = act(client, world, "street", rid, "task_sign", task_id=task_id, note="已安排")
    assert signed["state"] == "dispatched"  # the request itself does not move
    task = task_of(signed, "STREET")
    assert task["status"] == "signed"
    assert at(task["signed_at"]) == clock.now()

    clock.set(at("2026-11-20T15:00:00+08:00"))
    replied = act(
        client, world, "street", rid, "task_reply", task_id=task_id, content="已现场核实用电需求"
    )
    task = task_of(replied, "STREET")
    assert (task["status"], task["reply"], task["on_time"]) == ("done", "已现场核实用电需求", True)
    assert at(task["replied_at"]) == clock.now()
    assert task["deadline"]["status"] == "met"
    assert at(task["deadline"]["completed_at"]) == clock.now()
    assert replied["state"] == "dispatched"
    assert [(t["action"], t["role"]) for t in replied["timeline"][-2:]] == [
        ("task_sign", "department"),
        ("task_reply", "department"),
    ]
    assert [e["task_id"] for e in events(rt, rid, "request.task_replied")] == [task_id]
    assert allowed(client, world, "street", rid) == []  # its task is done


def test_the_actions_offered_follow_the_task_s_status(
    client: TestClient, world: World, rt: Runtime
) -> None:
    """GET …/actions offers what the caller may take now: once its only task is signed,
    signing it again is refused (409 task_pending), so it is not offered."""
    req = submitted(client, world)
    rid, task_id = req["id"], task_of(req, "STREET")["id"]
    act(client, world, "street", rid, "task_sign", task_id=task_id)
    with nothing_written(rt):
        again = assert_problem(
            post(client, world, "street", rid, "task_sign", task_id=task_id), 409
        )
        assert again["code"] == "refused"
        assert again["refusals"] in (["task_pending"], ["has_task_to_sign"])
    assert allowed(client, world, "street", rid) == ["task_reply"]


def test_a_reply_at_the_due_instant_is_on_time_and_one_second_later_is_not(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    req = dispatched(client, world, "GXJ", ["STREET", "RSJ"])
    rid = req["id"]
    clock.set(at(TASK_DUE))
    done = act(
        client,
        world,
        "street",
        rid,
        "task_reply",
        task_id=task_of(req, "STREET")["id"],
        content="按时",
    )
    assert task_of(done, "STREET")["on_time"] is True
    assert task_of(done, "STREET")["deadline"]["status"] == "met"

    clock.set(at("2026-11-23T17:30:01+08:00"))  # the worker has not run: the instant decides
    late = act(
        client, world, "rsj", rid, "task_reply", task_id=task_of(req, "RSJ")["id"], content="迟"
    )
    task = task_of(late, "RSJ")
    assert (task["status"], task["on_time"]) == ("done", False)
    assert task["deadline"]["status"] == "missed"
    assert task_of(late, "STREET")["on_time"] is True


def test_a_task_past_due_runs_its_own_ladder_and_leaves_the_request_s_level(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submitted(client, world)
    rid, task_id = req["id"], task_of(req, "STREET")["id"]
    act(client, world, "gxj", rid, "sign")  # the lead's reply deadline runs to 2026-11-25

    # the task's warning (Mon 09:15), overdue and rung 1 (Mon 17:30), rung 2 (+1 working day)
    fire_due(rt, now=at("2026-11-24T17:30:00+08:00"))
    warnings = events(rt, rid, "request.task_warning")
    overdue = events(rt, rid, "request.task_overdue")
    escalated = events(rt, rid, "request.task_escalated")
    assert [(e["task_id"], e["department"]) for e in warnings + overdue] == [
        (task_id, "STREET"),
        (task_id, "STREET"),
    ]
    assert [e["level"] for e in escalated] == [1, 2]
    assert [(e["task_id"], e["department"]) for e in escalated] == [(task_id, "STREET")] * 2
    # the task department's leaders, looked up from STREET: it has no department_head (GXJ,
    # the lead, would name 陈局长), and its street_leadership is 李主任
    assert escalated[0]["notify"] == [{"role": "department_head", "leaders": []}]
    assert escalated[1]["notify"] == [{"role": "street_leadership", "leaders": [LI]}]

    after = get(client, world, rid)
    assert (after["escalation_level"], after["overdue"]) == (0, False)
    assert events(rt, rid, "request.escalated") == []
    assert events(rt, rid, "request.overdue") == []
    deadline = task_of(after, "STREET")["deadline"]
    assert (deadline["status"], deadline["warned"], deadline["escalations"]) == ("missed", True, 2)
    escalations = [t for t in after["timeline"] if t["action"] == "task_escalate"]
    assert [t["data"]["notify"] for t in escalations] == [e["notify"] for e in escalated]

    # a late reply ends the task's ladder: no third rung
    clock.set(at("2026-11-24T17:30:00+08:00"))
    replied = act(client, world, "street", rid, "task_reply", task_id=task_id, content="已协调")
    task = task_of(replied, "STREET")
    assert (task["status"], task["on_time"], task["deadline"]["status"]) == (
        "done",
        False,
        "missed",
    )
    fire_due(rt, now=at("2026-11-30T17:30:00+08:00"))
    assert len(events(rt, rid, "request.task_escalated")) == 2


def test_a_delegated_task_alerts_its_own_department_s_leaders(
    client: TestClient, tree: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = street_led(client, tree)
    req = act(client, tree, "street", rid, "delegate", departments=["LUOFENG"], limit="1 hour")
    task_id = task_of(req, "LUOFENG")["id"]
    fire_due(rt, now=at("2026-11-18T11:00:00+08:00"))
    [escalated] = events(rt, rid, "request.task_escalated")
    assert (escalated["task_id"], escalated["level"]) == (task_id, 1)
    assert escalated["notify"] == [{"role": "department_head", "leaders": [ZHOU]}]
    assert get(client, tree, rid)["escalation_level"] == 0


# --- the lead and the task department: who may do what --------------------------------------


def test_the_lead_cancels_a_task(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    req = submitted(client, world)
    rid, task_id = req["id"], task_of(req, "STREET")["id"]
    # the task department may not cancel its own task: that is the lead's
    with nothing_written(rt):
        assert_problem(post(client, world, "street", rid, "cancel_task", task_id=task_id), 403)

    clock.set(at("2026-11-18T14:00:00+08:00"))
    cancelled = act(client, world, "gxj", rid, "cancel_task", task_id=task_id, reason="无需协办")
    task = task_of(cancelled, "STREET")
    assert task["status"] == "cancelled"
    assert task["deadline"]["status"] == "cancelled"
    assert at(task["deadline"]["completed_at"]) == clock.now()
    assert cancelled["state"] == "dispatched"
    assert [e["task_id"] for e in events(rt, rid, "request.task_cancelled")] == [task_id]

    # a cancelled task takes no reply, and cannot be cancelled twice
    with nothing_written(rt):
        r = post(client, world, "street", rid, "task_reply", task_id=task_id, content="晚了")
        assert_problem(r, 403, "no open task")
        again = assert_problem(post(client, world, "gxj", rid, "cancel_task", task_id=task_id), 409)
        assert again["code"] == "refused"
    fire_due(rt, now=at("2026-11-30T17:30:00+08:00"))  # its deadline fires nothing more
    assert events(rt, rid, "request.task_overdue") == []


def test_a_task_department_cannot_act_on_another_department_s_task(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = dispatched(client, world, "GXJ", ["STREET", "RSJ"])
    rid, rsj_task = req["id"], task_of(req, "RSJ")["id"]
    with nothing_written(rt):
        for action, body in (("task_sign", {}), ("task_reply", {"content": "代为答复"})):
            r = post(client, world, "street", rid, action, task_id=rsj_task, **body)
            # STREET has a task of its own here, so its role may take the action: the
            # condition that the task be its department's refuses (409), and says so
            problem = assert_problem(r, 409, "not an open task of your department")
            assert problem["code"] == "refused"
            assert problem["refusals"] == ["own_open_task"]
    after = get(client, world, rid)
    assert (after["version"], task_of(after, "RSJ")["status"]) == (req["version"], "pending")


def test_a_department_without_an_open_task_may_not_take_task_actions(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = dispatched(client, world, "GXJ", ["STREET", "RSJ"])
    rid = req["id"]
    act(
        client,
        world,
        "street",
        rid,
        "task_reply",
        task_id=task_of(req, "STREET")["id"],
        content="好",
    )
    with nothing_written(rt):
        r = post(client, world, "street", rid, "task_sign", task_id=task_of(req, "RSJ")["id"])
        assert_problem(r, 403, "no open task on this request")


def test_a_task_department_cannot_act_as_the_lead(
    client: TestClient, world: World, rt: Runtime
) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(rt):
        for action, body in (("sign", {}), ("return", {"reason": "非本部门"})):
            r = post(client, world, "street", rid, action, **body)
            problem = assert_problem(r, 403, f"may not take action '{action}' on this request")
            assert problem["allowed"] == ["task_sign", "task_reply"]
    act(client, world, "gxj", rid, "sign")
    as_lead: list[tuple[str, dict[str, Any]]] = [
        ("reply", {"content": "已办结", "resolved": True}),
        ("request_extension", {"extend_by": "2 working days", "reason": "需协调"}),
        ("delegate", {"departments": ["STREET"]}),
    ]
    with nothing_written(rt):
        for action, body in as_lead:
            r = post(client, world, "street", rid, action, **body)
            assert_problem(r, 403, f"may not take action '{action}' on this request")


def test_an_unknown_task_id_is_422(client: TestClient, world: World, rt: Runtime) -> None:
    first = submit(client, world)
    second = submitted(client, world, title="另一诉求")
    others = task_of(second, "STREET")["id"]  # a task, but of another request
    with nothing_written(rt):
        for task_id in (others, 999):
            for who, action, body in (
                ("street", "task_sign", {}),
                ("street", "task_reply", {"content": "答复"}),
                ("gxj", "cancel_task", {}),
            ):
                r = post(client, world, who, first["id"], action, task_id=task_id, **body)
                problem = assert_problem(r, 422, f"no task {task_id}")
                assert problem["code"] == "unknown_reference"
                assert (problem["kind"], problem["field"]) == ("task", "task_id")
                assert problem["codes"] == [str(task_id)]


# --- delegation (下派) -------------------------------------------------------------------


def test_the_lead_delegates_to_a_sub_unit(
    client: TestClient, tree: World, rt: Runtime, clock: FrozenClock
) -> None:
    rid = street_led(client, tree)
    clock.set(at("2026-11-18T14:00:00+08:00"))
    req = act(
        client,
        tree,
        "street",
        rid,
        "delegate",
        departments=["LUOFENG"],
        note="请社区上门核实",
        limit="2 working days",
    )
    assert req["state"] == "in_progress"
    assert req["lead_department"]["code"] == "STREET"  # the lead stays accountable
    task = task_of(req, "LUOFENG")
    assert (task["kind"], task["status"], task["note"], task["limit"]) == (
        "delegate",
        "pending",
        "请社区上门核实",
        "2 working days",
    )
    deadline = task["deadline"]
    assert deadline["duration"] == "2 working days"  # the lead's limit, not the default
    assert at(deadline["started_at"]) == clock.now()
    assert at(deadline["due_at"]) == at("2026-11-20T17:30:00+08:00")
    assert [e["departments"] for e in events(rt, rid, "request.delegated")] == [["LUOFENG"]]

    # the community sees it, with its task, and acts on it
    assert rid in listed(client, tree, "luofeng")
    seen = get(client, tree, rid, who="luofeng")
    assert task_of(seen, "LUOFENG")["id"] == task["id"]
    assert allowed(client, tree, "luofeng", rid) == ["task_sign", "task_reply"]
    act(client, tree, "luofeng", rid, "task_sign", task_id=task["id"])
    done = act(client, tree, "luofeng", rid, "task_reply", task_id=task["id"], content="已核实")
    assert task_of(done, "LUOFENG")["status"] == "done"
    assert task_of(done, "LUOFENG")["on_time"] is True
    # but never as the lead
    r = post(client, tree, "luofeng", rid, "reply", content="已办结", resolved=True)
    assert_problem(r, 403)


def test_a_delegation_without_a_limit_runs_the_default_task_limit(
    client: TestClient, tree: World
) -> None:
    rid = street_led(client, tree)
    req = act(client, tree, "street", rid, "delegate", departments=["LUOFENG"])
    task = task_of(req, "LUOFENG")
    assert task["limit"] is None
    assert task["deadline"]["duration"] == "3 working days"
    assert at(task["deadline"]["due_at"]) == at(TASK_DUE)


@pytest.mark.parametrize(
    "department",
    [
        "XIAGANG",  # a sibling street
        "RSJ",  # a sibling bureau, assisting this very request
        "DIST",  # the parent
        "STREET",  # the lead itself
    ],
)
def test_a_delegation_outside_the_lead_s_subtree_is_422_naming_departments(
    client: TestClient, tree: World, rt: Runtime, department: str
) -> None:
    rid = street_led(client, tree)
    with nothing_written(rt):
        r = post(client, tree, "street", rid, "delegate", departments=["LUOFENG", department])
        problem = assert_problem(r, 422, "departments:", department, "not below STREET")
        assert problem["code"] == "not_below_lead"
        assert "LUOFENG" not in problem["detail"]


def test_a_delegation_to_an_unknown_department_is_422_naming_departments(
    client: TestClient, tree: World, rt: Runtime
) -> None:
    rid = street_led(client, tree)
    with nothing_written(rt):
        r = post(client, tree, "street", rid, "delegate", departments=["NOPE"])
        problem = assert_problem(r, 422, "departments", "NOPE")
        assert (problem["code"], problem["kind"], problem["codes"]) == (
            "unknown_reference",
            "department",
            ["NOPE"],
        )
        # which field named it, as for an unknown task_id
        assert problem.get("field") == "departments", problem


def test_a_second_delegation_to_a_department_with_an_open_task_is_422(
    client: TestClient, tree: World, rt: Runtime
) -> None:
    rid = street_led(client, tree)
    first = act(client, tree, "street", rid, "delegate", departments=["LUOFENG"])
    with nothing_written(rt):
        r = post(client, tree, "street", rid, "delegate", departments=["LUOFENG"])
        problem = assert_problem(r, 422, "departments:", "LUOFENG", "already have an open task")
        assert problem["code"] == "task_already_open"
    # once that task is done, the lead may delegate to it again
    task_id = task_of(first, "LUOFENG")["id"]
    act(client, tree, "luofeng", rid, "task_reply", task_id=task_id, content="已办")
    again = act(client, tree, "street", rid, "delegate", departments=["LUOFENG"], note="再核实")
    assert [s for d, k, s in tasks(again) if d == "LUOFENG"] == ["done", "pending"]


def test_delegation_waits_for_the_lead_to_sign(
    client: TestClient, tree: World, rt: Runtime
) -> None:
    rid = submit(client, tree, category="HIRE")["id"]
    with nothing_written(rt):
        r = post(client, tree, "street", rid, "delegate", departments=["LUOFENG"])
        assert assert_problem(r, 409)["code"] == "not_allowed_now"


# --- tasks end with the request ------------------------------------------------------------


def test_closing_the_request_cancels_its_open_tasks(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = dispatched(client, world, "GXJ", ["STREET", "RSJ"])
    rid = req["id"]
    act(
        client,
        world,
        "street",
        rid,
        "task_reply",
        task_id=task_of(req, "STREET")["id"],
        content="好",
    )
    act(client, world, "rsj", rid, "task_sign", task_id=task_of(req, "RSJ")["id"])
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "reply", content="已办结", resolved=True)
    rated = act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True)
    assert rated["state"] == "closed"
    closed = get(client, world, rid)  # the integration's answer is the public view: no tasks
    assert tasks(closed) == [("STREET", "assist", "done"), ("RSJ", "assist", "cancelled")]
    assert [t["deadline"]["status"] for t in closed["tasks"]] == ["met", "cancelled"]
    assert all(d["completed_at"] is not None for d in closed["deadlines"])
    fire_due(rt, now=at("2026-12-31T17:30:00+08:00"))  # nothing of a task fires after
    assert events(rt, rid, "request.task_overdue") == []


def test_merging_the_request_cancels_its_tasks(client: TestClient, world: World) -> None:
    target = submit(client, world)["id"]
    rid = submit(client, world, title="重复诉求")["id"]
    merged = act(client, world, "dispatcher", rid, "merge", target_id=target)
    assert merged["state"] == "merged"
    assert tasks(merged) == [("STREET", "assist", "cancelled")]
    assert tasks(get(client, world, target)) == [("STREET", "assist", "pending")]


# --- who sees it ---------------------------------------------------------------------------


def test_the_task_department_sees_the_request_and_a_sibling_sees_nothing(
    client: TestClient, tree: World, rt: Runtime
) -> None:
    rid = submit(client, tree)["id"]  # GXJ leads, STREET assists
    assert rid in listed(client, tree, "street")
    seen = get(client, tree, rid, who="street")
    assert tasks(seen) == [("STREET", "assist", "pending")]
    assert at(task_of(seen, "STREET")["deadline"]["due_at"]) == at(TASK_DUE)
    for who in ("xiagang", "rsj", "luofeng"):  # a sibling, a stranger, a sub-unit
        assert rid not in listed(client, tree, who)
        assert_problem(client.get(f"{API}/{rid}", headers=tree.h(who)), 404)
        assert_problem(client.get(f"{API}/{rid}/actions", headers=tree.h(who)), 404)
        with nothing_written(rt):
            r = post(client, tree, who, rid, "task_sign", task_id=task_of(seen, "STREET")["id"])
            assert_problem(r, 404)


def test_a_department_sees_the_tasks_of_the_departments_below_it(
    client: TestClient, tree: World
) -> None:
    req = dispatched(client, tree, "GXJ", ["LUOFENG"])  # the community assists a bureau
    rid = req["id"]
    assert rid in listed(client, tree, "luofeng")
    assert rid in listed(client, tree, "street")  # the community's street sees it too
    assert tasks(get(client, tree, rid, who="street")) == [("LUOFENG", "assist", "pending")]
    # seeing is not acting: the street has no task of its own here
    r = post(client, tree, "street", rid, "task_sign", task_id=task_of(req, "LUOFENG")["id"])
    assert_problem(r, 403)
    assert rid not in listed(client, tree, "xiagang")
