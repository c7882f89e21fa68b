from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from huying import roles
from huying.api.deps import Rt
from huying.api.types import Instant
from huying.audit import service
from huying.audit.schemas import AuditPage
from huying.auth.deps import Auth
from huying.auth.gate import GatedRoute, allow

router = APIRouter(tags=["audit"], route_class=GatedRoute, dependencies=[allow(*roles.ADMINS)])


@router.get("/audit", response_model=AuditPage)
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
    after = service.after_id(cursor)
    filters = service.Filters(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    with rt.transaction() as s:
        auth.principal(s, rt)
        rows, next_cursor = service.entries(session=s, filters=filters, after=after, limit=limit)
        return AuditPage(items=[service.entry_out(e) for e in rows], next_cursor=next_cursor)
