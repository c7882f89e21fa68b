"""The public view (DESIGN.md part two, "Public and internal"): a key of role `integration`
(the grid system, the enterprise's own channel) sees where its request is, who handles it
(the lead department's name), when it is due, the public timeline and the reply, in every
answer of the requests API (submit, list, get, actions); never leaders' names or phones
(the `notify` of escalations), internal notes (returns, suspensions, supervision, task
replies) or refusals. Staff see everything.

tests/world.yaml routes POWER to 区工信局 (GXJ) with 萝岗街道 (STREET) assisting. Dates:
submitted and signed Wednesday 2026-11-18 10:00 Shanghai; the reply deadline (5 working
days) falls due Wednesday 2026-11-25 17:30, its rung 3 three working days later."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.clock import FrozenClock
from huying.directory.models import Department
from huying.requests.firing import fire_due
from huying.runtime import Runtime, build_runtime
from tests.conftest import (
    QUIET_TASKS,
    WORLD_YAML,
    Specs,
    World,
    empty_tables,
    make_settings,
    submit_body,
)
from tests.requests.many_hands import (
    API,
    REPLY_DUE,
    SUSPEND,
    act,
    at,
    get,
    submit,
    task_of,
)

# What only staff may read, written by the life below: each must be missing from every
# answer an integration gets.
RETURN_REASON = "不属于本局职责，建议改派区发改局"
REFUSAL_REASON = "用电增容属工信局职责，不同意退单"
TASK_REPLY = "街道已协助核实厂区现场，线路需改造"
SUPERVISION_NOTE = "列入区政府重点督办事项"
INTERNAL_TEXTS = (RETURN_REASON, REFUSAL_REASON, SUSPEND["reason"], TASK_REPLY, SUPERVISION_NOTE)
REPLY = "已协调供电局出具增容方案，两周内完成线路改造"
PUBLIC_ACTIONS = ["submit", "route", "sign", "reply", "rate"]
# Every field of a request the public view empties (a list) or withholds (None).
WITHHELD: dict[str, Any] = {
    "co_departments": [],
    "tasks": [],
    "escalation_level": None,
    "overdue": None,
    "return_count": None,
    "reopen_count": None,
    "pending_extension": None,
    "pending_suspension": None,
    "suspension": None,
    "suspension_count": None,
    "returned_from": None,
}


@pytest.fixture
def rt(migrated: str, clock: FrozenClock, workflows: Specs) -> Iterator[Runtime]:
    """tests/conftest.py's runtime with the assist task's own deadline out of the way
    (QUIET_TASKS): the worker fires only the lead's reply deadline."""
    runtime = build_runtime(
        make_settings(migrated, time_limits=QUIET_TASKS), clock=clock, workflows=workflows
    )
    yield runtime
    empty_tables(runtime)
    runtime.close()


@pytest.fixture
def leaders(world: World, rt: Runtime) -> list[str]:
    """The names of tests/world.yaml's leaders and the mobile numbers given to them here
    (the world names none): what no answer to an integration may contain."""
    phones: list[str] = []
    with rt.transaction() as s:
        for i, dept in enumerate(s.scalars(select(Department).order_by(Department.code))):
            if dept.leaders:
                phone = f"1390000{i:04d}"
                dept.leaders = [{**x, "phone": phone, "title": "负责人"} for x in dept.leaders]
                phones.append(phone)
    names = [
        leader["name"]
        for dept in yaml.safe_load(WORLD_YAML)["departments"]
        for leader in dept.get("leaders", ())
    ]
    assert len(names) == 3 and len(phones) == 3
    return names + phones


def text_of(answer: Any) -> str:
    """An answer as the client reads it: the JSON text, Chinese unescaped."""
    return json.dumps(answer, ensure_ascii=False)


def assert_public(answer: dict[str, Any], leaders: list[str]) -> None:
    """The public view of one request: nothing withheld shown, no leader, no internal note,
    no refusal; only the lead's own deadlines, without their escalation counts."""
    for name, value in WITHHELD.items():
        assert answer[name] == value, (name, answer[name])
    for d in answer["deadlines"]:
        assert d["kind"] in ("dispatch", "sign", "reply", "feedback"), d
        assert (d["escalations"], d["extensions"]) == (None, None), d
    text = text_of(answer)
    assert "notify" not in text
    for secret in (*leaders, *INTERNAL_TEXTS):
        assert secret not in text, secret
    for entry in answer["timeline"] or ():
        assert entry["public"] is True, entry
        assert entry["actor"] == entry["role"], entry  # shown by role, not by key


def lived(client: TestClient, world: World, rt: Runtime, clock: FrozenClock) -> dict[str, Any]:
    """A POWER request through sign, a return the dispatcher refuses, a suspension asked,
    approved and ended, STREET's task reply, a supervision, the worker's overdue and rungs
    past the reply deadline, the reply and the enterprise's rating. Returns the rate's
    answer to the integration."""
    rid = submit(client, world)["id"]
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "return", reason=RETURN_REASON)
    act(client, world, "dispatcher", rid, "refuse_return", reason=REFUSAL_REASON)
    act(client, world, "gxj", rid, "request_suspension", **SUSPEND)
    act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    act(client, world, "gxj", rid, "resume")
    task = task_of(get(client, world, rid), "STREET")["id"]
    act(client, world, "street", rid, "task_sign", task_id=task)
    act(client, world, "street", rid, "task_reply", task_id=task, content=TASK_REPLY)
    act(client, world, "supervisor", rid, "supervise", note=SUPERVISION_NOTE)
    clock.set(at("2026-12-01T10:00:00+08:00"))  # past REPLY_DUE and its rung 3
    assert fire_due(rt, now=clock.now()).fired == 5  # warning, overdue, rungs 1 to 3
    act(client, world, "gxj", rid, "reply", content=REPLY, resolved=True)
    rated: dict[str, Any] = act(
        client, world, "integration", rid, "rate", rating="satisfied", resolved=True
    )
    return rated


def test_the_integration_sees_only_the_public_entries_of_a_whole_life(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, leaders: list[str]
) -> None:
    rated = lived(client, world, rt, clock)
    rid = rated["id"]
    seen = get(client, world, rid, who="integration")
    assert [t["action"] for t in seen["timeline"]] == PUBLIC_ACTIONS
    assert [t["action"] for t in rated["timeline"]] == PUBLIC_ACTIONS  # the action's answer
    assert_public(seen, leaders)
    assert_public(rated, leaders)
    assert seen["state"] == "closed"
    assert seen["lead_department"] == {"code": "GXJ", "name": "区工信局"}
    by_action = {t["action"]: t for t in seen["timeline"]}
    assert by_action["reply"]["note"] == REPLY
    assert by_action["reply"]["actor"] == "department"
    assert by_action["route"]["data"] == {"lead_department": "GXJ"}
    assert by_action["rate"]["data"] == {"rating": "satisfied", "resolved": True}
    assert [d["kind"] for d in seen["deadlines"]] == ["sign", "reply", "feedback"]
    reply = seen["deadlines"][1]
    assert (reply["due_at"], reply["status"]) == (REPLY_DUE, "missed")


def test_staff_see_every_entry_leaders_and_notes_of_the_same_life(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, leaders: list[str]
) -> None:
    rid = lived(client, world, rt, clock)["id"]
    staff = get(client, world, rid, who="supervisor")
    actions = [t["action"] for t in staff["timeline"]]
    for internal in (
        "return",
        "refuse_return",
        "request_suspension",
        "decide_suspension",
        "resume",
        "task_sign",
        "task_reply",
        "supervise",
        "overdue",
        "escalate",
    ):
        assert internal in actions, internal
    assert [a for a in actions if a in PUBLIC_ACTIONS] == PUBLIC_ACTIONS
    assert len(actions) > len(PUBLIC_ACTIONS)
    text = text_of(staff)
    for secret in INTERNAL_TEXTS:
        assert secret in text, secret
    notified = [t["data"]["notify"] for t in staff["timeline"] if "notify" in t["data"]]
    names = {x["name"] for n in notified for rung in n for x in rung["leaders"]}
    phones = {x["phone"] for n in notified for rung in n for x in rung["leaders"]}
    assert {"陈局长", "王区长"} <= names  # supervise (level 1), the ladder's rung 3
    assert phones and phones <= set(leaders)
    assert staff["co_departments"] == [{"code": "STREET", "name": "萝岗街道"}]
    assert staff["tasks"][0]["reply"] == TASK_REPLY
    assert staff["escalation_level"] == 3
    assert staff["return_count"] == 0 and staff["suspension_count"] == 1
    assert {d["kind"] for d in staff["deadlines"]} >= {"task", "review", "suspension"}


def test_the_integration_list_shows_the_public_view(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, leaders: list[str]
) -> None:
    rated = lived(client, world, rt, clock)
    r = client.get(API, params={"number": rated["number"]}, headers=world.h("integration"))
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["id"] == rated["id"]
    assert_public(item, leaders)
    staff = client.get(API, params={"number": rated["number"]}, headers=world.h("dispatcher"))
    [full] = staff.json()["items"]
    assert full["escalation_level"] == 3 and full["co_departments"] != []


def test_the_submit_answer_is_public_for_an_integration_and_whole_for_staff(
    client: TestClient, world: World, rt: Runtime, leaders: list[str]
) -> None:
    mine = submit(client, world)
    assert_public(mine, leaders)
    assert [t["action"] for t in mine["timeline"]] == ["submit", "route"]
    assert mine["lead_department"] == {"code": "GXJ", "name": "区工信局"}
    assert [d["kind"] for d in mine["deadlines"]] == ["sign"]  # not the assist task's
    r = client.post(API, json=submit_body(source="hotline"), headers=world.h("dispatcher"))
    assert r.status_code == 201, r.text
    whole = r.json()
    assert whole["co_departments"] == [{"code": "STREET", "name": "萝岗街道"}]
    assert [t["kind"] for t in whole["tasks"]] == ["assist"]
    assert whole["escalation_level"] == 0


def test_the_submit_answer_carries_the_receipt_link(
    client: TestClient, world: World, rt: Runtime
) -> None:
    first, second = submit(client, world), submit(client, world)
    prefix = f"{rt.settings.public_url}/r/"
    tokens = []
    for answer in (first, second):
        url = answer["receipt_url"]
        assert url.startswith(prefix), url
        token = url.removeprefix(prefix)
        assert len(token) == 22 and token.replace("-", "").replace("_", "").isalnum(), token
        tokens.append(token)
    assert tokens[0] != tokens[1]


def test_an_approved_extension_is_public_a_refused_one_is_not(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, leaders: list[str]
) -> None:
    """`public: approved`: the enterprise learns of the new due instant, never of a refusal
    or of the reason the department gave."""
    rid = submit(client, world)["id"]
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "request_extension", extend_by="1 working day", reason="待勘查")
    act(client, world, "supervisor", rid, "decide_extension", approved=False, note="理由不足")
    refused = get(client, world, rid, who="integration")
    assert [t["action"] for t in refused["timeline"]] == ["submit", "route", "sign"]
    assert "理由不足" not in text_of(refused) and "待勘查" not in text_of(refused)

    rid = submit(client, world)["id"]
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "request_extension", extend_by="1 working day", reason="待勘查")
    act(client, world, "supervisor", rid, "decide_extension", approved=True)
    approved = get(client, world, rid, who="integration")
    assert [t["action"] for t in approved["timeline"]] == [
        "submit",
        "route",
        "sign",
        "decide_extension",
    ]
    assert approved["timeline"][-1]["data"].get("extend_by") == "1 working day"
    assert approved["deadlines"][-1]["due_at"] == "2026-11-26T17:30:00+08:00"
    assert "待勘查" not in text_of(approved)
    assert_public(approved, leaders)


def test_only_the_reply_the_rejection_and_the_rating_show_their_notes(
    client: TestClient, world: World, rt: Runtime, leaders: list[str]
) -> None:
    """A public entry is public for what happened (DESIGN.md: "sign", "route/dispatch by
    department name"), but staff's words on signing, dispatching or reassigning are theirs:
    they may name a clerk and a mobile number, or why a department was taken off. Only the
    reply's content, the reason of a rejection and the enterprise's own comment are shown."""
    sign_note = "已签收，由张科长 13800001111 对接"
    dispatch_note = "按属地原则派工信局"
    reassign_reason = "工信局推诿，改派人社局"
    rid = submit(client, world, category="OTHER")["id"]
    act(client, world, "dispatcher", rid, "dispatch", lead_department="GXJ", note=dispatch_note)
    act(client, world, "gxj", rid, "sign", note=sign_note)
    act(client, world, "dispatcher", rid, "reassign", lead_department="RSJ", reason=reassign_reason)
    act(client, world, "rsj", rid, "sign")
    act(client, world, "rsj", rid, "reply", content=REPLY, resolved=True)
    act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True, note="很及时")
    seen = get(client, world, rid, who="integration")
    assert [t["action"] for t in seen["timeline"]] == [
        "submit",
        "route",
        "dispatch",
        "sign",
        "reassign",
        "sign",
        "reply",
        "rate",
    ]
    text = text_of(seen)
    for internal in (sign_note, dispatch_note, reassign_reason):
        assert internal not in text, internal
    notes = {t["action"]: t["note"] for t in seen["timeline"]}
    assert (notes["reply"], notes["rate"]) == (REPLY, "很及时")
    assert_public(seen, leaders)

    rejected = submit(client, world, category="OTHER")["id"]
    act(client, world, "dispatcher", rejected, "reject", reason="不属于涉企诉求")
    last = get(client, world, rejected, who="integration")["timeline"][-1]
    assert (last["action"], last["note"]) == ("reject", "不属于涉企诉求")
