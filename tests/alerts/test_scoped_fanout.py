"""Webhooks' subjects follow the department tree: a subscription scoped to a department
(`department` on create, or its creator's own when that creator is bound to one) receives
only the events of requests that department or one below it leads, co-handles or has a task
of, as they stand at fan-out time; an unscoped one receives every event."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from huying.alerts import fanout, service
from huying.alerts import repository as alerts_repository
from huying.alerts.schemas import WebhookCreated, WebhookIn
from huying.auth.service import Principal
from huying.directory import service as directory
from huying.errors import Forbidden, UnknownReference
from huying.requests import service as requests
from huying.runtime import Runtime
from tests.alerts.conftest import deliveries, emit
from tests.api.tree import DISTRICT_DISPATCHER, Tree, act, plant
from tests.conftest import World

STREET_SUPERVISOR = Principal("key:street-sup", "supervisor", "STREET", "街道指挥中心")


@pytest.fixture
def tree(rt: Runtime, world: World) -> Tree:
    return plant(rt)


def subscribe(
    rt: Runtime, department: str | None = None, principal: Principal | None = None
) -> WebhookCreated:
    data = WebhookIn(url="https://hooks.example/in", event_types=["*"], department=department)
    with rt.transaction() as s:
        return service.subscribe(rt=rt, session=s, data=data, now=rt.now(), principal=principal)


def requests_of(rt: Runtime, subscription_id: int) -> set[int | None]:
    return {d.request_id for d in deliveries(rt) if d.subscription_id == subscription_id}


def test_a_scoped_subscription_gets_only_its_subtree_s_events(rt: Runtime, tree: Tree) -> None:
    street = subscribe(rt, "STREET")
    community = subscribe(rt, "LUOFENG")
    everything = subscribe(rt)
    emit(rt, "request.escalated")  # an event of no request: the unscoped one's alone
    assert fanout.fan_out(rt, now=rt.now()) > 0

    assert requests_of(rt, street.id) == tree.street_sees
    assert requests_of(rt, community.id) == {tree.community}
    assert requests_of(rt, everything.id) == tree.every | {None}
    # every event of the subtree's requests, not just some of each
    of_subtree = {
        d.event_id
        for d in deliveries(rt)
        if d.subscription_id == everything.id and d.request_id in tree.street_sees
    }
    assert {d.event_id for d in deliveries(rt) if d.subscription_id == street.id} == of_subtree


def test_the_subtree_is_read_at_fan_out_time(rt: Runtime, tree: Tree) -> None:
    street = subscribe(rt, "STREET")
    fanout.fan_out(rt, now=rt.now())
    assert tree.waiting not in requests_of(rt, street.id)
    act(rt, DISTRICT_DISPATCHER, tree.waiting, "dispatch", lead_department="LUOFENG")
    assert fanout.fan_out(rt, now=rt.now()) == 1
    got = [d for d in deliveries(rt) if d.subscription_id == street.id]
    assert got[-1].request_id == tree.waiting
    assert got[-1].event_type == "request.dispatched"


def test_the_fan_out_s_subtree_is_the_one_the_api_shows(rt: Runtime, tree: Tree) -> None:
    """The fan-out writes the scope's rule over the requests' tables itself (alerts may not
    import requests, which writes to the outbox): both must pick the same requests."""
    act(rt, DISTRICT_DISPATCHER, tree.waiting, "dispatch", lead_department="RSJ")
    with rt.transaction() as s:
        for code in ("STREET", "LUOFENG", "XIAGANG", "RSJ", "GXJ", "DIST"):
            who = Principal(f"key:{code}", "supervisor", code, code)
            shown, _ = requests.page(
                session=s, principal=who, filters=requests.Filters(), after=None, limit=200
            )
            subtree = directory.subtree(session=s, code=code)
            found = alerts_repository.requests_in(s, tree.every, subtree)
            assert found == {r.id for r in shown}, code


def test_a_department_is_given_on_create_through_the_api(
    api: TestClient, world: World, tree: Tree
) -> None:
    body = {"url": "https://hooks.example/in", "event_types": ["request.*"]}
    r = api.post(
        "/api/v1/webhooks", json={**body, "department": "STREET"}, headers=world.h("admin")
    )
    assert r.status_code == 201, r.text
    assert r.json()["department"] == "STREET"
    listed = api.get("/api/v1/webhooks", headers=world.h("admin")).json()
    assert [w["department"] for w in listed] == ["STREET"]

    r = api.post("/api/v1/webhooks", json={**body, "department": "NOPE"}, headers=world.h("admin"))
    assert r.status_code == 422, r.text
    assert "NOPE" in r.json()["detail"]
    r = api.post("/api/v1/webhooks", json=body, headers=world.h("admin"))
    assert r.json()["department"] is None  # an admin is bound to nothing: everything


def test_a_bound_creator_subscribes_to_no_more_than_it_sees(rt: Runtime, tree: Tree) -> None:
    assert subscribe(rt, principal=STREET_SUPERVISOR).department == "STREET"
    assert subscribe(rt, "LUOFENG", principal=STREET_SUPERVISOR).department == "LUOFENG"
    with pytest.raises(Forbidden, match="XIAGANG"):
        subscribe(rt, "XIAGANG", principal=STREET_SUPERVISOR)
    with pytest.raises(UnknownReference):
        subscribe(rt, "NOPE")
    # a department key subscribes to its own department's subtree
    clerk = Principal("key:luofeng", "department", "LUOFENG", "萝峰社区")
    assert subscribe(rt, principal=clerk).department == "LUOFENG"
    # an integration is not bound by the tree (it gets the public view: a later issue)
    grid = Principal("key:grid", "integration", None, "网格系统")
    assert subscribe(rt, principal=grid).department is None
