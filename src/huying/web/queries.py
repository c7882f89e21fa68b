"""The console's read-only queries: lists ordered by the nearest deadline, change markers for
polling, names for the timeline. Department scope always comes from
`huying.requests.repository.scoped`, the one place it is decided."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ScalarSelect, Select, func, or_, select
from sqlalchemy.orm import Session

from huying.auth.models import ApiKey, User
from huying.deadlines.models import Deadline
from huying.requests.models import Request, TimelineEntry
from huying.requests.repository import scoped

LIST_LIMIT = 200


@dataclass(frozen=True)
class ListFilter:
    """Which requests a list shows; `scope` is the department of a department clerk."""

    states: Sequence[str]
    scope: str | None = None
    category: str | None = None
    department: str | None = None
    watch: bool = False  # only overdue or escalated ones
    extension: bool = False  # only those with an extension request pending

    def query(self) -> Select[Request]:
        q = scoped(select(Request), self.scope).where(Request.state.in_(self.states))
        if self.category:
            q = q.where(Request.category_code == self.category)
        if self.department:
            q = q.where(Request.lead_department_code == self.department)
        if self.watch:
            q = q.where(or_(Request.overdue.is_(True), Request.escalation_level > 0))
        if self.extension:
            q = q.where(Request.pending_extension.is_not(None))
        return q


def _nearest_due() -> ScalarSelect[datetime]:
    """The earliest due instant among the request's running or missed deadlines."""
    return (
        select(func.min(Deadline.due_at))
        .where(
            Deadline.request_id == Request.id,
            Deadline.completed_at.is_(None),
            Deadline.status != "paused",
        )
        .correlate(Request)
        .scalar_subquery()
    )


def by_deadline(
    session: Session, where: ListFilter, *, limit: int = LIST_LIMIT
) -> tuple[Sequence[Request], bool]:
    """The nearest deadline first; requests whose clock is paused last. Returns whether more
    than `limit` match."""
    due = _nearest_due()
    rows = session.scalars(
        where.query().order_by(due.is_(None), due, Request.id).limit(limit + 1)
    ).all()
    return rows[:limit], len(rows) > limit


def by_level(
    session: Session, where: ListFilter, *, limit: int = LIST_LIMIT
) -> tuple[Sequence[Request], bool]:
    """The highest escalation level first, then the nearest deadline."""
    due = _nearest_due()
    rows = session.scalars(
        where.query()
        .order_by(Request.escalation_level.desc(), due.is_(None), due, Request.id)
        .limit(limit + 1)
    ).all()
    return rows[:limit], len(rows) > limit


def count(session: Session, where: ListFilter) -> int:
    return int(session.scalar(where.query().with_only_columns(func.count(Request.id))) or 0)


def marker(session: Session, *wheres: ListFilter, salt: str = "") -> str:
    """A value that changes whenever a request enters, leaves or changes in these lists:
    every write bumps a request's version, so (count, sum of versions, sum of ids) moves."""
    parts = [salt]
    for where in wheres:
        row = session.execute(
            where.query().with_only_columns(
                func.count(Request.id),
                func.coalesce(func.sum(Request.version), 0),
                func.coalesce(func.sum(Request.id), 0),
            )
        ).one()
        parts.append(":".join(str(v) for v in row))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def returns_of(session: Session, request_ids: Sequence[int]) -> dict[int, TimelineEntry]:
    """The latest `return` row of each request (who returned it and why)."""
    if not request_ids:
        return {}
    rows = session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.request_id.in_(request_ids), TimelineEntry.action == "return")
        .order_by(TimelineEntry.request_id, TimelineEntry.seq)
    )
    return {row.request_id: row for row in rows}


def actor_names(session: Session, actors: Sequence[str]) -> dict[str, str]:
    """Display names for timeline actors: `user:…` and `key:…`."""
    users = {a.removeprefix("user:") for a in actors if a.startswith("user:")}
    keys = {int(a[4:]) for a in actors if a.startswith("key:") and a[4:].isdigit()}
    names: dict[str, str] = {}
    if users:
        for username, display in session.execute(
            select(User.username, User.display_name).where(User.username.in_(users))
        ):
            names[f"user:{username}"] = display or username
    if keys:
        for key_id, name in session.execute(
            select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(keys))
        ):
            names[f"key:{key_id}"] = name
    return names


_NUMBER = re.compile(r"^HY-\d{8}-\d{6,}$")


def request_id_for(session: Session, text: str) -> int | None:
    """A request's id from its number (HY-20261118-000001) or its id written as digits."""
    text = text.strip().upper()
    if text.isdigit() and len(text) <= 18:
        return session.scalar(select(Request.id).where(Request.id == int(text)))
    if _NUMBER.match(text):
        return session.scalar(select(Request.id).where(Request.number == text))
    return None
