"""Unknown query parameters are 422 `unknown_query_parameter` on every API route, never
ignored (DESIGN.md part two, "Lookup"): a misspelt filter (`?externalid=`) must not answer
every request. The routes are walked from the app itself, so a route added later is
checked too; a route whose path takes a value gets a valid one from PATH_VALUES."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from tests.api.conftest import API, submit
from tests.api.support import assert_problem, nothing_written
from tests.attachments.samples import png
from tests.conftest import USCC_A, World, submit_body

BOGUS = "bogus_param"


def api_routes(app: FastAPI, method: str) -> list[tuple[str, frozenset[str]]]:
    """(path, its path parameters) of every route under /api/v1 that takes `method`."""
    found = []
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if path.startswith("/api/v1/") and method in (route.methods or ()):
            found.append((path, frozenset(re.findall(r"{(\w+)}", path))))
    return sorted(found)


@pytest.fixture
def path_values(client: TestClient, world: World) -> dict[str, str]:
    """A valid value for each path parameter a GET route under /api/v1 takes: a request, an
    enterprise of tests/world.yaml, an attachment the admin (who reads it below) uploaded."""
    rid = submit(client, world)["id"]
    upload = client.post(
        "/api/v1/attachments",
        files={"file": ("现场.png", png(), "image/png")},
        headers=world.h("admin"),
    )
    assert upload.status_code == 201, upload.text
    return {"request_id": str(rid), "uscc": USCC_A, "attachment_id": str(upload.json()["id"])}


def filled(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


def assert_unknown(response: Any, *names: str) -> None:
    """422 `unknown_query_parameter` naming exactly `names`."""
    problem = assert_problem(response, 422, *names)
    assert problem["code"] == "unknown_query_parameter", problem
    assert problem["parameters"] == sorted(names), problem


def test_every_get_under_api_v1_refuses_an_unknown_parameter(
    client: TestClient, world: World, path_values: dict[str, str]
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    routes = api_routes(app, "GET")
    paths = {path for path, _ in routes}
    assert {"/api/v1/requests", "/api/v1/requests/{request_id}", "/api/v1/departments"} <= paths
    for path, params in routes:
        missing = params - path_values.keys()
        assert not missing, f"{path}: give PATH_VALUES a valid {sorted(missing)}"
        url = filled(path, path_values)
        plain = client.get(url, headers=world.h("admin"))
        assert plain.status_code == 200, (url, plain.status_code, plain.text)
        bogus = client.get(url, params={BOGUS: "1"}, headers=world.h("admin"))
        assert_unknown(bogus, BOGUS)


def test_the_answer_names_only_the_unknown_ones_and_what_the_endpoint_takes(
    client: TestClient, world: World
) -> None:
    r = client.get(
        API,
        params={"limit": "5", "externalid": "grid-1", "state": "closed", "numbr": "HY-1"},
        headers=world.h("dispatcher"),
    )
    assert_unknown(r, "externalid", "numbr")
    detail = r.json()["detail"]
    assert "external_id" in detail and "number" in detail  # what it takes instead
    assert "limit" not in r.json()["parameters"]


def test_a_known_parameter_is_still_accepted(client: TestClient, world: World) -> None:
    made = submit(client, world, external_id="grid-1")
    r = client.get(API, params={"external_id": "grid-1", "limit": "5"}, headers=world.h("admin"))
    assert r.status_code == 200, r.text
    assert [item["id"] for item in r.json()["items"]] == [made["id"]]


def test_an_unknown_parameter_on_a_submit_writes_nothing(client: TestClient, world: World) -> None:
    with nothing_written(world.rt):
        r = client.post(
            API, params={"dry_run": "1"}, json=submit_body(), headers=world.h("integration")
        )
        assert_unknown(r, "dry_run")


def test_an_unknown_parameter_on_an_action_writes_nothing(client: TestClient, world: World) -> None:
    rid = submit(client, world)["id"]
    with nothing_written(world.rt):
        r = client.post(
            f"{API}/{rid}/actions/sign", params={"force": "1"}, json={}, headers=world.h("gxj")
        )
        assert_unknown(r, "force")
    state = client.get(f"{API}/{rid}", headers=world.h("gxj")).json()["state"]
    assert state == "dispatched"


# A value for each path parameter of the unsafe routes: the check comes before the route
# looks anything up, so these need not exist.
UNSAFE_PATH_VALUES = {
    "request_id": "1",
    "action": "sign",
    "webhook_id": "1",
    "delivery_id": "1",
    "attachment_id": "1",
    "code": "GXJ",
    "uscc": "91110000600037341L",
    "rule_id": "1",
    "username": "admin",
    "key_id": "1",
}


def test_every_unsafe_route_under_api_v1_refuses_an_unknown_parameter(
    client: TestClient, world: World
) -> None:
    """The POST, PATCH, PUT and DELETE routes, called as an admin with an empty body: 422
    before anything is read or written, whatever the body or the path names."""
    app = client.app
    assert isinstance(app, FastAPI)
    submit(client, world)
    unsafe = [(m, *r) for m in ("POST", "PATCH", "PUT", "DELETE") for r in api_routes(app, m)]
    assert ("POST", "/api/v1/requests", frozenset()) in unsafe
    for method, path, params in unsafe:
        missing = params - UNSAFE_PATH_VALUES.keys()
        assert not missing, f"{path}: give UNSAFE_PATH_VALUES a value for {sorted(missing)}"
        url = filled(path, UNSAFE_PATH_VALUES)
        with nothing_written(world.rt):
            r = client.request(method, url, params={BOGUS: "1"}, json={}, headers=world.h("admin"))
            assert_unknown(r, BOGUS)
