"""Who is calling: API keys and staff sessions (stored as SHA-256 of 256-bit random tokens),
staff passwords (argon2id). No secret is logged or stored in the clear.

Logins are throttled: after `auth.max_failures` failed logins for a username, or from a client
address, within `auth.failure_window`, `login` refuses with TooManyRequests (429) until enough
of them have left the window, even with the right password, and without computing a hash. The
failures are rows in the database, so every replica counts the same ones. The API and the
console both log in through `login`, the one place this is enforced.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from huying.auth import repository
from huying.auth.models import ApiKey, StaffSession, User
from huying.durations import parse_duration
from huying.errors import Conflict, InvalidInput, NotAuthenticated, TooManyRequests
from huying.roles import DEPARTMENT, ROLES, SCOPED_BY_DEPARTMENT, SYSTEM_ROLES
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
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == DEPARTMENT and not department:
        raise InvalidInput("the department role needs a department code")
    if department and role not in SCOPED_BY_DEPARTMENT:
        bound = ", ".join(SCOPED_BY_DEPARTMENT)
        raise InvalidInput(
            f"the {role} role is bound to no department (only {bound} may be); "
            "leave out the department"
        )
    if department and not repository.department_known(session, department):
        raise InvalidInput(f"unknown department {department!r}")


def create_key(
    *, session: Session, role: str, department: str | None, name: str | None, now: datetime
) -> tuple[ApiKey, str]:
    """A new API key; the token is returned once and only its hash is kept."""
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
    return key, token


def create_user(
    *,
    session: Session,
    username: str,
    password: str,
    role: str,
    department: str | None,
    now: datetime,
    display_name: str = "",
) -> User:
    if role in SYSTEM_ROLES:
        raise InvalidInput(f"{role} is a role for systems: give them an API key, not a user")
    _check_role(session, role, department)
    if (
        not username
        or len(username) > 64
        or not username.replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput("username: 1 to 64 letters, digits, '.' or '_'")
    if len(password) < 8:
        raise InvalidInput("password: at least 8 characters")
    if repository.user_by_username(session, username) is not None:
        raise Conflict(f"user {username!r} already exists")
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
    return user


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
    digest = token_hash(token)
    if token.startswith(KEY_PREFIX):
        key = repository.key_by_hash(session, digest)
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("unknown or revoked API key")
        return Principal(f"key:{key.id}", key.role, key.department_code, key.name)
    if token.startswith(SESSION_PREFIX):
        row = repository.session_by_hash(session, digest)
        if row is None or row[0].expires_at <= now or not row[1].active:
            raise NotAuthenticated("the session has expired; log in again")
        return user_principal(row[1])
    raise NotAuthenticated("unknown token")
