"""Request queries; the department scope is applied here, in one place."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from huying.requests.models import Request, RequestCoDepartment, TimelineEntry


def scoped(query: Select[Request], department: str | None) -> Select[Request]:
    """Limit a query to what a department may see: requests it leads or co-handles."""
    if department is None:
        return query
    co = exists().where(
        RequestCoDepartment.request_id == Request.id,
        RequestCoDepartment.department_code == department,
    )
    return query.where((Request.lead_department_code == department) | co)


def get(session: Session, request_id: int, *, department: str | None) -> Request | None:
    return session.scalar(scoped(select(Request).where(Request.id == request_id), department))


def by_idempotency(session: Session, scope: str, key: str) -> Request | None:
    return session.scalar(
        select(Request).where(Request.idempotency_scope == scope, Request.idempotency_key == key)
    )


def timeline(session: Session, request_id: int) -> Sequence[TimelineEntry]:
    return session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.request_id == request_id)
        .order_by(TimelineEntry.seq)
    ).all()


@dataclass(frozen=True)
class Filters:
    states: Sequence[str] = ()
    department: str | None = None
    category: str | None = None
    enterprise: str | None = None
    grid_prefix: str | None = None
    chain: str | None = None
    overdue: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"r:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "r" or not value.isdigit() or len(value) > 18:
            return None
        return int(value) if int(value) <= 2**62 else None
    except (ValueError, UnicodeDecodeError):
        return None


def page(
    session: Session, filters: Filters, *, scope: str | None, after_id: int | None, limit: int
) -> tuple[Sequence[Request], bool]:
    """Newest first; keyset pagination on id. Returns the page and whether more follow."""
    q = scoped(select(Request), scope)
    f = filters
    if f.states:
        q = q.where(Request.state.in_(f.states))
    if f.department:
        q = q.where(Request.lead_department_code == f.department)
    if f.category:
        q = q.where(Request.category_code == f.category)
    if f.enterprise:
        q = q.where(Request.enterprise_uscc == f.enterprise)
    if f.grid_prefix:
        q = q.where(Request.grid_code.startswith(f.grid_prefix, autoescape=True))
    if f.chain:
        q = q.where(Request.chain_code == f.chain)
    if f.overdue is not None:
        q = q.where(Request.overdue.is_(f.overdue))
    if f.created_from:
        q = q.where(Request.created_at >= f.created_from)
    if f.created_to:
        q = q.where(Request.created_at < f.created_to)
    if after_id is not None:
        q = q.where(Request.id < after_id)
    rows = session.scalars(q.order_by(Request.id.desc()).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit
