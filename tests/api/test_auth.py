"""Authentication: keys, passwords and session tokens are stored hashed; login, logout and
`me`; sessions expire after `auth.session_hours` on the injected clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.auth.models import ApiKey, StaffSession, User
from huying.auth.service import create_user
from huying.clock import FrozenClock
from huying.db import Base
from huying.runtime import Runtime
from tests.api.conftest import API
from tests.api.support import assert_problem, nothing_written, row_counts
from tests.conftest import World, submit_body

PASSWORD = "川流不息-Chuan-2026"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


@pytest.fixture
def staff(rt: Runtime, world: World) -> str:
    with rt.transaction() as s:
        create_user(
            session=s,
            username="zhang.san",
            password=PASSWORD,
            role="department",
            department="GXJ",
            now=rt.now(),
            display_name="张三",
        )
    return "zhang.san"


def _login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN, json={"username": username, "password": password})


def _all_cells(rt: Runtime) -> list[str]:
    """Every value of every row of every table, as text."""
    cells: list[str] = []
    with rt.db.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                cells.extend(str(v) for v in row)
    return cells


@contextmanager
def only_a_failure_written(rt: Runtime) -> Iterator[None]:
    """Assert that the block adds one row to login_failures (for throttling) and nothing else."""
    before = row_counts(rt)
    yield
    after = row_counts(rt)
    before["login_failures"] += 1
    assert after == before


# --- stored hashed -------------------------------------------------------------------


def test_api_keys_are_stored_hashed(rt: Runtime, world: World) -> None:
    cells = _all_cells(rt)
    assert len(world.tokens) == 7
    for name, token in world.tokens.items():
        assert token.startswith("hyk_")
        secret = token[10:]  # the first 10 characters are kept as a visible prefix
        assert len(secret) >= 32, name
        leaks = [c for c in cells if token in c or secret in c]
        assert not leaks, f"the {name} key is stored in the clear: {leaks}"
    with rt.transaction() as s:
        keys = s.scalars(select(ApiKey)).all()
        assert {k.token_hash for k in keys}.isdisjoint(world.tokens.values())
        assert all(len(k.prefix) <= 10 for k in keys)


def test_password_and_session_token_are_stored_hashed(
    client: TestClient, rt: Runtime, staff: str
) -> None:
    r = _login(client, staff)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    cells = _all_cells(rt)
    assert not [c for c in cells if PASSWORD in c]
    assert not [c for c in cells if token in c or token[10:] in c]
    with rt.transaction() as s:
        user = s.scalars(select(User)).one()
        assert user.password_hash.startswith("$argon2id$")
        session_row = s.scalars(select(StaffSession)).one()
        assert session_row.token_hash != token


def test_no_secret_in_the_logs(
    client: TestClient, world: World, staff: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _login(client, staff).json()["token"]
    client.get(ME, headers={"Authorization": f"Bearer {token}"})
    client.post(API, json=submit_body(), headers=world.h("integration"))
    client.get(ME, headers={"Authorization": "Bearer hyk_wrong-key-123456"})
    _login(client, staff, "wrong password")
    text = caplog.text
    for secret in (
        token,
        PASSWORD,
        "wrong password",
        "hyk_wrong-key-123456",
        *world.tokens.values(),
    ):
        assert secret not in text


# --- login, me, logout ---------------------------------------------------------------


def test_login_me_logout(client: TestClient, rt: Runtime, staff: str) -> None:
    r = _login(client, staff)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"].startswith("hys_")
    assert body["token_type"] == "bearer"
    assert (body["username"], body["role"], body["department"]) == (
        "zhang.san",
        "department",
        "GXJ",
    )
    bearer = {"Authorization": f"Bearer {body['token']}"}

    me = client.get(ME, headers=bearer)
    assert me.status_code == 200, me.text
    assert me.json() == {
        "id": "user:zhang.san",
        "role": "department",
        "department": "GXJ",
        "name": "张三",
    }
    assert client.get(API, headers=bearer).status_code == 200

    out = client.post("/api/v1/auth/logout", headers=bearer)
    assert out.status_code == 204, out.text
    assert_problem(client.get(ME, headers=bearer), 401)
    with rt.transaction() as s:
        assert s.scalars(select(StaffSession)).all() == []


def test_session_cookie_is_accepted(client: TestClient, staff: str) -> None:
    token = _login(client, staff).json()["token"]
    client.cookies.set("huying_session", token)
    try:
        me = client.get(ME)
    finally:
        client.cookies.clear()
    assert me.status_code == 200, me.text
    assert me.json()["id"] == "user:zhang.san"


def test_api_key_me(client: TestClient, world: World) -> None:
    me = client.get(ME, headers=world.h("gxj"))
    assert me.status_code == 200, me.text
    assert (me.json()["role"], me.json()["department"]) == ("department", "GXJ")
    assert me.json()["id"].startswith("key:")


@pytest.mark.parametrize(
    ("username", "password"),
    [("zhang.san", "not the password"), ("li.si", PASSWORD), ("ZHANG.SAN", PASSWORD)],
)
def test_wrong_credentials_are_401_alike_and_write_only_the_failure(
    client: TestClient, rt: Runtime, staff: str, username: str, password: str
) -> None:
    with only_a_failure_written(rt):
        r = _login(client, username, password)
        problem = assert_problem(r, 401, "wrong username or password")
    assert "token" not in problem


def test_inactive_user_cannot_log_in_and_loses_its_sessions(
    client: TestClient, rt: Runtime, staff: str
) -> None:
    token = _login(client, staff).json()["token"]
    with rt.transaction() as s:
        s.scalars(select(User)).one().active = False
    with only_a_failure_written(rt):
        assert_problem(_login(client, staff), 401)
    assert_problem(client.get(ME, headers={"Authorization": f"Bearer {token}"}), 401)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"username": "zhang.san"}, "password"),
        ({"password": PASSWORD}, "username"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "zhang.san", "password": PASSWORD, "remember": True}, "remember"),
        ({"username": 1, "password": PASSWORD}, "username"),
    ],
)
def test_bad_login_body_is_422(
    client: TestClient, rt: Runtime, staff: str, body: dict[str, Any], fragment: str
) -> None:
    with nothing_written(rt):
        assert_problem(client.post(LOGIN, json=body), 422, fragment)


# --- expiry ----------------------------------------------------------------------------


def test_session_expires_after_session_hours(
    client: TestClient, rt: Runtime, clock: FrozenClock, staff: str
) -> None:
    hours = rt.settings.auth.session_hours
    r = _login(client, staff)
    expires_at = r.json()["expires_at"]
    bearer = {"Authorization": f"Bearer {r.json()['token']}"}

    clock.advance(timedelta(hours=hours) - timedelta(seconds=1))
    assert client.get(ME, headers=bearer).status_code == 200

    clock.advance(timedelta(seconds=1))
    assert_problem(client.get(ME, headers=bearer), 401, "expired")
    with nothing_written(rt):
        assert_problem(client.post(API, json=submit_body(), headers=bearer), 401, "expired")

    assert datetime.fromisoformat(expires_at) == clock.now()


def test_expired_sessions_are_purged_on_the_next_login(
    client: TestClient, rt: Runtime, clock: FrozenClock, staff: str
) -> None:
    _login(client, staff)
    clock.advance(timedelta(hours=rt.settings.auth.session_hours, seconds=1))
    fresh = _login(client, staff)
    assert fresh.status_code == 200, fresh.text
    with rt.transaction() as s:
        assert len(s.scalars(select(StaffSession)).all()) == 1


def test_api_keys_do_not_expire(client: TestClient, world: World, clock: FrozenClock) -> None:
    clock.advance(timedelta(days=400))
    assert client.get(ME, headers=world.h("integration")).status_code == 200
