"""GET /api/v1/audit: the admin's log of admin writes, newest first, filtered by actor, action
(exact or a prefix ending in "."), target and time, paged by cursor."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.audit import service as audit
from huying.clock import FrozenClock
from tests.api.support import assert_problem
from tests.conftest import T0, World

AUDIT = "/api/v1/audit"


@pytest.fixture
def logged(world: World, clock: FrozenClock) -> list[int]:
    """Six entries an hour apart from T0 (the world's directory logged its own before)."""
    writes = [
        ("user:boss", "user.create", "user", "li"),
        ("user:boss", "user.update", "user", "li"),
        ("key:9", "user.disable", "user", "li"),
        ("key:1", "key.revoke", "key", "7"),
        ("user:boss", "user.password", "user", "wang"),
        ("user:boss", "userx.odd", "userx", "li"),  # "user." must not take it
    ]
    ids = []
    with world.rt.transaction() as s:
        for hour, (actor, action, kind, target) in enumerate(writes):
            entry = audit.record(
                s,
                actor=actor,
                action=action,
                target_type=kind,
                target_id=target,
                before={"n": hour},
                after={"n": hour + 1},
                now=T0 + timedelta(hours=hour),
            )
            assert entry is not None
            ids.append(entry.id)
    return ids


def page(client: TestClient, world: World, **query: Any) -> Any:
    r = client.get(AUDIT, params=query, headers=world.h("admin"))
    assert r.status_code == 200, r.text
    return r.json()


def ids_of(body: Any) -> list[int]:
    return [item["id"] for item in body["items"]]


def test_entries_come_newest_first_with_before_and_after(
    client: TestClient, world: World, logged: list[int]
) -> None:
    body = page(client, world, limit=500)
    assert ids_of(body) == sorted(ids_of(body), reverse=True)
    assert ids_of(body)[:6] == logged[::-1]
    newest = body["items"][0]
    assert newest["action"] == "userx.odd" and newest["actor"] == "user:boss"
    assert (newest["before"], newest["after"]) == ({"n": 5}, {"n": 6})
    assert newest["at"] == "2026-11-18T07:00:00Z"
    assert body["next_cursor"] is None


def test_filters(client: TestClient, world: World, logged: list[int]) -> None:
    def found(**query: Any) -> list[int]:
        return sorted(ids_of(page(client, world, **query)))

    assert found(actor="key:9") == [logged[2]]
    assert found(actor="user:boss", target_type="user") == [logged[0], logged[1], logged[4]]
    assert found(action="user.update") == [logged[1]]
    assert found(action="user.") == [logged[0], logged[1], logged[2], logged[4]]
    assert found(action="user") == []  # exact unless it ends in "."
    assert found(action="key.") == [logged[3]]
    assert found(target_type="user", target_id="li") == logged[:3]
    assert found(target_id="7") == [logged[3]]
    # since: at or after; until: before (ISO 8601 with an offset, local time here)
    assert found(since="2026-11-18T12:00:00+08:00", action="user.") == logged[2:3] + logged[4:5]
    assert found(until="2026-11-18T04:00:00Z", action="user.") == logged[:2]
    assert found(since="2026-11-18T03:00:00Z", until="2026-11-18T05:00:00Z") == logged[1:3]


def test_cursor_paging_walks_every_entry_once(
    client: TestClient, world: World, logged: list[int]
) -> None:
    first = page(client, world, action="user.", limit=3)
    assert ids_of(first) == [logged[4], logged[2], logged[1]] and first["next_cursor"]
    second = page(client, world, action="user.", limit=3, cursor=first["next_cursor"])
    assert ids_of(second) == [logged[0]] and second["next_cursor"] is None
    exact = page(client, world, action="user.", limit=4)
    assert len(exact["items"]) == 4 and exact["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "eDox", "YToxMjM0NTY3ODkwMTIzNDU2Nzg5MA"],  # not base64, "x:1", too long an id
)
def test_a_bad_cursor_is_422(client: TestClient, world: World, cursor: str) -> None:
    r = client.get(AUDIT, params={"cursor": cursor}, headers=world.h("admin"))
    assert_problem(r, 422, "cursor")


def test_another_list_s_cursor_is_refused(client: TestClient, world: World) -> None:
    from huying import paging

    r = client.get(AUDIT, params={"cursor": paging.encode("e", 5)}, headers=world.h("admin"))
    assert_problem(r, 422, "cursor")


@pytest.mark.parametrize("who", ["dispatcher", "supervisor", "gxj", "integration"])
def test_only_an_admin_reads_the_log(client: TestClient, world: World, who: str) -> None:
    assert_problem(client.get(AUDIT, headers=world.h(who)), 403, "may not")


def test_without_credentials_is_401(client: TestClient) -> None:
    assert_problem(client.get(AUDIT), 401)


def test_an_unknown_query_parameter_is_422(client: TestClient, world: World) -> None:
    r = client.get(AUDIT, params={"actr": "cli", "limit": "5"}, headers=world.h("admin"))
    problem = assert_problem(r, 422, "actr")
    assert problem["code"] == "unknown_query_parameter" and problem["parameters"] == ["actr"]


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "501"}, {"since": "yesterday"}, {"until": "1700000000"}]
)
def test_a_bad_filter_is_422(client: TestClient, world: World, query: dict[str, str]) -> None:
    assert_problem(client.get(AUDIT, params=query, headers=world.h("admin")), 422)
