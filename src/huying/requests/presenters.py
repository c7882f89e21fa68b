"""Requests as the API (and the console) show them: names resolved in batches, instants in
the calendar's time zone with their offset."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from huying.deadlines import service as deadlines
from huying.deadlines.models import Deadline
from huying.requests import repository as repo
from huying.requests.models import Request, RequestTask
from huying.requests.schemas import (
    DeadlineOut,
    EnterpriseRef,
    Ref,
    RequestOut,
    TaskOut,
    TimelineOut,
)


def _local(moment: datetime, tz: tzinfo) -> datetime:
    return moment.astimezone(tz)


def _opt(moment: datetime | None, tz: tzinfo) -> datetime | None:
    return None if moment is None else moment.astimezone(tz)


def deadline_out(d: Deadline, tz: tzinfo) -> DeadlineOut:
    return DeadlineOut(
        kind=d.kind,
        status=d.status,
        duration=d.duration,
        started_at=_local(d.started_at, tz),
        due_at=_local(d.due_at, tz),
        warn_at=_opt(d.warn_at, tz),
        warned=d.warned_at is not None,
        completed_at=_opt(d.completed_at, tz),
        escalations=d.rungs_fired,
        extensions=d.extension_count or 0,
        task_id=d.task_id,
    )


def task_out(
    t: RequestTask, depts: dict[str, str], its_deadlines: Sequence[Deadline], tz: tzinfo
) -> TaskOut:
    """A task with its latest deadline."""
    deadline = next((d for d in reversed(its_deadlines) if d.task_id == t.id), None)
    return TaskOut(
        id=t.id,
        department=Ref(code=t.department_code, name=depts.get(t.department_code, "")),
        kind=t.kind,
        status=t.status,
        note=t.note,
        limit=t.limit,
        created_at=_local(t.created_at, tz),
        signed_at=_opt(t.signed_at, tz),
        replied_at=_opt(t.replied_at, tz),
        reply=t.reply,
        on_time=t.on_time,
        deadline=deadline_out(deadline, tz) if deadline else None,
    )


def timeline_out(session: Session, request_id: int, tz: tzinfo) -> list[TimelineOut]:
    return [
        TimelineOut(
            seq=t.seq,
            action=t.action,
            from_state=t.from_state,
            to_state=t.to_state,
            actor=t.actor,
            role=t.role,
            at=_local(t.at, tz),
            note=t.note,
            data=t.data or {},
        )
        for t in repo.timeline(session, request_id)
    ]


def present(
    session: Session, requests: Sequence[Request], *, tz: tzinfo, with_timeline: bool = False
) -> list[RequestOut]:
    """Requests as the API shows them, their names and deadlines read in one batch each (and
    each one's timeline, if asked)."""
    if not requests:
        return []
    names = repo.names_for(session, requests)
    by_request = deadlines.of_requests(session=session, request_ids=[r.id for r in requests])
    out = []
    for r in requests:
        item = request_out(r, names, by_request.get(r.id, []), tz)
        if with_timeline:
            item.timeline = timeline_out(session, r.id, tz)
        out.append(item)
    return out


def request_out(
    r: Request, names: repo.Names, its_deadlines: Sequence[Deadline], tz: tzinfo
) -> RequestOut:
    """One request with the names of what it refers to ("" for a name not found) and its
    instants in `tz`; no timeline."""
    depts, cats, ents = names.departments, names.categories, names.enterprises
    lead = r.lead_department_code
    return RequestOut(
        id=r.id,
        number=r.number or "",
        state=r.state,
        workflow={"name": r.workflow_name, "version": r.workflow_version},
        enterprise=EnterpriseRef(uscc=r.enterprise_uscc, name=ents.get(r.enterprise_uscc, "")),
        category=Ref(code=r.category_code, name=cats.get(r.category_code, "")),
        urgency=r.urgency,
        title=r.title,
        description=r.description,
        grid_code=r.grid_code,
        chain=r.chain_code,
        location=r.location,
        contact=r.contact,
        source=r.source,
        external_id=r.external_id,
        lead_department=Ref(code=lead, name=depts.get(lead, "")) if lead else None,
        co_departments=[Ref(code=c, name=depts.get(c, "")) for c in r.co_department_codes],
        escalation_level=r.escalation_level,
        overdue=r.overdue,
        return_count=r.return_count,
        reopen_count=r.reopen_count,
        rating=r.rating,
        resolved=r.resolved,
        enterprise_resolved=r.enterprise_resolved,
        pending_extension=r.pending_extension,
        pending_suspension=r.pending_suspension,
        suspension=r.suspension,
        suspension_count=r.suspension_count or 0,
        returned_from=r.returned_from,
        tasks=[task_out(t, depts, its_deadlines, tz) for t in r.tasks],
        merged_into=r.merged_into_id,
        deadlines=[deadline_out(d, tz) for d in its_deadlines],
        version=r.version,
        created_at=_local(r.created_at, tz),
        updated_at=_local(r.updated_at, tz),
        closed_at=_opt(r.closed_at, tz),
    )
