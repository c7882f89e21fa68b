"""The admin's users and API keys through the API: the rules of a creation hold for a change,
no admin locks themselves or the last admin out, a disabled user or a revoked key is refused
on its very next call on every replica, and every write leaves one audit entry that holds no
password, hash or token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.app import create_app
from huying.audit.models import AuditEntry
from huying.auth.models import ApiKey, StaffSession, User
from huying.runtime import Runtime, build_runtime
from tests.api.support import assert_problem, nothing_written
from tests.conftest import World, make_settings

USERS = "/api/v1/users"
KEYS = "/api/v1/keys"
LOGIN = "/api/v1/auth/login"
SECRET = "Zhang-San-2026!"


def new_user(client: TestClient, world: World, **overrides: Any) -> Any:
    body = {
        "username": "zhang.san",
        "display_name": "张三",
        "password": SECRET,
        "role": "dispatcher",
    } | overrides
    r = client.post(USERS, json=body, headers=world.h("admin"))
    assert r.status_code == 201, r.text
    return r.json()


def log_in(client: TestClient, username: str, password: str = SECRET) -> str:
    r = client.post(LOGIN, json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def entries(rt: Runtime) -> list[AuditEntry]:
    """The log's entries about users and keys, oldest first (loading the directory of the
    world writes entries of its own)."""
    with rt.transaction() as s:
        query = select(AuditEntry).where(AuditEntry.target_type.in_(("user", "key")))
        rows = list(s.scalars(query.order_by(AuditEntry.id)))
        s.expunge_all()
        return rows


def patch(client: TestClient, headers: dict[str, str], username: str, **body: Any) -> Any:
    return client.patch(f"{USERS}/{username}", json=body, headers=headers)


@pytest.fixture
def other_server(migrated: str, rt: Runtime) -> Iterator[TestClient]:
    """A second replica: its own runtime and app on the same database."""
    runtime = build_runtime(make_settings(migrated), clock=rt.clock)
    with TestClient(create_app(runtime), raise_server_exceptions=False) as c:
        yield c
    runtime.close()


# --- users --------------------------------------------------------------------------


def test_a_created_user_is_listed_without_any_password_or_hash(
    client: TestClient, world: World
) -> None:
    made = new_user(client, world, role="department", department="GXJ")
    assert made == {
        "username": "zhang.san",
        "display_name": "张三",
        "role": "department",
        "department": "GXJ",
        "active": True,
        "created_at": "2026-11-18T02:00:00Z",
    }
    listed = client.get(USERS, headers=world.h("admin"))
    assert listed.status_code == 200 and listed.json() == [made]
    assert "password" not in listed.text and "argon2" not in listed.text
    [entry] = entries(world.rt)
    assert (entry.actor, entry.action, entry.target_type, entry.target_id) == (
        "key:1",
        "user.create",
        "user",
        "zhang.san",
    )
    assert entry.before is None and entry.after == made


def test_the_list_filters_by_role_department_and_active(client: TestClient, world: World) -> None:
    new_user(client, world, username="a", role="department", department="GXJ")
    new_user(client, world, username="b", role="department", department="RSJ")
    new_user(client, world, username="c", role="supervisor")
    assert patch(client, world.h("admin"), "b", active=False).status_code == 200

    def names(**query: str) -> list[str]:
        r = client.get(USERS, params=query, headers=world.h("admin"))
        assert r.status_code == 200, r.text
        return [u["username"] for u in r.json()]

    assert names() == ["a", "b", "c"]
    assert names(role="department") == ["a", "b"]
    assert names(department="RSJ") == ["b"]
    assert names(active="true") == ["a", "c"]
    assert names(active="false", role="department") == ["b"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"username": "李 四"}, "username"),
        ({"password": "short"}, "at least 8"),
        ({"role": "integration"}, "API key"),
        ({"role": "wizard"}, "role must be one of"),
        ({"role": "department"}, "needs a department"),
        ({"role": "admin", "department": "GXJ"}, "bound to no department"),
        ({"role": "department", "department": "NOPE"}, "unknown department"),
    ],
)
def test_a_bad_user_is_refused_and_nothing_is_written(
    client: TestClient, world: World, body: dict[str, Any], fragment: str
) -> None:
    full = {"username": "li.si", "password": SECRET, "role": "dispatcher"} | body
    with nothing_written(world.rt):
        r = client.post(USERS, json=full, headers=world.h("admin"))
        problem = assert_problem(r, 422, fragment)
    assert problem["field"] in ("username", "password", "role", "department")


def test_a_taken_username_is_409(client: TestClient, world: World) -> None:
    new_user(client, world)
    with nothing_written(world.rt):
        r = client.post(
            USERS,
            json={"username": "zhang.san", "password": SECRET, "role": "supervisor"},
            headers=world.h("admin"),
        )
        assert assert_problem(r, 409, "already exists")["field"] == "username"


@pytest.mark.parametrize("who", ["dispatcher", "supervisor", "gxj", "integration"])
def test_only_an_admin_may_see_or_change_users_and_keys(
    client: TestClient, world: World, who: str
) -> None:
    new_user(client, world)
    with nothing_written(world.rt):
        for method, url, body in (
            ("GET", USERS, None),
            ("POST", USERS, {"username": "x", "password": SECRET, "role": "admin"}),
            ("PATCH", f"{USERS}/zhang.san", {"role": "admin"}),
            ("GET", KEYS, None),
            ("POST", KEYS, {"role": "admin"}),
            ("DELETE", f"{KEYS}/1", None),
        ):
            r = client.request(method, url, json=body, headers=world.h(who))
            assert_problem(r, 403, "may not")


def test_a_change_is_checked_like_a_creation(client: TestClient, world: World) -> None:
    new_user(client, world, role="department", department="GXJ")
    admin = world.h("admin")
    with nothing_written(world.rt):
        assert_problem(patch(client, admin, "zhang.san", role="admin"), 422, "bound to")
        assert_problem(patch(client, admin, "zhang.san", department=None), 422, "needs a dep")
        assert_problem(patch(client, admin, "zhang.san", role="monitor"), 422, "API key")
        assert_problem(patch(client, admin, "zhang.san", password="short"), 422, "at least 8")
        assert_problem(patch(client, admin, "zhang.san", department="NOPE"), 422, "unknown")
        assert_problem(patch(client, admin, "nobody", active=False), 404, "nobody")
        assert_problem(patch(client, admin, "zhang.san", colour="red"), 422)
    r = patch(client, admin, "zhang.san", role="supervisor", department=None, display_name="张三丰")
    assert r.status_code == 200, r.text
    assert (r.json()["role"], r.json()["department"], r.json()["display_name"]) == (
        "supervisor",
        None,
        "张三丰",
    )
    update = entries(world.rt)[-1]
    assert update.action == "user.update" and update.actor == "key:1"
    assert update.before is not None and update.after is not None
    assert (update.before["role"], update.after["role"]) == ("department", "supervisor")
    assert (update.before["department"], update.after["department"]) == ("GXJ", None)


def test_a_patch_that_changes_nothing_writes_no_entry(client: TestClient, world: World) -> None:
    new_user(client, world)
    count = len(entries(world.rt))
    assert patch(client, world.h("admin"), "zhang.san", role="dispatcher").status_code == 200
    assert patch(client, world.h("admin"), "zhang.san").status_code == 200
    assert len(entries(world.rt)) == count


def test_an_admin_cannot_disable_or_demote_themselves(client: TestClient, world: World) -> None:
    new_user(client, world, username="boss", role="admin")
    new_user(client, world, username="deputy", role="admin")
    me = bearer(log_in(client, "boss"))
    with nothing_written(world.rt):
        problem = assert_problem(patch(client, me, "boss", active=False), 409, "themselves")
        assert problem["field"] == "active"
        assert_problem(patch(client, me, "boss", role="supervisor"), 409, "themselves")
    # another admin may
    deputy = bearer(log_in(client, "deputy"))
    assert patch(client, deputy, "boss", role="supervisor").status_code == 200


def test_the_last_active_admin_stays(client: TestClient, world: World) -> None:
    new_user(client, world, username="boss", role="admin")
    new_user(client, world, username="deputy", role="admin")
    admin_key = world.h("admin")
    assert patch(client, admin_key, "deputy", active=False).status_code == 200
    with nothing_written(world.rt):
        r = patch(client, admin_key, "boss", active=False)
        assert assert_problem(r, 409, "last active admin")["field"] == "active"
        assert_problem(patch(client, admin_key, "boss", role="dispatcher"), 409, "last active")
    # with another admin enabled again, either may go
    assert patch(client, admin_key, "deputy", active=True).status_code == 200
    assert patch(client, admin_key, "boss", active=False).status_code == 200
    # a disabled admin is no active admin: demoting them leaves the active one alone
    assert patch(client, admin_key, "boss", role="dispatcher").status_code == 200


def test_a_disabled_user_is_refused_at_once_on_every_replica(
    client: TestClient, other_server: TestClient, world: World
) -> None:
    new_user(client, world)
    token = log_in(client, "zhang.san")
    assert other_server.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    r = patch(client, world.h("admin"), "zhang.san", active=False)
    assert r.status_code == 200 and r.json()["active"] is False
    for server in (other_server, client):
        assert_problem(server.get("/api/v1/auth/me", headers=bearer(token)), 401)
        assert_problem(server.get("/api/v1/requests", headers=bearer(token)), 401)
    with world.rt.transaction() as s:  # the sessions ended: enabling again does not revive them
        assert s.scalars(select(StaffSession)).all() == []
    assert_problem(client.post(LOGIN, json={"username": "zhang.san", "password": SECRET}), 401)
    assert patch(client, world.h("admin"), "zhang.san", active=True).status_code == 200
    assert_problem(client.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert (
        client.get("/api/v1/auth/me", headers=bearer(log_in(client, "zhang.san"))).status_code
        == 200
    )
    assert [e.action for e in entries(world.rt)] == ["user.create", "user.disable", "user.enable"]


def test_a_password_reset_ends_the_sessions_and_records_no_secret(
    client: TestClient, world: World
) -> None:
    new_user(client, world)
    old_token = log_in(client, "zhang.san")
    r = patch(client, world.h("admin"), "zhang.san", password="Another-Pass-9")
    assert r.status_code == 200, r.text
    assert_problem(client.get("/api/v1/auth/me", headers=bearer(old_token)), 401)
    assert_problem(client.post(LOGIN, json={"username": "zhang.san", "password": SECRET}), 401)
    log_in(client, "zhang.san", "Another-Pass-9")
    reset = entries(world.rt)[-1]
    assert reset.action == "user.password"
    assert reset.after is not None and reset.after["password_reset"] is True
    assert "password_reset" not in (reset.before or {})


# --- keys ---------------------------------------------------------------------------


def test_a_key_is_created_listed_and_revoked(client: TestClient, world: World) -> None:
    r = client.post(
        KEYS, json={"name": "网格系统", "role": "integration"}, headers=world.h("admin")
    )
    assert r.status_code == 201, r.text
    made = r.json()
    token = made.pop("token")
    assert token.startswith(made["prefix"]) and made["revoked_at"] is None
    assert client.get("/api/v1/auth/me", headers=bearer(token)).json()["name"] == "网格系统"
    listed = client.get(KEYS, headers=world.h("admin"))
    assert listed.status_code == 200
    assert listed.json()[-1] == made and len(listed.json()) == len(world.tokens) + 1
    assert token not in listed.text and "token" not in listed.text
    with world.rt.transaction() as s:
        digest = s.scalar(select(ApiKey.token_hash).where(ApiKey.id == made["id"]))
    assert digest is not None and digest not in listed.text

    gone = client.delete(f"{KEYS}/{made['id']}", headers=world.h("admin"))
    assert gone.status_code == 200 and gone.json()["revoked_at"] == "2026-11-18T02:00:00Z"
    assert_problem(client.get("/api/v1/auth/me", headers=bearer(token)), 401, "revoked")
    # again: the same answer, nothing more written
    with nothing_written(world.rt):
        again = client.delete(f"{KEYS}/{made['id']}", headers=world.h("admin"))
        assert again.status_code == 200 and again.json() == gone.json()
    assert [e.action for e in entries(world.rt)] == ["key.create", "key.revoke"]


def test_a_revoked_key_is_refused_at_once_on_every_replica(
    client: TestClient, other_server: TestClient, world: World
) -> None:
    gxj = world.h("gxj")
    assert other_server.get("/api/v1/requests", headers=gxj).status_code == 200
    assert client.delete(f"{KEYS}/5", headers=world.h("admin")).status_code == 200
    for server in (other_server, client):
        assert_problem(server.get("/api/v1/requests", headers=gxj), 401, "revoked")
        assert_problem(server.post("/api/v1/attachments", headers=gxj), 401, "revoked")


def test_a_key_cannot_revoke_itself_and_an_unknown_key_is_404(
    client: TestClient, world: World
) -> None:
    with nothing_written(world.rt):
        assert_problem(client.delete(f"{KEYS}/1", headers=world.h("admin")), 409, "itself")
        assert_problem(client.delete(f"{KEYS}/999", headers=world.h("admin")), 404, "999")
        assert_problem(client.delete(f"{KEYS}/0", headers=world.h("admin")), 422)
        r = client.post(KEYS, json={"role": "admin", "department": "GXJ"}, headers=world.h("admin"))
        assert_problem(r, 422, "bound to no department")
    assert client.get("/api/v1/auth/me", headers=world.h("admin")).status_code == 200


# --- the log keeps no secret --------------------------------------------------------


def test_no_audit_entry_holds_a_password_hash_or_token(client: TestClient, world: World) -> None:
    new_user(client, world, username="boss", role="admin")
    new_user(client, world)
    admin = bearer(log_in(client, "boss"))
    assert patch(client, admin, "zhang.san", password="Second-Pass-77").status_code == 200
    assert patch(client, admin, "zhang.san", role="supervisor").status_code == 200
    assert patch(client, admin, "zhang.san", active=False).status_code == 200
    made = client.post(KEYS, json={"role": "monitor", "name": "prom"}, headers=admin).json()
    assert client.delete(f"{KEYS}/{made['id']}", headers=admin).status_code == 200
    with world.rt.transaction() as s:
        hashes = list(s.scalars(select(User.password_hash))) + list(
            s.scalars(select(ApiKey.token_hash))
        )
    with world.rt.transaction() as s:
        logged = list(s.scalars(select(AuditEntry)))  # every entry, the directory's too
        s.expunge_all()
    assert {e.action for e in logged if e.target_type in ("user", "key")} == {
        "user.create",
        "user.password",
        "user.update",
        "user.disable",
        "key.create",
        "key.revoke",
    }
    text = json.dumps([[e.before, e.after] for e in logged], ensure_ascii=False)
    secrets = [SECRET, "Second-Pass-77", made["token"], *hashes]
    assert not [s for s in secrets if s in text]
    assert "argon2" not in text and '"password"' not in text and '"token' not in text
