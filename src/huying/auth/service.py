"""Who is calling: API keys and staff sessions (stored as SHA-256 of 256-bit random tokens),
staff passwords (argon2id). No secret is logged or stored in the clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from huying.auth.models import ApiKey, StaffSession, User
from huying.directory import repository as directory
from huying.errors import Conflict, InvalidInput, NotAuthenticated
from huying.workflow.context import Actor

ROLES = ("admin", "dispatcher", "supervisor", "department", "integration")
KEY_PREFIX = "hyk_"
SESSION_PREFIX = "hys_"
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")


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
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if role == "department":
        if not department:
            raise InvalidInput("the department role needs a department code")
        if directory.department(session, department) is None:
            raise InvalidInput(f"unknown department {department!r}")
    elif department:
        raise InvalidInput(f"only the department role is bound to a department, not {role!r}")


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
    session.add(key)
    session.flush()
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
    if role == "integration":
        raise InvalidInput("integration is a role for systems: give them an API key, not a user")
    _check_role(session, role, department)
    if (
        not username
        or len(username) > 64
        or not username.replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput("username: 1 to 64 letters, digits, '.' or '_'")
    if len(password) < 8:
        raise InvalidInput("password: at least 8 characters")
    if session.scalar(select(User).where(User.username == username)) is not None:
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
    session.add(user)
    session.flush()
    return user


def login(
    *, session: Session, username: str, password: str, now: datetime, hours: float
) -> tuple[str, User, datetime]:
    user = session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise NotAuthenticated("wrong username or password") from None
    if user is None or not user.active:
        raise NotAuthenticated("wrong username or password")
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(hours=hours)
    session.add(
        StaffSession(
            token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=expires
        )
    )
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    return token, user, expires


def logout(*, session: Session, token: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def user_principal(user: User) -> Principal:
    return Principal(f"user:{user.username}", user.role, user.department_code, user.display_name)


def authenticate(*, session: Session, token: str, now: datetime) -> Principal:
    digest = token_hash(token)
    if token.startswith(KEY_PREFIX):
        key = session.scalar(select(ApiKey).where(ApiKey.token_hash == digest))
        if key is None or key.revoked_at is not None:
            raise NotAuthenticated("unknown or revoked API key")
        return Principal(f"key:{key.id}", key.role, key.department_code, key.name)
    if token.startswith(SESSION_PREFIX):
        row = session.execute(
            select(StaffSession, User)
            .join(User, User.id == StaffSession.user_id)
            .where(StaffSession.token_hash == digest)
        ).first()
        if row is None or row[0].expires_at <= now or not row[1].active:
            raise NotAuthenticated("the session has expired; log in again")
        return user_principal(row[1])
    raise NotAuthenticated("unknown token")
