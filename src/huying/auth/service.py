"""Who is calling: API keys and staff sessions (stored as SHA-256 of 256-bit random tokens),
staff passwords (argon2id). No secret is logged or stored in the clear.

Logins are throttled: after `auth.max_failures` failed logins for a username, or from a client
address, within `auth.failure_window`, `login` refuses with TooManyRequests (429) until enough
of them have left the window, even with the right password, and without computing a hash. The
failures are rows in the database, so every replica counts the same ones. The API and the
console both log in through `login`, the one place this is enforced.

The admin's writes to users and keys (the API, the console and the CLI all call the functions
here) are refused with an `InvalidInput`/`Conflict` that names the `field` and the `rule`
broken, so that the console can say it in Chinese under the field, and each write appends
its audit entry in the caller's transaction. No password, hash or token reaches the log.
A disabled user or a revoked key is refused on its very next call, on every replica:
`authenticate` answers from a cache of credentials only while their generation in the
database is the one it was filled at (`huying.cache`), and every write here moves it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from huying import cache
from huying.audit import service as audit
from huying.auth import repository
from huying.auth.models import ApiKey, StaffSession, User
from huying.auth.schemas import KeyOut, UserOut, UserPatch
from huying.durations import parse_duration
from huying.errors import (
    Conflict,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    TooManyRequests,
    UnknownReference,
)
from huying.roles import ADMIN, DEPARTMENT, ROLES, SCOPED_BY_DEPARTMENT, SYSTEM_ROLES
from huying.runtime import Runtime
from huying.workflow.context import Actor

KEY_PREFIX = "hyk_"
SESSION_PREFIX = "hys_"
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """What an unknown user's password is checked against, hashed on first use (argon2 is
    slow on purpose: not at import time)."""
    return _hasher.hash("not a real password")


@dataclass(frozen=True, slots=True)
class Principal:
    id: str  # "key:12" or "user:zhangsan"
    role: str
    department: str | None
    name: str

    @property
    def actor(self) -> Actor:
        return Actor(id=self.id, role=self.role, department=self.department)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_role(session: Session, role: str, department: str | None) -> None:
    """A role that exists, with a department where it must or may have one: department staff
    always, a dispatcher or supervisor when bound to a subtree (a street's own command
    centre, `SCOPED_BY_DEPARTMENT`); an admin, an integration or a monitor covers everything
    and is bound to none, so a department given to one is refused, not ignored."""
    if role not in ROLES:
        raise InvalidInput(
            f"role must be one of {', '.join(ROLES)}, not {role!r}",
            field="role",
            rule="role_unknown",
        )
    if role == DEPARTMENT and not department:
        raise InvalidInput(
            "the department role needs a department code",
            field="department",
            rule="department_needed",
        )
    if department and role not in SCOPED_BY_DEPARTMENT:
        bound = ", ".join(SCOPED_BY_DEPARTMENT)
        raise InvalidInput(
            f"the {role} role is bound to no department (only {bound} may be); "
            "leave out the department",
            field="department",
            rule="department_not_bound",
        )
    if department and not repository.department_known(session, department):
        raise UnknownReference(
            f"unknown department {department!r}",
            kind="department",
            codes=[department],
            field="department",
        )


def _check_staff_role(session: Session, role: str, department: str | None) -> None:
    """A role for people: systems get API keys, never a user with a password."""
    if role in SYSTEM_ROLES:
        raise InvalidInput(
            f"{role} is a role for systems: give them an API key, not a user",
            field="role",
            rule="role_for_systems",
        )
    _check_role(session, role, department)


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise InvalidInput(
            "password: at least 8 characters", field="password", rule="password_short"
        )


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        role=key.role,
        department=key.department_code,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        department=user.department_code,
        active=user.active,
        created_at=user.created_at,
    )


def _public(out: UserOut | KeyOut) -> dict[str, Any]:
    """What the audit log keeps of a user or key: its public fields, as JSON."""
    return out.model_dump(mode="json")


def create_key(
    *,
    session: Session,
    role: str,
    department: str | None,
    name: str | None,
    now: datetime,
    actor: str | None = None,
) -> tuple[ApiKey, str]:
    """A new API key; the token is returned once and only its hash is kept. An admin's write
    names its `actor` and is audited ("key.create"); the demo's set-up names none."""
    _check_role(session, role, department)
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name or f"{role} key",
        prefix=token[:10],
        token_hash=token_hash(token),
        role=role,
        department_code=department,
        created_at=now,
    )
    repository.add_key(session, key)
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action="key.create",
            target_type="key",
            target_id=key.id,
            before=None,
            after=_public(key_out(key)),
            now=now,
        )
    return key, token


def keys(*, session: Session) -> Sequence[ApiKey]:
    return repository.keys(session)


def revoke_key(*, session: Session, key_id: int, actor: str, now: datetime) -> ApiKey:
    """Revoke a key: it is refused from its very next call. Revoking a revoked key changes
    nothing (it keeps its first `revoked_at`, the log no second entry). A key cannot revoke
    itself: the caller would lock itself out mid-call, with nothing said."""
    key = repository.key_for_update(session, key_id)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    if actor == f"key:{key.id}":
        raise Conflict(
            "a key cannot revoke itself; revoke it with another admin key, the console or "
            "`huying keys revoke`",
            field="key",
            rule="self_revoke",
        )
    if key.revoked_at is not None:
        return key
    before = _public(key_out(key))
    key.revoked_at = now
    audit.record(
        session,
        actor=actor,
        action="key.revoke",
        target_type="key",
        target_id=key.id,
        before=before,
        after=_public(key_out(key)),
        now=now,
    )
    return key


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    department: str | None,
    now: datetime,
    display_name: str = "",
    actor: str | None = None,
) -> User:
    """A new staff user. An admin's write names its `actor` and is audited ("user.create");
    the demo's set-up names none."""
    if (
        not username
        or len(username) > 64
        or not username.replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput(
            "username: 1 to 64 letters, digits, '.' or '_'",
            field="username",
            rule="username_format",
        )
    _check_staff_role(session, role, department)
    _check_password(password)
    if repository.user_by_username(session, username) is not None:
        raise Conflict(f"user {username!r} already exists", field="username", rule="username_taken")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=_hasher.hash(password),
        role=role,
        department_code=department,
        active=True,
        created_at=now,
    )
    repository.add_user(session, user)
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action="user.create",
            target_type="user",
            target_id=user.username,
            before=None,
            after=_public(user_out(user)),
            now=now,
        )
    return user


def users(
    *,
    session: Session,
    role: str | None = None,
    department: str | None = None,
    active: bool | None = None,
) -> Sequence[User]:
    return repository.users(session, role=role, department=department, active=active)


def update_user(
    *, session: Session, username: str, changes: UserPatch, actor: str, now: datetime
) -> User:
    """Change a user as `changes` says, checked as a creation is, with one audit entry per
    kind of change: "user.update" (name, role, department), "user.disable"/"user.enable",
    "user.password" (that it was reset; never the password or its hash).

    Disabling a user or resetting their password ends their console sessions. An admin
    cannot disable or demote themselves, and nobody can disable or demote the last active
    admin (409): the console would be left with nobody to run it.
    """
    user = repository.user_for_update(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    given = changes.model_fields_set
    role = changes.role if changes.role is not None else user.role
    department = changes.department if "department" in given else user.department_code
    active = changes.active if changes.active is not None else user.active
    if changes.role is not None or "department" in given:
        _check_staff_role(session, role, department)
    if changes.password is not None:
        _check_password(changes.password)
    _check_admins_remain(session, user, actor=actor, role=role, active=active)

    before = _public(user_out(user))
    user.role, user.department_code = role, department
    if changes.display_name is not None:
        user.display_name = changes.display_name
    updated = _public(user_out(user))
    _record_user(session, actor, "user.update", user, before, updated, now)

    if active != user.active:
        user.active = active
        if not active:
            repository.delete_sessions_of(session, user.id)
        verb = "user.enable" if active else "user.disable"
        _record_user(session, actor, verb, user, updated, _public(user_out(user)), now)

    if changes.password is not None:
        user.password_hash = _hasher.hash(changes.password)
        repository.delete_sessions_of(session, user.id)
        after = _public(user_out(user))
        _record_user(session, actor, "user.password", user, after, after | PASSWORD_RESET, now)
    session.flush()
    return user


# What "user.password" records after the reset: that it happened, and nothing of the password.
PASSWORD_RESET = {"password_reset": True}


def _check_admins_remain(
    session: Session, user: User, *, actor: str, role: str, active: bool
) -> None:
    if user.role != ADMIN or not user.active or (role == ADMIN and active):
        return  # not an active admin losing the role or being disabled
    losing = "disable" if not active else "demote"
    if actor == f"user:{user.username}":
        raise Conflict(
            f"an admin cannot {losing} themselves; another admin must",
            field="active" if not active else "role",
            rule=f"self_{losing}",
        )
    others = set(repository.active_admin_ids(session)) - {user.id}
    if not others:
        raise Conflict(
            f"{user.username} is the last active admin: make another user an admin first",
            field="active" if not active else "role",
            rule="last_admin",
        )


def _record_user(
    session: Session,
    actor: str,
    action: str,
    user: User,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="user",
        target_id=user.username,
        before=before,
        after=after,
        now=now,
    )


def user_by_username(*, session: Session, username: str) -> User | None:
    return repository.user_by_username(session, username)


def login(
    *, rt: Runtime, username: str, password: str, address: str | None
) -> tuple[str, User, datetime]:
    """A new session for a staff user's right password, or NotAuthenticated; TooManyRequests
    while the username or the client `address` is throttled.

    Each attempt is first recorded as a failure and committed, and only then counted again and
    checked: attempts racing on several replicas see each other's rows, so no more than
    `auth.max_failures` of them reach the password hash within a window. A success removes its
    own row and forgives the failures of that username from that address: it proves that
    whoever is there knows the password, not that the guesses from elsewhere were the user's.
    The failures of other usernames from that address stay counted.
    """
    now = rt.now()
    username, address = username[:64], (address or "unknown")[:64]
    limit = rt.settings.auth.max_failures
    window = timedelta(seconds=parse_duration(rt.settings.auth.failure_window).seconds)
    with rt.transaction() as s:
        wait = _throttled_for(s, username, address, now=now, limit=limit, window=window)
        if wait is not None:
            raise _too_many(wait)  # nothing written, no hash computed
        repository.prune_failures(s, before=now - window)
        attempt = repository.add_failure(s, username=username, address=address, at=now)
    user: User | None = None
    with rt.transaction() as s:
        wait = _throttled_for(
            s, username, address, now=now, limit=limit, window=window, excluding=attempt
        )
        if wait is not None:
            repository.delete_failure(s, attempt)  # refused, not failed: it does not count
        else:
            user = repository.user_by_username(s, username)
    if wait is not None:
        raise _too_many(wait)
    # Outside any transaction: argon2 takes tens of milliseconds and needs no connection.
    # An unknown user is checked against a dummy hash, so it takes as long as a known one.
    matches = _password_matches(user.password_hash if user else _dummy_hash(), password)
    if user is None or not user.active or not matches:
        raise NotAuthenticated("wrong username or password")  # the attempt stays a failure
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(hours=rt.settings.auth.session_hours)
    with rt.transaction() as s:
        repository.delete_failure(s, attempt)
        repository.forgive(s, username=username, address=address)
        repository.add_session(
            s,
            StaffSession(
                token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=expires
            ),
        )
        repository.prune_sessions(s, now=now)
    return token, user, expires


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _throttled_for(
    session: Session,
    username: str,
    address: str,
    *,
    now: datetime,
    limit: int,
    window: timedelta,
    excluding: int | None = None,
) -> float | None:
    """Seconds until both the username and the address have fewer than `limit` failures in
    the window; None when they have already."""
    by_user, by_address = repository.failure_times(
        session, username=username, address=address, since=now - window, excluding=excluding
    )
    waits = [
        w
        for w in (_wait(by_user, limit, window, now), _wait(by_address, limit, window, now))
        if w is not None
    ]
    return max(waits) if waits else None


def _wait(times: Sequence[datetime], limit: int, window: timedelta, now: datetime) -> float | None:
    """How long until fewer than `limit` of these failures (oldest first) are in the window:
    until the one that leaves the last `limit - 1` behind has left it."""
    if len(times) < limit:
        return None
    return (times[len(times) - limit] + window - now).total_seconds()


def _too_many(seconds: float) -> TooManyRequests:
    retry_after = max(1, math.ceil(seconds))
    return TooManyRequests(
        "too many failed logins for this username or from this address; "
        f"try again in {retry_after} seconds",
        retry_after=retry_after,
    )


def logout(*, session: Session, token: str) -> None:
    repository.delete_session(session, token_hash(token))


def user_principal(user: User) -> Principal:
    return Principal(f"user:{user.username}", user.role, user.department_code, user.display_name)


def authenticate(*, session: Session, token: str, now: datetime) -> Principal:
    """The caller of a token, or NotAuthenticated. Answered from this process's cache of
    credentials when its generation is the one this transaction reads (`huying.cache`: every
    write to keys, users or staff sessions moves it, so a revoked key or a disabled user is
    refused on its very next call on every replica); else read from the database."""
    digest = token_hash(token)
    known = cache.entries(session, cache.AUTH)
    hit = known.get(digest) if known is not None else None
    if hit is None:
        hit = _stored_credentials(session, token, digest)
        if known is not None:
            known[digest] = hit
    who, expires_at = hit
    if expires_at is not None and expires_at <= now:
        raise NotAuthenticated("the session has expired; log in again")
    return who


def _stored_credentials(
    session: Session, token: str, digest: str
) -> tuple[Principal, datetime | None]:
    """The principal of a token as stored, and when it expires (a staff session's end; None
    for an API key)."""
    if token.startswith(KEY_PREFIX):
        key = repository.key_by_hash(session, digest)
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("unknown or revoked API key")
        return Principal(f"key:{key.id}", key.role, key.department_code, key.name), None
    if token.startswith(SESSION_PREFIX):
        row = repository.session_by_hash(session, digest)
        if row is None or not row[1].active:
            raise NotAuthenticated("the session has expired; log in again")
        return user_principal(row[1]), row[0].expires_at
    raise NotAuthenticated("unknown token")


def cached_principal(engine: Engine, token: str, now: datetime) -> tuple[Principal, int] | None:
    """The caller of a token as this process last knew it, with the generation of credentials
    that was true at, without asking the database; None when not known. Whoever relies on it
    must confirm the generation in its own transaction (`confirmed`) before it acts."""
    latest = cache.peek(engine, cache.AUTH)
    if latest is None:
        return None
    generation, known = latest
    hit = known.get(token_hash(token))
    if hit is None or (hit[1] is not None and hit[1] <= now):
        return None
    return hit[0], generation


def confirmed(*, session: Session, generation: int) -> bool:
    """Whether the credentials are still at `generation` in this transaction: nothing about
    keys, users or sessions has been written since, on any replica."""
    return cache.current(session)[0].get(cache.AUTH) == generation
