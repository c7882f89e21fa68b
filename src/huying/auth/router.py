"""Who is calling (`/auth`), and the admin's users, API keys and audit log.

The audit log's route is served from here, not from `huying.audit`: the users' and keys'
writes record into the log, so `huying.auth` imports `huying.audit`, and `huying.audit` cannot
import the gate back (no import cycle between parts, tests/test_layers.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from huying import roles
from huying.api.deps import Rt
from huying.api.types import Instant
from huying.audit import service as audit
from huying.audit.schemas import AuditPage
from huying.auth import service
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow
from huying.auth.schemas import (
    KeyCreated,
    KeyIn,
    KeyOut,
    LoginIn,
    LoginOut,
    MeOut,
    UserIn,
    UserOut,
    UserPatch,
)

_auth = APIRouter(prefix="/auth", tags=["auth"], route_class=GatedRoute)
# Users, keys and the audit log are the admin's alone.
_users = APIRouter(tags=["users"], route_class=GatedRoute, dependencies=[allow(*roles.ADMINS)])
_keys = APIRouter(tags=["keys"], route_class=GatedRoute, dependencies=[allow(*roles.ADMINS)])
_log = APIRouter(tags=["audit"], route_class=GatedRoute, dependencies=[allow(*roles.ADMINS)])
KeyId = Annotated[int, Path(ge=1, le=2**62)]
Username = Annotated[str, Path(min_length=1, max_length=64)]


@_auth.post("/login", response_model=LoginOut)
def login(body: LoginIn, request: Request, rt: Rt) -> LoginOut:
    """Exchange a staff user's password for a session token (send it as a Bearer token).

    After `auth.max_failures` failed logins for the username or from the caller's address
    within `auth.failure_window`, further tries get 429 with `Retry-After` (seconds), even
    with the right password. The address is the connection's peer; behind a reverse proxy,
    uvicorn takes it from X-Forwarded-For only when the proxy is trusted (FORWARDED_ALLOW_IPS).
    """
    token, user, expires = service.login(
        rt=rt,
        username=body.username,
        password=body.password,
        address=request.client.host if request.client else None,
    )
    return LoginOut(
        token=token,
        expires_at=expires,
        username=user.username,
        role=user.role,
        department=user.department_code,
    )


@_auth.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(rt: Rt, auth: Auth) -> Response:
    with rt.transaction() as s:
        auth.principal(s, rt)
        service.logout(session=s, token=auth.token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@_auth.get("/me", response_model=MeOut)
def me(rt: Rt, auth: Auth) -> MeOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return MeOut(id=who.id, role=who.role, department=who.department, name=who.name)


# --- users --------------------------------------------------------------------------


@_users.get("/users", response_model=list[UserOut])
def list_users(
    rt: Rt,
    auth: Auth,
    role: Annotated[str | None, Query(max_length=32)] = None,
    department: Annotated[str | None, Query(max_length=64, description="department code")] = None,
    active: Annotated[bool | None, Query(description="true: enabled only; false: disabled")] = None,
) -> list[UserOut]:
    """The staff users, by username; never a password or its hash."""
    with rt.transaction() as s:
        auth.principal(s, rt)
        found = service.users(session=s, role=role, department=department, active=active)
        return [service.user_out(u) for u in found]


@_users.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: UserIn, rt: Rt, auth: Auth) -> UserOut:
    """A staff user with a password (admin, dispatcher, supervisor or department staff;
    systems get API keys). 409 when the username is taken."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        user = service.create_user(
            session=s,
            username=body.username,
            password=body.password,
            role=body.role,
            department=body.department,
            display_name=body.display_name,
            now=rt.now(),
            actor=who.id,
        )
        return service.user_out(user)


@_users.patch("/users/{username}", response_model=UserOut)
def update_user(username: Username, body: UserPatch, rt: Rt, auth: Auth) -> UserOut:
    """Change a user: `active: false` disables them (refused at once, sessions ended),
    `password` resets it, `role`/`department` as on creation. 409 when an admin would
    disable or demote themselves, or the last active admin."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        user = service.update_user(
            session=s, username=username, changes=body, actor=who.id, now=rt.now()
        )
        return service.user_out(user)


# --- keys ---------------------------------------------------------------------------


@_keys.get("/keys", response_model=list[KeyOut])
def list_keys(rt: Rt, auth: Auth) -> list[KeyOut]:
    """Every API key, revoked ones too, oldest first: its prefix tells it apart; never the
    token or its hash."""
    with rt.transaction() as s:
        auth.principal(s, rt)
        return [service.key_out(k) for k in service.keys(session=s)]


@_keys.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_key(body: KeyIn, rt: Rt, auth: Auth) -> KeyCreated:
    """A new API key. The response holds the token; it is never shown again."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        key, token = service.create_key(
            session=s,
            role=body.role,
            department=body.department,
            name=body.name,
            now=rt.now(),
            actor=who.id,
        )
        return KeyCreated(**service.key_out(key).model_dump(), token=token)


@_keys.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: KeyId, rt: Rt, auth: Auth) -> KeyOut:
    """Revoke: the key is refused from its next call, on every server. Revoking it again
    changes nothing and answers the same. A key cannot revoke itself (409)."""
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        key = service.revoke_key(session=s, key_id=key_id, actor=who.id, now=rt.now())
        return service.key_out(key)


# --- the audit log --------------------------------------------------------------------


@_log.get("/audit", response_model=AuditPage)
def audit_log(
    rt: Rt,
    auth: Auth,
    actor: Annotated[
        str | None, Query(max_length=100, description="user:<name>, key:<id>, cli")
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=64, description="exact, or a prefix ending in '.': `user.`"),
    ] = None,
    target_type: Annotated[str | None, Query(max_length=32)] = None,
    target_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[Instant | None, Query(description="at or after")] = None,
    until: Annotated[Instant | None, Query(description="before")] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """Every admin write (directory, users, keys, webhooks, redeliveries, imports), newest
    first, with what the target was before and after. Append-only; it holds no secret."""
    after = audit.after_id(cursor)
    filters = audit.Filters(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    with rt.transaction() as s:
        auth.principal(s, rt)
        rows, next_cursor = audit.entries(session=s, filters=filters, after=after, limit=limit)
        return AuditPage(items=[audit.entry_out(e) for e in rows], next_cursor=next_cursor)


# Each included in the app on its own (`huying.app`): FastAPI matches every level of
# included routers again, so none includes another.
routers = (_auth, _users, _keys, _log)
