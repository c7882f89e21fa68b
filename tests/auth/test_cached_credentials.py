"""Credentials answered from the cache (`huying.auth.service.authenticate`) are exactly what
the database says: a logout, an expiry or a revoked key holds on the very next call on every
replica, and a call answered from the cache reads no key or session row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from huying.app import create_app
from huying.auth.service import authenticate, create_user
from huying.clock import FrozenClock
from huying.runtime import Runtime, build_runtime
from tests.api.support import assert_problem
from tests.conftest import World, make_settings, sent_statements

ME = "/api/v1/auth/me"
SECRET = "Zhang-San-2026!"


@pytest.fixture
def other_server(migrated: str, rt: Runtime) -> Iterator[TestClient]:
    runtime = build_runtime(make_settings(migrated), clock=rt.clock)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c
    runtime.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_known_key_is_answered_without_reading_it(rt: Runtime, world: World) -> None:
    token = world.tokens["gxj"]
    with rt.transaction() as s:
        authenticate(session=s, token=token, now=rt.now())
    with sent_statements(rt.db) as sent, rt.transaction() as s:
        who = authenticate(session=s, token=token, now=rt.now())
    assert who.department == "GXJ"
    assert not any("api_keys" in statement for statement in sent), sent


def test_a_logout_is_refused_at_once_on_every_replica(
    rt: Runtime, client: TestClient, other_server: TestClient, world: World
) -> None:
    with rt.transaction() as s:
        create_user(
            session=s,
            username="li",
            password=SECRET,
            role="dispatcher",
            department=None,
            now=rt.now(),
        )
    r = client.post("/api/v1/auth/login", json={"username": "li", "password": SECRET})
    token = r.json()["token"]
    assert other_server.get(ME, headers=bearer(token)).status_code == 200  # cached there
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code in (200, 204)
    for server in (other_server, client):
        assert_problem(server.get(ME, headers=bearer(token)), 401, "log in again")


def test_a_cached_session_still_expires(
    rt: Runtime, clock: FrozenClock, client: TestClient, world: World
) -> None:
    with rt.transaction() as s:
        create_user(
            session=s,
            username="li",
            password=SECRET,
            role="dispatcher",
            department=None,
            now=rt.now(),
        )
    token = client.post("/api/v1/auth/login", json={"username": "li", "password": SECRET}).json()[
        "token"
    ]
    assert client.get(ME, headers=bearer(token)).status_code == 200
    clock.advance(timedelta(hours=rt.settings.auth.session_hours, seconds=1))
    assert_problem(client.get(ME, headers=bearer(token)), 401, "expired")
