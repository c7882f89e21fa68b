"""Property-based fuzzing of the OpenAPI schema with schemathesis 4, in process (ASGI).

Every operation of `/openapi.json` is called with generated valid and invalid input,
as an admin (all operations) and as an integration and a department key (all but the
role-agnostic login and health check, with fewer examples). Checked on every response:

- no 5xx;
- the status code is one the operation documents;
- the body has a documented content type and matches the documented schema (errors
  included: `application/problem+json`);
- a 4xx is problem+json with its status and a non-empty `detail`;
- input that violates the schema is not accepted with a 2xx;
- a 4xx, and any GET, writes nothing (the row count of every table is unchanged).

One app, one runtime and one directory serve the whole module (the function-scoped `rt`
fixture would empty the database between operations); the tables are emptied before and
after. Generation is deterministic (fixed seed, derandomized, no example database).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oa_checks

from huying.app import create_app
from huying.clock import FrozenClock
from huying.runtime import build_runtime
from tests.api.support import PROBLEM, row_counts
from tests.conftest import T0, World, empty_tables, make_settings, submit_body

ADMIN_EXAMPLES = 30
OTHER_EXAMPLES = 20
OTHER_ROLES = ("integration", "gxj")
# Role-agnostic operations fuzzed once, as the admin (login hashes with argon2: slow).
ROLE_AGNOSTIC = ("/api/v1/auth/login", "/healthz")
# The one write a refusal makes on purpose: a failed login is recorded for throttling.
WRITTEN_WHEN_REFUSED = {("POST", "/api/v1/auth/login"): {"login_failures"}}


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document; building it needs no database connection."""
    rt = build_runtime(make_settings("sqlite:///:memory:"))
    try:
        return create_app(rt).openapi()
    finally:
        rt.close()


def _config(max_examples: int, *, coverage: bool = True) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": 20261118,
            # The coverage phase (boundary values of every parameter) is not bounded by
            # max-examples; it runs for the admin only.
            "phases": {"coverage": {"enabled": coverage}},
            "generation": {
                "mode": "all",
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
                # NUL characters included: PostgreSQL cannot store them, so they must be
                # refused with a 4xx, never reach the database as a 500.
                "allow-x00": True,
            },
        }
    )


OPENAPI = _openapi()
# Left out: revoking the keys the later passes call with (they would then test only 401s),
# and the robot test message, which calls the subscription's URL out of process.
admin_schema = (
    schemathesis.openapi.from_dict(OPENAPI, config=_config(ADMIN_EXAMPLES))
    .exclude(method="DELETE", path="/api/v1/keys/{key_id}")
    .exclude(method="POST", path="/api/v1/webhooks/{webhook_id}/test")
)
other_schema = schemathesis.openapi.from_dict(
    OPENAPI, config=_config(OTHER_EXAMPLES, coverage=False)
).exclude(path=list(ROLE_AGNOSTIC))


@pytest.fixture(scope="module")
def fuzz_world(migrated: str) -> Iterator[World]:
    """The conftest directory and keys, plus a few requests, kept for the whole module."""
    runtime = build_runtime(make_settings(migrated), clock=FrozenClock(T0))
    empty_tables(runtime)
    world = World(runtime)
    with TestClient(create_app(runtime)) as c:
        for body in (submit_body(), submit_body(category="HIRE"), submit_body(category="OTHER")):
            r = c.post("/api/v1/requests", json=body, headers=world.h("integration"))
            assert r.status_code == 201, r.text
        r = c.post("/api/v1/requests/1/actions/sign", headers=world.h("gxj"))
        assert r.status_code == 200, r.text
    yield world
    empty_tables(runtime)
    runtime.close()


@pytest.fixture(scope="module")
def fuzz_app(fuzz_world: World) -> Iterator[FastAPI]:
    yield create_app(fuzz_world.rt)


# --- checks --------------------------------------------------------------------


def errors_are_problems(ctx: Any, response: Any, case: Any) -> None:
    """A 4xx is application/problem+json with its status and a detail a person can read."""
    if 400 <= response.status_code < 500:
        ctype = (response.headers.get("content-type") or [""])[0]
        assert ctype.startswith(PROBLEM), f"{response.status_code} with content-type {ctype!r}"
        body = response.json()
        assert body.get("status") == response.status_code, body
        assert isinstance(body.get("detail"), str) and body["detail"].strip(), body


def _known_lax(case: Any) -> bool:
    """Where a 2xx for schema-violating input is no finding of this run."""
    # Query strings: an unknown parameter is ignored (as HTTP APIs do), and schemathesis
    # negates `null` into an object or array that goes on the wire as a valid string.
    return bool(case.method.upper() == "GET")


def rejects_schema_violations(ctx: Any, response: Any, case: Any) -> None:
    """Input that violates the schema is not accepted with a 2xx."""
    if not _known_lax(case):
        oa_checks.negative_data_rejection(ctx, response, case)


CHECKS = [
    st_checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
    errors_are_problems,
    rejects_schema_violations,
]


# --- the runs --------------------------------------------------------------------


def _call_and_check(case: Any, app: FastAPI, world: World, who: str) -> None:
    before = row_counts(world.rt)
    response = case.call(app=app, headers=world.h(who))
    case.validate_response(response, checks=CHECKS)
    if case.method.upper() == "GET" or 400 <= response.status_code < 500:
        after = row_counts(world.rt)
        allowed = WRITTEN_WHEN_REFUSED.get((case.method.upper(), case.path), set())
        changed = {
            t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in allowed
        }
        assert not changed, (
            f"{case.method} {case.formatted_path} answered {response.status_code} "
            f"and changed row counts (before, after): {changed}"
        )


@admin_schema.parametrize()
def test_fuzz_as_admin(case: Any, fuzz_app: FastAPI, fuzz_world: World) -> None:
    _call_and_check(case, fuzz_app, fuzz_world, "admin")


@pytest.mark.parametrize("role", OTHER_ROLES)
@other_schema.parametrize()
def test_fuzz_as_role(case: Any, role: str, fuzz_app: FastAPI, fuzz_world: World) -> None:
    _call_and_check(case, fuzz_app, fuzz_world, role)
