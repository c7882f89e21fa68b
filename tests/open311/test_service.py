"""What the facade shows of a request as it moves on: the public view only (the public
reply as status_notes, the lead department, the running deadline), never an internal note;
open until it ends, closed after."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.open311 import service
from huying.runtime import Runtime
from tests.conftest import World
from tests.open311.conftest import BASE, act, form, post, request_id

FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "lat",
    "long",
    "media_url",
}
INTERNAL = "内部：请工信局本周内办结"


def read(client: TestClient, key: str, number: str) -> dict[str, Any]:
    r = client.get(f"{BASE}/requests/{number}.json", params={"api_key": key})
    assert r.status_code == 200, r.text
    [found] = r.json()
    assert isinstance(found, dict)
    return found


def running_due(client: TestClient, world: World, rid: int) -> str:
    """The due instant of the lead's running deadline, as the JSON API shows it (a task of
    the co-department runs its own beside it)."""
    r = client.get(f"/api/v1/requests/{rid}", headers=world.h("admin"))
    deadlines = r.json()["deadlines"]
    [due] = [d["due_at"] for d in deadlines if d["status"] == "running" and d["kind"] != "task"]
    return datetime.fromisoformat(due).isoformat(timespec="seconds")


def test_the_answers_hold_open311s_fields_and_no_others(client: TestClient, key: str) -> None:
    r = client.post(f"{BASE}/requests.json", data=form(key, account_id="grid-7", device_id="x"))
    assert r.status_code == 200, r.text
    [created] = r.json()
    assert created == {
        "service_request_id": "HY-20261118-000001",
        "service_notice": "待签收，承办部门：区工信局",
        "account_id": "grid-7",
    }
    assert set(read(client, key, "HY-20261118-000001")) == FIELDS


def test_the_request_is_the_one_the_rest_api_shows(
    client: TestClient, world: World, rt: Runtime, key: str
) -> None:
    number = post(client, key, lat="", long="", address_string="萝岗区开创大道 1 号")
    r = client.get(f"/api/v1/requests/{request_id(rt, number)}", headers=world.h("admin"))
    shown = r.json()
    assert shown["number"] == number
    assert (shown["title"], shown["category"]["code"]) == ("新厂房用电增容", "POWER")
    assert shown["enterprise"]["uscc"] == "91110000600037341L"
    assert shown["contact"] == {"name": "张三", "phone": "13800000000"}
    assert (shown["address"], shown["lat"], shown["long"]) == ("萝岗区开创大道 1 号", None, None)
    assert shown["media_urls"] == ["https://grid.example.com/photos/1.jpg"]
    assert shown["source"] == "api" and shown["state"] == "dispatched"
    assert read(client, key, number)["address"] == "萝岗区开创大道 1 号"


def test_a_request_through_its_life_in_the_public_view(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, key: str
) -> None:
    number = post(client, key)
    rid = request_id(rt, number)
    act(client, world, "gxj", rid, "sign")
    act(client, world, "supervisor", rid, "urge", note=INTERNAL)
    act(
        client,
        world,
        "gxj",
        rid,
        "request_suspension",
        reason_code="awaiting_materials",
        reason="内部：企业负荷清单未到",
        length="3 working days",
    )
    act(client, world, "supervisor", rid, "decide_suspension", approved=True)
    suspended = read(client, key, number)
    assert suspended["status"] == "open"
    assert suspended["service_notice"] == "已挂起，承办部门：区工信局"
    assert suspended["expected_datetime"] is None  # the reply clock is paused
    assert suspended["status_notes"] is None

    clock.advance(timedelta(hours=1))
    act(client, world, "gxj", rid, "resume")
    act(client, world, "gxj", rid, "reply", content="已协调供电公司完成增容。", resolved=True)
    replied = read(client, key, number)
    assert replied["status"] == "open"
    assert replied["service_notice"] == "已答复，承办部门：区工信局"
    assert replied["status_notes"] == "已协调供电公司完成增容。"
    assert replied["updated_datetime"] == "2026-11-18T11:00:00+08:00"
    # the enterprise's feedback deadline, 3 working days from the reply, as the JSON API has it
    assert replied["expected_datetime"] == "2026-11-23T17:30:00+08:00"
    assert replied["expected_datetime"] == running_due(client, world, rid)

    clock.advance(timedelta(hours=1))
    act(client, world, "integration", rid, "rate", rating="satisfied", resolved=True)
    closed = read(client, key, number)
    assert closed["status"] == "closed"
    assert closed["service_notice"] == "已办结"
    assert closed["expected_datetime"] is None
    assert closed["updated_datetime"] == "2026-11-18T12:00:00+08:00"
    assert closed["status_notes"] == "已协调供电公司完成增容。"

    for fmt in ("json", "xml"):
        text = client.get(f"{BASE}/requests/{number}.{fmt}", params={"api_key": key}).text
        assert "内部" not in text and "陈局长" not in text


def test_a_request_waiting_for_dispatch_then_rejected(
    client: TestClient, world: World, rt: Runtime, key: str
) -> None:
    number = post(client, key, service_code="OTHER")
    waiting = read(client, key, number)
    assert waiting["agency_responsible"] is None
    assert waiting["service_notice"] == "待派单"
    assert waiting["expected_datetime"] == "2026-11-18T12:00:00+08:00"  # 2 working hours
    assert waiting["expected_datetime"] == running_due(client, world, request_id(rt, number))
    act(client, world, "dispatcher", request_id(rt, number), "reject", reason="不属于企业诉求范围")
    rejected = read(client, key, number)
    assert (rejected["status"], rejected["service_notice"]) == ("closed", "不予受理")
    assert rejected["status_notes"] == "不属于企业诉求范围"


def test_xml_leaves_out_characters_xml_cannot_hold(client: TestClient, key: str) -> None:
    number = post(client, key, description="用电增容\x07请尽快\x1b处理")
    assert read(client, key, number)["description"] == "用电增容\x07请尽快\x1b处理"
    r = client.get(f"{BASE}/requests/{number}.xml", params={"api_key": key})
    root = ET.fromstring(r.content)  # well-formed
    assert root.tag == "service_requests"
    assert root.findtext("request/description") == "用电增容请尽快处理"


def test_a_list_holds_at_most_its_limit_newest_first(
    client: TestClient, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = [post(client, key) for _ in range(3)]
    monkeypatch.setattr(service, "LIST_LIMIT", 2)
    r = client.get(f"{BASE}/requests.json", params={"api_key": key})
    assert [i["service_request_id"] for i in r.json()] == numbers[:0:-1]
    by_number = client.get(
        f"{BASE}/requests.xml", params={"api_key": key, "service_request_id": ",".join(numbers)}
    )
    root = ET.fromstring(by_number.content)
    assert [e.text for e in root.iter("service_request_id")] == numbers[::-1]
