"""The routes called most are tried first: FastAPI matches a call against the routes in the
order they were included (the order of the OpenAPI document's paths), so a route behind many
others costs more to reach (bench/routing.py)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient


def _doc(client: TestClient) -> dict[str, dict[str, object]]:
    """The OpenAPI document's paths, in the order FastAPI tries their routes."""
    paths: dict[str, dict[str, object]] = client.get("/openapi.json").json()["paths"]
    return paths


def _paths(client: TestClient) -> list[str]:
    return list(_doc(client))


def test_the_requests_routes_come_first_in_the_api(client: TestClient) -> None:
    api = [p for p in _paths(client) if p.startswith("/api/v1/")]
    requests = [p for p in api if p.startswith("/api/v1/requests")]
    assert api[: len(requests)] == requests
    assert api[0] == "/api/v1/requests"  # the intake
    # attachments next: every action may carry them
    assert api[len(requests)].startswith("/api/v1/attachments")


def test_the_health_probe_comes_before_the_api(client: TestClient) -> None:
    paths = _paths(client)
    assert paths.index("/healthz") < paths.index("/api/v1/requests")


def test_no_two_api_routes_answer_the_same_call(client: TestClient) -> None:
    """So the order is free: a literal path is never also matched by another route's
    template for the same method (`/enterprises/import` is POST, `/enterprises/{uscc}` GET
    and PATCH)."""
    doc = _doc(client)

    def pattern(path: str) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")

    clashes = [
        (method, a, b)
        for a, ops in doc.items()
        for b, other in doc.items()
        if a != b and "{" not in a and pattern(b).match(a)
        for method in set(ops) & set(other)
    ]
    assert clashes == []


def test_each_router_of_the_api_is_included_in_the_app_itself(client: TestClient) -> None:
    """FastAPI (0.165) keeps an included router as a router and matches each level again,
    twice per call: no router included in the app includes another (BENCHMARKS.md, "one
    level of routers less"). Not the API's, nor the auth's parts, nor the admin pages'."""
    app: Any = client.app
    nested = [
        (route.include_context.prefix, inner.prefix)
        for route in app.router.routes
        if (router := getattr(route, "original_router", None)) is not None
        for inner in (getattr(r, "original_router", None) for r in router.routes)
        if inner is not None
    ]
    assert nested == []
