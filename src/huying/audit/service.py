"""Append to the audit log and read it. Every admin write calls `record` in its own
transaction, so that the entry and the write land together or not at all. What is recorded
is scrubbed here, in one place: no secret, token or password hash is ever written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy import select
from sqlalchemy.orm import Session

from huying import paging
from huying.audit.models import AuditEntry
from huying.audit.schemas import AuditOut

CURSOR_KIND = "a"
# Keys never written to the log, at any depth: what a reader of the log could use to act as
# someone, or to sign as Huying.
SECRET_KEYS = frozenset({"secret", "password", "password_hash", "token", "token_hash"})


def scrub(value: Any) -> Any:
    """The value as JSON, without any key named in SECRET_KEYS (a pydantic model too: its
    fields as JSON, scrubbed like a mapping's)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items() if str(k) not in SECRET_KEYS}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(v) for v in value]
    return to_jsonable_python(value)


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    before: Mapping[str, Any] | BaseModel | None,
    after: Mapping[str, Any] | BaseModel | None,
    now: datetime,
) -> AuditEntry | None:
    """Append one entry, unless the write changed nothing (a PATCH that repeats the stored
    values): the log says what changed, not what was asked."""
    old = scrub(before) if before is not None else None
    new = scrub(after) if after is not None else None
    if old is not None and old == new:
        return None
    entry = AuditEntry(
        at=now,
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=old,
        after=new,
    )
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class Filters:
    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in "." ("user." for every user write)
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


def entries(
    *, session: Session, filters: Filters, after: int | None, limit: int
) -> tuple[Sequence[AuditEntry], str | None]:
    """Newest first, and the cursor of the next page."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    f = filters
    if f.actor is not None:
        q = q.where(AuditEntry.actor == f.actor)
    if f.action is not None:
        if f.action.endswith("."):
            q = q.where(AuditEntry.action.startswith(f.action, autoescape=True))
        else:
            q = q.where(AuditEntry.action == f.action)
    if f.target_type is not None:
        q = q.where(AuditEntry.target_type == f.target_type)
    if f.target_id is not None:
        q = q.where(AuditEntry.target_id == f.target_id)
    if f.since is not None:
        q = q.where(AuditEntry.at >= f.since)
    if f.until is not None:
        q = q.where(AuditEntry.at < f.until)
    if after is not None:
        q = q.where(AuditEntry.id < after)
    rows = session.scalars(q.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, paging.encode(CURSOR_KIND, rows[-1].id) if more and rows else None


def vocabulary(*, session: Session) -> tuple[Sequence[str], Sequence[str]]:
    """The actions and the target types the log holds, sorted: what a reader can filter by."""
    actions = session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    kinds = session.scalars(
        select(AuditEntry.target_type).distinct().order_by(AuditEntry.target_type)
    )
    return actions.all(), kinds.all()


def after_id(cursor: str | None) -> int | None:
    return paging.after_id(CURSOR_KIND, cursor)


def entry_out(e: AuditEntry) -> AuditOut:
    return AuditOut(
        id=e.id,
        at=e.at,
        actor=e.actor,
        action=e.action,
        target_type=e.target_type,
        target_id=e.target_id,
        before=e.before,
        after=e.after,
    )
