"""Helpers shared by the tests of "Many hands" (DESIGN.md part two, 多方协同): tasks (协办,
下派), reassignment (改派) and reviewed returns (退单审核), through the API.

tests/world.yaml routes POWER to 区工信局 (GXJ) with 萝岗街道 (STREET) co-handling, so a
default submit is dispatched at once with an `assist` task for STREET; HIRE in the grid of
USCC_A goes to STREET with 区人社局 (RSJ) co-handling; OTHER waits for dispatch.
`tests.api.tree.grow` adds 萝峰社区 (LUOFENG) under STREET and the sibling street 夏港街道
(XIAGANG), whose keys `tests.api.tree.add_keys` names `luofeng` and `xiagang`.

Dates: submitted Wednesday 2026-11-18 10:00 Shanghai (tests/conftest.py's T0)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.alerts.models import Event
from huying.requests.models import RequestReturn
from huying.runtime import Runtime
from tests.conftest import World, submit_body

API = "/api/v1/requests"
# Submitted at T0: the sign deadline (1 working day) and a task's (3 working days, the
# default `time_limits.*.task`), as the business calendar counts them.
SIGN_DUE = "2026-11-19T17:30:00+08:00"
TASK_DUE = "2026-11-23T17:30:00+08:00"
TASK_WARN = "2026-11-23T09:15:00+08:00"
# Signed at T0: the reply deadline (5 working days).
REPLY_DUE = "2026-11-25T17:30:00+08:00"
SUSPEND = {
    "reason_code": "awaiting_materials",
    "reason": "等待企业补充环评材料",
    "length": "2 working days",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def submit(client: TestClient, world: World, **over: Any) -> dict[str, Any]:
    """The integration's answer to its submit: the public view (DESIGN.md part two, "Public
    and internal"), without tasks, co-departments or supervision."""
    r = client.post(API, json=submit_body(**over), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def submitted(client: TestClient, world: World, **over: Any) -> dict[str, Any]:
    """A request the integration submits, read back as the supervisor sees it: with its
    tasks, co-departments and every deadline, which the integration's answer leaves out."""
    return get(client, world, submit(client, world, **over)["id"])


def get(client: TestClient, world: World, rid: int, who: str = "supervisor") -> dict[str, Any]:
    r = client.get(f"{API}/{rid}", headers=world.h(who))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def listed(client: TestClient, world: World, who: str) -> set[int]:
    """The ids of the requests in the caller's list."""
    r = client.get(f"{API}?limit=200", headers=world.h(who))
    assert r.status_code == 200, r.text
    return {item["id"] for item in r.json()["items"]}


def allowed(client: TestClient, world: World, who: str, rid: int) -> list[str]:
    r = client.get(f"{API}/{rid}/actions", headers=world.h(who))
    assert r.status_code == 200, r.text
    actions: list[str] = r.json()["actions"]
    return actions


def post(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    return client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    r = post(client, world, who, rid, action, **body)
    assert r.status_code == 200, r.text
    return r.json()


def dispatched(
    client: TestClient, world: World, lead: str, co: list[str], **over: Any
) -> dict[str, Any]:
    """An OTHER request the dispatcher sends to `lead` with co-departments `co`."""
    rid = submit(client, world, category="OTHER", **over)["id"]
    req: dict[str, Any] = act(
        client, world, "dispatcher", rid, "dispatch", lead_department=lead, co_departments=co
    )
    return req


def task_of(req: dict[str, Any], department: str) -> dict[str, Any]:
    """The request's latest task for `department`."""
    found = [t for t in req["tasks"] if t["department"]["code"] == department]
    assert found, f"no task for {department} in {req['tasks']}"
    task: dict[str, Any] = found[-1]
    return task


def tasks(req: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(department, kind, status) of each task, oldest first."""
    return [(t["department"]["code"], t["kind"], t["status"]) for t in req["tasks"]]


def lead_deadlines(req: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's own deadlines, oldest first: neither a task's nor a review's."""
    return [d for d in req["deadlines"] if d["kind"] not in ("task", "review")]


def of_kind(req: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [d for d in req["deadlines"] if d["kind"] == kind]


def events(rt: Runtime, rid: int, type_: str) -> list[dict[str, Any]]:
    """The data of the request's outbox events of one type, oldest first."""
    with rt.transaction() as s:
        query = select(Event).where(Event.request_id == rid, Event.type == type_).order_by(Event.id)
        return [dict(e.data) for e in s.scalars(query)]


def return_rows(rt: Runtime, rid: int) -> list[str]:
    """The departments of the request's RequestReturn rows (what the reports count)."""
    with rt.transaction() as s:
        query = (
            select(RequestReturn.department_code)
            .where(RequestReturn.request_id == rid)
            .order_by(RequestReturn.id)
        )
        return list(s.scalars(query))


def event_count(rt: Runtime, rid: int) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).where(Event.request_id == rid)) or 0)
