"""Property-based fuzzing of the OpenAPI schema with schemathesis, in process (ASGI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oa_checks

from huying.app import create_app
from huying.clock import FrozenClock
from huying.runtime import build_runtime
from tests.api.support import empty_tables
from tests.conftest import T0, World, make_settings, submit_body

ROLES = ("admin", "integration", "gxj")
MAX_EXAMPLES = 40


def _openapi() -> dict:
    rt = build_runtime(make_settings("sqlite:///:memory:"))
    try:
        return create_app(rt).openapi()
    finally:
        rt.close()


schema = schemathesis.openapi.from_dict(
    _openapi(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20261118,
            "generation": {
                "mode": "all",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
        }
    ),
)


@pytest.fixture(scope="module")
def fuzz_world(migrated: str) -> Iterator[World]:
    runtime = build_runtime(make_settings(migrated), clock=FrozenClock(T0))
    empty_tables(runtime)
    world = World(runtime)
    with TestClient(create_app(runtime)) as c:
        for body in (submit_body(), submit_body(category="HIRE"), submit_body(category="OTHER")):
            r = c.post("/api/v1/requests", json=body, headers=world.h("integration"))
            assert r.status_code == 201, r.text
    yield world
    empty_tables(runtime)
    runtime.close()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_world: World) -> FastAPI:
    return create_app(fuzz_world.rt)


def success_conforms(ctx, response, case):
    """2xx responses match the documented schema and content type."""
    if 200 <= response.status_code < 300:
        oa_checks.content_type_conformance(ctx, response, case)
        oa_checks.response_schema_conformance(ctx, response, case)


def errors_are_problems(ctx, response, case):
    """4xx responses are application/problem+json with a human-readable detail."""
    if 400 <= response.status_code < 500:
        ctype = (response.headers.get("content-type") or [""])[0]
        assert ctype.startswith("application/problem+json"), f"content-type {ctype!r}"
        body = response.json()
        assert body.get("status") == response.status_code, body
        assert isinstance(body.get("detail"), str) and body["detail"].strip(), body


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
def test_fuzz(case, role: str, fuzz_app: FastAPI, fuzz_world: World) -> None:
    case.call_and_validate(
        app=fuzz_app,
        headers=fuzz_world.h(role),
        checks=[
            st_checks.not_a_server_error,
            success_conforms,
            errors_are_problems,
            oa_checks.negative_data_rejection,
        ],
    )
