"""Requests as the API (and the console) show them: names resolved in batches, instants in
the calendar's time zone with their offset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from huying.attachments import service as attachments
from huying.deadlines import service as deadlines
from huying.deadlines.models import Deadline
from huying.requests import repository as repo
from huying.requests.models import Request, RequestTask, TimelineEntry
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


def timeline_entry_out(t: TimelineEntry, tz: tzinfo) -> TimelineOut:
    return timeline_row_out({name: getattr(t, name) for name in _TIMELINE_COLUMNS}, tz)


# What the API shows of a timeline row: TimelineOut's fields, each a column of the row.
_TIMELINE_COLUMNS = tuple(TimelineOut.model_fields)


def timeline_row_out(row: Mapping[str, Any], tz: tzinfo) -> TimelineOut:
    """A timeline row as column values (`requests.service.Rows`, or an entry read back)."""
    values = {name: row[name] for name in _TIMELINE_COLUMNS}
    values.update(at=_local(row["at"], tz), data=row["data"] or {}, public=bool(row["public"]))
    return TimelineOut(**values)


def timeline_out(session: Session, request_id: int, tz: tzinfo) -> list[TimelineOut]:
    return [timeline_entry_out(t, tz) for t in repo.timeline(session, request_id)]


def present_written(
    session: Session,
    req: Request,
    *,
    deadlines: Sequence[Deadline],
    timeline: Sequence[Mapping[str, Any]],
    names: repo.Names,
    tz: tzinfo,
    public: bool = False,
) -> RequestOut:
    """A request this transaction has just written, from the rows the writer holds (all its
    deadlines, its timeline rows as column values, the names it refers to), as
    `present(..., with_timeline=True)` would show it after reading them back. Its attachments
    are read only if it has any."""
    item = request_out(req, names, deadlines, tz)
    if any(t["data"] and t["data"].get("attachments") for t in timeline):
        files = attachments.of_requests(session=session, request_ids=[req.id], public_only=public)
        item.attachments = files.get(req.id, [])
    item.timeline = [timeline_row_out(t, tz) for t in sorted(timeline, key=lambda t: t["seq"])]
    return public_view(item) if public else item


def present(
    session: Session,
    requests: Sequence[Request],
    *,
    tz: tzinfo,
    with_timeline: bool = False,
    public: bool = False,
) -> list[RequestOut]:
    """Requests as the API shows them, their names and deadlines read in one batch each (and
    each one's timeline, if asked); with `public`, the public view of each (`public_view`)."""
    if not requests:
        return []
    names = repo.names_for(session, requests)
    ids = [r.id for r in requests]
    by_request = deadlines.of_requests(session=session, request_ids=ids)
    files = attachments.of_requests(session=session, request_ids=ids, public_only=public)
    out = []
    for r in requests:
        item = request_out(r, names, by_request.get(r.id, []), tz)
        item.attachments = files.get(r.id, [])
        if with_timeline:
            item.timeline = timeline_out(session, r.id, tz)
        out.append(public_view(item) if public else item)
    return out


# The lead's own deadlines: the public view shows when the request is due, nothing else.
_PUBLIC_DEADLINES = frozenset({"dispatch", "sign", "reply", "feedback"})
# What a public timeline entry's data may show.
_PUBLIC_DATA = frozenset({"lead_department", "rating", "resolved", "extend_by", "source"})
# Whose notes are public text: the reply, a rejection's reason, the enterprise's comment;
# a clerk's note on signing or a dispatcher's on reassigning stays internal.
_PUBLIC_NOTES = frozenset({"reply", "reject", "rate"})


def public_view(out: RequestOut) -> RequestOut:
    """What an integration (the grid system, the enterprise's own channel), the receipt
    page and Open311 see: where the request is, who handles it (the lead department's
    name), when it is due, the public timeline and the reply; never leaders' names or
    phones, internal notes, refusals, returns, tasks, suspensions or supervision. Entries
    are public as the workflow file marks them (`TimelineEntry.public`); their actors are
    shown by role."""
    return out.model_copy(
        update={
            "co_departments": [],
            "escalation_level": None,
            "overdue": None,
            "return_count": None,
            "reopen_count": None,
            "pending_extension": None,
            "pending_suspension": None,
            "suspension": None,
            "suspension_count": None,
            "returned_from": None,
            "tasks": [],
            "deadlines": [
                d.model_copy(update={"escalations": None, "extensions": None})
                for d in out.deadlines
                if d.kind in _PUBLIC_DEADLINES
            ],
            "timeline": None
            if out.timeline is None
            else [
                t.model_copy(
                    update={
                        "actor": t.role,
                        "note": t.note if t.action in _PUBLIC_NOTES else None,
                        "data": {k: v for k, v in t.data.items() if k in _PUBLIC_DATA},
                    }
                )
                for t in out.timeline
                if t.public
            ],
        }
    )


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
        lat=r.lat,
        long=r.long,
        address=r.address,
        media_urls=list(r.media_urls or ()),
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
