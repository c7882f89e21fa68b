"""Each failure kind has a stable `code` in the problem body, with its structured fields beside
`detail`: a client (the console too) tells failures apart without reading English."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from huying import errors
from huying.api.problems import PROBLEM_SCHEMA, answer, status_of
from tests.api.conftest import API, act, submit
from tests.api.support import assert_problem
from tests.conftest import World


def test_every_kind_of_error_has_a_documented_code() -> None:
    kinds: list[type[errors.HuyingError]] = [errors.HuyingError]
    for kind in kinds:
        kinds.extend(kind.__subclasses__())
    for kind in kinds:
        assert kind.code in errors.CODES, kind
    assert PROBLEM_SCHEMA["properties"]["code"]["enum"] == list(errors.CODES)


def test_a_finer_kind_keeps_the_status_of_its_kind() -> None:
    assert status_of(errors.MissingFields("x", fields=["a"]))[0] == 422
    assert status_of(errors.GuardRefused("x", refusals=["g"], allowed=[]))[0] == 409
    assert status_of(errors.StaleVersion("x", current_version=3))[0] == 412
    assert status_of(errors.UnknownAction("x", allowed=[]))[0] == 404
    assert status_of(errors.NotFound("x", code="request_not_found"))[0] == 404
    assert status_of(errors.HuyingError("x"))[0] == 400


def test_the_code_and_fields_are_in_the_body() -> None:
    response = answer(errors.StaleVersion("request 7 is at version 3", current_version=3))
    body = json.loads(bytes(response.body))
    assert response.status_code == 412
    assert body["code"] == "stale_version" and body["current_version"] == 3
    assert body["detail"] == "request 7 is at version 3"
    body = json.loads(bytes(answer(errors.InvalidInput("x", code="merge_into_itself")).body))
    assert body["code"] == "merge_into_itself" and body["status"] == 422


def test_codes_through_the_api(client: TestClient, world: World, dispatched: Any) -> None:
    rid = dispatched["id"]
    r = client.post(f"{API}/{rid}/actions/frobnicate", headers=world.h("admin"))
    body = assert_problem(r, 404, "frobnicate")
    assert body["code"] == "unknown_action" and "allowed" in body
    body = assert_problem(client.get(f"{API}/{rid + 1000}", headers=world.h("admin")), 404)
    assert body["code"] == "request_not_found"
    r = client.post(f"{API}/{rid}/actions/reply", json={}, headers=world.h("gxj"))
    body = assert_problem(r, 409)
    assert body["code"] == "not_allowed_now" and body["allowed"] == [
        "sign",
        "return",
        "cancel_task",
    ]
    r = client.post(f"{API}/{rid}/actions/sign", headers=world.h("gxj", **{"If-Match": '"99"'}))
    body = assert_problem(r, 412)
    assert (body["code"], body["current_version"]) == ("stale_version", dispatched["version"])
    act(client, world, "gxj", rid, "sign")
    r = client.post(f"{API}/{rid}/actions/reply", json={"content": "好"}, headers=world.h("gxj"))
    body = assert_problem(r, 422, "resolved")
    assert body["code"] == "invalid_fields" and body["errors"]
    act(client, world, "gxj", rid, "request_extension", extend_by="2 working days", reason="等")
    r = client.post(
        f"{API}/{rid}/actions/request_extension",
        json={"extend_by": "1 working day", "reason": "再等"},
        headers=world.h("gxj"),
    )
    body = assert_problem(r, 409, "refused")
    assert body["code"] == "refused" and body["refusals"] == ["no_extension_pending"]


def test_unknown_departments_are_named(client: TestClient, world: World) -> None:
    rid = submit(client, world, category="OTHER")["id"]
    r = client.post(
        f"{API}/{rid}/actions/dispatch",
        json={"lead_department": "GXJ", "co_departments": ["NOPE", "ALSO_NOPE"]},
        headers=world.h("dispatcher"),
    )
    body = assert_problem(r, 422, "NOPE")
    assert (body["code"], body["kind"]) == ("unknown_reference", "department")
    assert body["codes"] == ["ALSO_NOPE", "NOPE"]
    for target, code in ((rid, "merge_into_itself"), (999_999, "unknown_reference")):
        r = client.post(
            f"{API}/{rid}/actions/merge", json={"target_id": target}, headers=world.h("dispatcher")
        )
        assert assert_problem(r, 422)["code"] == code


def test_a_malformed_body_is_invalid_fields(client: TestClient, world: World) -> None:
    r = client.post(API, json={"title": 1}, headers=world.h("integration"))
    assert assert_problem(r, 422)["code"] == "invalid_fields"
