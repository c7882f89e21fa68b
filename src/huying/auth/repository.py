"""Authentication queries: staff users by name and the failed logins that throttling counts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from huying.auth.models import LoginFailure, User


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


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
