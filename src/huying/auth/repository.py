"""Authentication queries: API keys, staff users and their sessions, and the failed logins that
throttling counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, column, delete, select, table
from sqlalchemy.orm import Session

from huying.auth.models import ApiKey, LoginFailure, StaffSession, User
from huying.roles import ADMIN

# --- keys and users ---------------------------------------------------------------

# The table the keys' and users' `department_code` refers to (a foreign key by name, as in
# auth.models): named here rather than imported from huying.directory, whose routers are
# gated by auth, so that auth does not import directory back.
_departments = table("departments", column("code"))


def department_known(session: Session, code: str) -> bool:
    found = session.scalar(select(_departments.c.code).where(_departments.c.code == code))
    return found is not None


def key_by_hash(session: Session, digest: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.token_hash == digest))


def add_key(session: Session, key: ApiKey) -> None:
    session.add(key)
    session.flush()


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def add_user(session: Session, user: User) -> None:
    session.add(user)
    session.flush()


def users(
    session: Session,
    *,
    role: str | None = None,
    department: str | None = None,
    active: bool | None = None,
) -> Sequence[User]:
    """The staff users that match every filter given, by username."""
    q = select(User).order_by(User.username)
    if role is not None:
        q = q.where(User.role == role)
    if department is not None:
        q = q.where(User.department_code == department)
    if active is not None:
        q = q.where(User.active.is_(active))
    return session.scalars(q).all()


def user_for_update(session: Session, username: str) -> User | None:
    """The user, locked until the transaction ends (PostgreSQL): two admins changing the same
    user apply one change after the other."""
    return session.scalar(select(User).where(User.username == username).with_for_update())


def active_admin_ids(session: Session) -> Sequence[int]:
    """The active admins, locked until the transaction ends (PostgreSQL): two admins demoting
    each other at once cannot both see the other one still there."""
    return session.scalars(
        select(User.id)
        .where(User.role == ADMIN, User.active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()


def keys(session: Session) -> Sequence[ApiKey]:
    """Every API key, revoked ones too, oldest first."""
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def key_for_update(session: Session, key_id: int) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.id == key_id).with_for_update())


# --- staff sessions -----------------------------------------------------------------


def session_by_hash(session: Session, digest: str) -> tuple[StaffSession, User] | None:
    """The staff session with this token hash, and its user: one query."""
    row = session.execute(
        select(StaffSession, User)
        .join(User, User.id == StaffSession.user_id)
        .where(StaffSession.token_hash == digest)
    ).first()
    return None if row is None else (row[0], row[1])


def add_session(session: Session, staff_session: StaffSession) -> None:
    """Added, not flushed: the next statement or the commit writes it."""
    session.add(staff_session)


def delete_session(session: Session, digest: str) -> None:
    session.execute(delete(StaffSession).where(StaffSession.token_hash == digest))


def delete_sessions_of(session: Session, user_id: int) -> None:
    """End every console session of the user."""
    session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


def prune_sessions(session: Session, *, now: datetime) -> None:
    """Delete the sessions that have expired."""
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))


# --- failed logins ------------------------------------------------------------------


def add_failure(session: Session, *, username: str, address: str, at: datetime) -> int:
    """Record one failed login; returns its id."""
    row = LoginFailure(username=username, address=address, at=at)
    session.add(row)
    session.flush()
    return row.id


def failure_times(
    session: Session,
    *,
    username: str,
    address: str,
    since: datetime,
    excluding: int | None = None,
) -> tuple[Sequence[datetime], Sequence[datetime]]:
    """The times of the failures after `since` (but the one `excluding` names), oldest first:
    for the username, and from the address. Each query is answered by its (column, at) index."""

    def times(where: ColumnElement[bool]) -> Sequence[datetime]:
        query = select(LoginFailure.at).where(where, LoginFailure.at > since)
        if excluding is not None:
            query = query.where(LoginFailure.id != excluding)
        return session.scalars(query.order_by(LoginFailure.at)).all()

    return times(LoginFailure.username == username), times(LoginFailure.address == address)


def delete_failure(session: Session, failure_id: int) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.id == failure_id))


def forgive(session: Session, *, username: str, address: str) -> None:
    """Forget the failures of this username from this address (after it logged in there)."""
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.username == username, LoginFailure.address == address
        )
    )


def prune_failures(session: Session, *, before: datetime) -> None:
    """Delete the failures that no window can count any more."""
    session.execute(delete(LoginFailure).where(LoginFailure.at <= before))
