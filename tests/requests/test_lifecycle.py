"""A request's whole life through the API, with keys per role."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import USCC_B, World, submit_body

API = "/api/v1/requests"


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
    assert r.status_code == 200, r.text
    return r.json()


def staff(client: TestClient, world: World, rid: int) -> Any:
    """The request as the supervisor sees it: the internal view, which an integration's
    answers (the public view) leave out."""
    r = client.get(f"{API}/{rid}", headers=world.h("supervisor"))
    assert r.status_code == 200, r.text
    return r.json()


def test_submit_to_reopen_to_close(client: TestClient, world: World) -> None:
    r = client.post(API, json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    req = r.json()
    rid = req["id"]
    assert req["state"] == "dispatched"
    assert req["lead_department"] == {"code": "GXJ", "name": "区工信局"}
    assert req["co_departments"] == []  # the integration sees the public view
    assert [c["code"] for c in staff(client, world, rid)["co_departments"]] == ["STREET"]

    assert client.get(f"{API}/{rid}/actions", headers=world.h("gxj")).json()["actions"] == [
        "sign",
        "return",
        "cancel_task",  # STREET's assist task (协办)
    ]
    act(client, world, "gxj", rid, "sign", note="已签收，安排专人对接")
    act(client, world, "gxj", rid, "reply", content="已协调供电局出具增容方案", resolved=True)
    reopened = act(
        client,
        world,
        "integration",
        rid,
        "rate",
        rating="dissatisfied",
        resolved=False,
        note="方案周期太长",
    )
    assert reopened["state"] == "in_progress"
    assert staff(client, world, rid)["reopen_count"] == 1
    act(client, world, "gxj", rid, "reply", content="已压缩至 10 个工作日完成", resolved=True)
    closed = act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True)
    assert closed["state"] == "closed"
    assert closed["rating"] == "satisfied"
    assert closed["resolved"] is True
    assert closed["closed_at"] is not None

    closed = staff(client, world, rid)
    timeline = closed["timeline"]
    steps = [(t["seq"], t["action"], t["from_state"], t["to_state"]) for t in timeline]
    assert steps == [
        (1, "submit", None, "submitted"),
        (2, "route", "submitted", "dispatched"),
        (3, "sign", "dispatched", "in_progress"),
        (4, "reply", "in_progress", "replied"),
        (5, "rate", "replied", "in_progress"),
        (6, "reply", "in_progress", "replied"),
        (7, "rate", "replied", "closed"),
    ]
    assert timeline[2]["note"] == "已签收，安排专人对接"
    assert timeline[4]["data"] == {"rating": "dissatisfied", "resolved": False}
    assert timeline[4]["role"] == "integration"
    kinds = [(d["kind"], d["status"]) for d in closed["deadlines"]]
    assert kinds == [
        ("sign", "met"),
        ("task", "cancelled"),  # STREET's assist task, never replied: it ends with the request
        ("reply", "met"),
        ("feedback", "met"),
        ("reply", "met"),
        ("feedback", "met"),
    ]
    assert [(t["department"]["code"], t["kind"], t["status"]) for t in closed["tasks"]] == [
        ("STREET", "assist", "cancelled")
    ]


def test_reopen_limit_closes_unresolved_and_escalates(client: TestClient, world: World) -> None:
    rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "reply", content="答复一", resolved=True)
    act(client, world, "integration", rid, "rate", rating="very_dissatisfied", resolved=False)
    act(client, world, "gxj", rid, "reply", content="答复二", resolved=True)
    final = act(client, world, "integration", rid, "rate", rating="dissatisfied", resolved=False)
    assert final["state"] == "closed"
    assert final["resolved"] is False
    assert staff(client, world, rid)["escalation_level"] == 1


def test_unrouted_request_waits_for_dispatch_then_return_and_redispatch(
    client: TestClient, world: World
) -> None:
    req = client.post(
        API, json=submit_body(category="OTHER"), headers=world.h("integration")
    ).json()
    assert req["state"] == "awaiting_dispatch"
    assert req["lead_department"] is None
    assert [d["kind"] for d in req["deadlines"]] == ["dispatch"]
    rid = req["id"]
    dispatched = act(
        client, world, "dispatcher", rid, "dispatch", lead_department="RSJ", co_departments=["GXJ"]
    )
    assert dispatched["state"] == "dispatched"
    asked = act(client, world, "rsj", rid, "return", reason="不属于本部门职责")
    assert asked["state"] == "return_review"  # the dispatcher reviews a return (v2)
    assert [d["status"] for d in asked["deadlines"] if d["kind"] == "sign"] == ["running"]
    returned = act(client, world, "dispatcher", rid, "accept_return")
    assert returned["state"] == "awaiting_dispatch"
    assert returned["return_count"] == 1
    assert returned["lead_department"] is None
    assert [t["status"] for t in returned["tasks"]] == ["cancelled"]  # GXJ's assist task
    # the returning department no longer sees it
    assert client.get(f"{API}/{rid}", headers=world.h("rsj")).status_code == 404
    act(client, world, "dispatcher", rid, "dispatch", lead_department="GXJ")
    assert client.get(f"{API}/{rid}", headers=world.h("gxj")).json()["state"] == "dispatched"


def test_returns_past_the_limit_escalate(client: TestClient, world: World) -> None:
    rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]
    levels = []
    for _ in range(3):
        act(client, world, "gxj", rid, "return", reason="请核实诉求内容")
        r = act(client, world, "dispatcher", rid, "accept_return")
        levels.append(r["escalation_level"])
        act(client, world, "dispatcher", rid, "dispatch", lead_department="GXJ")
    assert levels == [0, 0, 1]  # return_escalate_after: 2


def test_routing_rule_by_grid_prefix_beats_the_category(client: TestClient, world: World) -> None:
    # HIRE's lead is RSJ, but the rule for grid 440112012 sends it to the street office
    rid = client.post(
        API, json=submit_body(category="HIRE"), headers=world.h("integration")
    ).json()["id"]
    req = staff(client, world, rid)
    assert req["lead_department"]["code"] == "STREET"
    assert [c["code"] for c in req["co_departments"]] == ["RSJ"]
    other = client.post(
        API,
        json=submit_body(category="HIRE", enterprise_uscc=USCC_B),
        headers=world.h("integration"),
    ).json()
    assert other["lead_department"]["code"] == "RSJ"


def test_extension_suspend_resume(client: TestClient, world: World) -> None:
    rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]
    act(client, world, "gxj", rid, "sign")
    before = act(
        client,
        world,
        "gxj",
        rid,
        "request_extension",
        extend_by="2 working days",
        reason="需现场勘查",
    )
    assert before["pending_extension"]["extend_by"] == "2 working days"
    due_before = next(d["due_at"] for d in before["deadlines"] if d["kind"] == "reply")
    assert client.get(f"{API}/{rid}/actions", headers=world.h("supervisor")).json()["actions"] == [
        "decide_extension",
        "urge",
        "supervise",
    ]
    after = act(client, world, "supervisor", rid, "decide_extension", approved=True)
    assert after["pending_extension"] is None
    due_after = next(d["due_at"] for d in after["deadlines"] if d["kind"] == "reply")
    assert due_after > due_before
    asked = act(
        client,
        world,
        "gxj",
        rid,
        "request_suspension",
        reason_code="awaiting_materials",
        reason="等待企业补充环评材料",
        length="3 working days",
    )
    assert asked["state"] == "in_progress"  # the clock runs while the decision waits
    assert asked["pending_suspension"]["reason_code"] == "awaiting_materials"
    suspended = act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    assert suspended["state"] == "suspended"
    assert suspended["suspension_count"] == 1
    assert suspended["suspension"]["resumes_at"]
    assert [d["status"] for d in suspended["deadlines"] if d["kind"] == "reply"] == ["paused"]
    assert [d["status"] for d in suspended["deadlines"] if d["kind"] == "suspension"] == ["running"]
    resumed = act(client, world, "gxj", rid, "resume")
    assert resumed["suspension"] is None
    assert [d["status"] for d in resumed["deadlines"] if d["kind"] == "reply"] == ["running"]
    assert [d["status"] for d in resumed["deadlines"] if d["kind"] == "suspension"] == ["met"]


def test_reject_and_merge(client: TestClient, world: World) -> None:
    first = client.post(
        API, json=submit_body(category="OTHER"), headers=world.h("integration")
    ).json()
    second = client.post(
        API, json=submit_body(category="OTHER"), headers=world.h("integration")
    ).json()
    merged = act(client, world, "dispatcher", second["id"], "merge", target_id=first["id"])
    assert merged["state"] == "merged"
    assert merged["merged_into"] == first["id"]
    assert [d["status"] for d in merged["deadlines"]] == ["cancelled"]
    rejected = act(client, world, "dispatcher", first["id"], "reject", reason="属于司法诉讼事项")
    assert rejected["state"] == "rejected"
    r = client.post(f"{API}/{first['id']}/actions/urge", json={}, headers=world.h("supervisor"))
    assert r.status_code == 409
    assert r.json()["allowed"] == []


def test_supervise_raises_escalation_and_urge_keeps_state(client: TestClient, world: World) -> None:
    rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]
    urged = act(client, world, "supervisor", rid, "urge", note="请尽快签收")
    assert urged["state"] == "dispatched"
    assert urged["escalation_level"] == 0
    supervised = act(client, world, "supervisor", rid, "supervise", note="列入督办")
    assert supervised["escalation_level"] == 1
    assert supervised["state"] == "dispatched"


def test_list_filters_and_cursor(client: TestClient, world: World) -> None:
    ids = [
        client.post(
            API, json=submit_body(title=f"诉求 {i}"), headers=world.h("integration")
        ).json()["id"]
        for i in range(5)
    ]
    client.post(API, json=submit_body(category="OTHER"), headers=world.h("integration"))
    page1 = client.get(
        API, params={"limit": 2, "department": "GXJ"}, headers=world.h("supervisor")
    ).json()
    assert [r["id"] for r in page1["items"]] == ids[::-1][:2]
    page2 = client.get(
        API,
        params={"limit": 2, "department": "GXJ", "cursor": page1["next_cursor"]},
        headers=world.h("supervisor"),
    ).json()
    page3 = client.get(
        API,
        params={"limit": 2, "department": "GXJ", "cursor": page2["next_cursor"]},
        headers=world.h("supervisor"),
    ).json()
    assert [r["id"] for r in page2["items"] + page3["items"]] == ids[::-1][2:]
    assert page3["next_cursor"] is None
    waiting = client.get(
        API, params={"state": "awaiting_dispatch"}, headers=world.h("dispatcher")
    ).json()
    assert len(waiting["items"]) == 1
    # a department's list holds only what it leads or co-handles
    street = client.get(API, headers=world.h("street")).json()["items"]
    assert len(street) == 5  # co-department of POWER
    assert client.get(API, headers=world.h("rsj")).json()["items"] == []
    by_grid = client.get(API, params={"grid": "440112012"}, headers=world.h("supervisor")).json()[
        "items"
    ]
    assert len(by_grid) == 6


def test_the_first_event_of_a_submit_names_its_request(client: TestClient, world: World) -> None:
    from sqlalchemy import select

    from huying.alerts.models import Event

    req = client.post(API, json=submit_body(), headers=world.h("integration")).json()
    with world.rt.transaction() as s:
        first = s.scalars(
            select(Event).where(Event.request_id == req["id"]).order_by(Event.id)
        ).first()
    assert first is not None
    assert first.type == "request.dispatched"
    assert first.data["request"]["id"] == req["id"]
    assert first.data["request"]["number"] == req["number"]
    # its webhook-id: a UUIDv7, so the uid index grows at its end (`huying.uids`)
    assert first.uid.startswith("msg_") and uuid.UUID(first.uid[4:]).version == 7
    assert req["version"] == 1  # created in one INSERT, no follow-up UPDATE
