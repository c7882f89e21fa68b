"""Scope follows the department tree in the API: department staff see their department and
everything below it, a dispatcher or supervisor bound to a department sees and acts on that
subtree only, and a request outside it is 404 on every route, as if it did not exist.

Bound dispatchers do not see requests awaiting their first dispatch: those have no
department yet (README, "Scope follows the department tree")."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.runtime import Runtime
from tests.api.conftest import API
from tests.api.support import assert_problem, nothing_written
from tests.api.tree import Tree, add_keys, plant
from tests.conftest import World


@pytest.fixture
def tree(rt: Runtime, world: World) -> Tree:
    planted = plant(rt)
    add_keys(world)
    return planted


def listed(client: TestClient, world: World, who: str, query: str = "") -> set[int]:
    r = client.get(f"{API}?limit=200{query}", headers=world.h(who))
    assert r.status_code == 200, r.text
    return {item["id"] for item in r.json()["items"]}


def refused(client: TestClient, world: World, who: str, rid: int) -> None:
    """Every route answers 404 for a request outside the caller's subtree, writing nothing."""
    assert_problem(client.get(f"{API}/{rid}", headers=world.h(who)), 404)
    assert_problem(client.get(f"{API}/{rid}/actions", headers=world.h(who)), 404)
    with nothing_written(world.rt):
        r = client.post(f"{API}/{rid}/actions/urge", json={"note": "请加快"}, headers=world.h(who))
        assert_problem(r, 404)


def test_a_street_clerk_sees_its_community_s_requests_and_its_own(
    client: TestClient, world: World, tree: Tree
) -> None:
    assert listed(client, world, "street") == tree.street_sees
    for rid in tree.street_sees:
        assert client.get(f"{API}/{rid}", headers=world.h("street")).status_code == 200
    for rid in (tree.sibling, tree.waiting):
        refused(client, world, "street", rid)


def test_a_sibling_street_sees_nothing_of_the_street_s_subtree(
    client: TestClient, world: World, tree: Tree
) -> None:
    assert listed(client, world, "xiagang") == {tree.sibling}
    for rid in tree.street_sees:
        refused(client, world, "xiagang", rid)
    # nor by asking for it by name
    assert listed(client, world, "xiagang", "&department=LUOFENG") == set()
    r = client.post(f"{API}/{tree.community}/actions/sign", json={}, headers=world.h("xiagang"))
    assert_problem(r, 404)


def test_a_community_clerk_does_not_see_the_street_s_own_requests(
    client: TestClient, world: World, tree: Tree
) -> None:
    assert listed(client, world, "luofeng") == {tree.community}
    for rid in (tree.street_own, tree.co_street, tree.sibling):
        refused(client, world, "luofeng", rid)


def test_the_community_acts_as_lead_on_its_own_request(
    client: TestClient, world: World, tree: Tree
) -> None:
    r = client.post(f"{API}/{tree.community}/actions/sign", json={}, headers=world.h("luofeng"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_progress"


def test_a_bound_supervisor_lists_only_its_subtree(
    client: TestClient, world: World, tree: Tree
) -> None:
    assert listed(client, world, "street_supervisor") == tree.street_sees
    assert listed(client, world, "supervisor") == tree.every  # unbound: everything
    # filters narrow the subtree, never widen it
    assert listed(client, world, "street_supervisor", "&department=XIAGANG") == set()
    assert listed(client, world, "street_supervisor", "&department=LUOFENG") == {tree.community}
    for rid in (tree.sibling, tree.waiting):
        refused(client, world, "street_supervisor", rid)


def test_a_bound_supervisor_supervises_inside_its_subtree(
    client: TestClient, world: World, tree: Tree
) -> None:
    r = client.post(
        f"{API}/{tree.community}/actions/supervise",
        json={"note": "街道督办"},
        headers=world.h("street_supervisor"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["escalation_level"] == 1


def test_a_bound_dispatcher_s_actions_outside_its_subtree_are_404(
    client: TestClient, world: World, tree: Tree
) -> None:
    for rid in (tree.sibling, tree.waiting):
        refused(client, world, "street_dispatcher", rid)
    with nothing_written(world.rt):
        r = client.post(
            f"{API}/{tree.waiting}/actions/dispatch",
            json={"lead_department": "LUOFENG"},
            headers=world.h("street_dispatcher"),
        )
        assert_problem(r, 404)
    # inside it, the same action goes through
    r = client.post(
        f"{API}/{tree.community}/actions/urge", json={}, headers=world.h("street_dispatcher")
    )
    assert r.status_code == 200, r.text


def test_awaiting_dispatch_shows_only_to_unbound_dispatchers(
    client: TestClient, world: World, tree: Tree
) -> None:
    query = "&state=awaiting_dispatch"
    assert listed(client, world, "dispatcher", query) == {tree.waiting}
    assert listed(client, world, "street_dispatcher", query) == set()
    assert listed(client, world, "xiagang_dispatcher") == {tree.sibling}


@pytest.mark.parametrize("who", ["street", "street_supervisor", "street_dispatcher"])
def test_the_subtree_follows_the_request_when_it_moves(
    client: TestClient, world: World, tree: Tree, who: str
) -> None:
    """Scope is read at each call: a request dispatched into the subtree appears there."""
    assert tree.waiting not in listed(client, world, who)
    r = client.post(
        f"{API}/{tree.waiting}/actions/dispatch",
        json={"lead_department": "LUOFENG"},
        headers=world.h("dispatcher"),
    )
    assert r.status_code == 200, r.text
    assert tree.waiting in listed(client, world, who)
    found: Any = client.get(f"{API}/{tree.waiting}", headers=world.h(who)).json()
    assert found["lead_department"]["code"] == "LUOFENG"


def test_a_task_below_brings_the_request_into_the_community_s_view(
    client: TestClient, world: World, tree: Tree
) -> None:
    """The street delegates (下派) its own request to its community: the community sees it
    by its task, and the sibling street still does not."""
    rid = tree.street_own
    for action, body in (("sign", {}), ("delegate", {"departments": ["LUOFENG"]})):
        r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h("street"))
        assert r.status_code == 200, r.text
    assert listed(client, world, "luofeng") == {tree.community, rid}
    assert client.get(f"{API}/{rid}", headers=world.h("luofeng")).status_code == 200
    refused(client, world, "xiagang", rid)
