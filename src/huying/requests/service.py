"""Request use cases. Every state change goes through `_apply`: the engine decides, and
state, timeline row, deadline changes and outbox events are written in one transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from huying import cache, paging, roles, uids
from huying.alerts.models import Event
from huying.attachments import service as attachments
from huying.auth.service import Principal
from huying.calendar import BusinessCalendar
from huying.db import held
from huying.deadlines import service as deadlines_service
from huying.deadlines.models import SUSPENSION, TASK, Deadline
from huying.deadlines.service import DeadlinePlanner
from huying.directory import notify
from huying.directory import service as directory
from huying.durations import parse_duration
from huying.errors import (
    ChangedMeanwhile,
    Conflict,
    Forbidden,
    InvalidFields,
    InvalidInput,
    NotFound,
    StaleVersion,
    UnknownReference,
    validation_detail,
)
from huying.requests import repository as repo
from huying.requests import supervision
from huying.requests.models import (
    Request,
    RequestCoDepartment,
    RequestReturn,
    RequestTask,
    TimelineEntry,
)
from huying.requests.schemas import ACTION_BODIES, NoteBody, SubmitIn
from huying.runtime import Runtime
from huying.workflow.context import SYSTEM, Actor, Clock, Outcome, Snapshot, TaskEffect, TaskView
from huying.workflow.definition import WorkflowSpec

SUBMIT_ROLES = roles.SUBMITTERS


def planner(rt: Runtime) -> DeadlinePlanner:
    return DeadlinePlanner(settings=rt.settings, calendar=rt.calendar)


# What `snapshot` reads of a request, of each of its open deadlines and of each task, each
# read at once (`held`): the worker takes a snapshot for every step it fires.
_SNAPSHOT = held(
    "state",
    "lead_department_code",
    "return_count",
    "reopen_count",
    "escalation_level",
    "rating",
    "resolved",
    "pending_extension",
    "pending_suspension",
    "suspension_count",
    "returned_from",
)
_CLOCK = held("kind", "status", "due_at", "extension_count", "completed_at")
_TASK = held(*repo.TASK_VIEW)


@dataclass(slots=True)
class Collections:
    """A request's co-departments and tasks as the workflow reads them, for a caller that
    read them without their ORM objects (the worker's batch, `huying.requests.firing`).
    Every step of the request reads the same one until a step changes them (`_apply`'s
    `with_tasks`); nothing changes one (the batch's `tasks` are a read-only mapping)."""

    co_departments: tuple[str, ...]
    tasks: Mapping[int, TaskView]  # by task id

    @classmethod
    def of(cls, req: Request) -> Collections:
        """The request's own, as its loaded (or lazily loading) collections hold them."""
        return cls(tuple(req.co_department_codes), {t.id: TaskView(*_TASK(t)) for t in req.tasks})

    @classmethod
    def of_rows(
        cls, co_departments: Sequence[str], tasks: Sequence[tuple[Any, ...]]
    ) -> Collections:
        """A request's, from the rows `repository.collections_of` read (each task its id,
        then `repository.TASK_VIEW`); the tasks' mapping read-only, as every step of the
        request shares it."""
        return cls(
            tuple(co_departments),
            MappingProxyType({tid: TaskView(*view) for tid, *view in tasks}),
        )


def snapshot(
    req: Request, open_deadlines: Sequence[Deadline] = (), collections: Collections | None = None
) -> Snapshot:
    """What the workflow reads of a request; its guards about time read `open_deadlines`.
    With `collections`, its co-departments and tasks are those, not the request's own
    (which are then not read)."""
    (
        state,
        lead,
        return_count,
        reopen_count,
        level,
        rating,
        resolved,
        pending_extension,
        pending_suspension,
        suspension_count,
        returned_from,
    ) = _SNAPSHOT(req)
    clocks = {}
    for d in open_deadlines:
        kind, status, due_at, extension_count, completed_at = _CLOCK(d)
        if completed_at is None and kind != TASK:
            clocks[kind] = Clock(status, due_at, extension_count or 0)
    if collections is None:
        collections = Collections.of(req)
    return Snapshot(
        state=state,
        lead_department=lead,
        co_departments=collections.co_departments,
        return_count=return_count,
        reopen_count=reopen_count,
        escalation_level=level,
        rating=rating,
        resolved=resolved,
        pending_extension=pending_extension,
        pending_suspension=pending_suspension,
        suspension_count=suspension_count or 0,
        clocks=clocks,
        tasks=collections.tasks,
        returned_from=returned_from,
    )


def open_deadlines(*, session: Session, req: Request) -> list[Deadline]:
    """The request's open deadlines, oldest first."""
    return deadlines_service.open_of_requests(session=session, request_ids=[req.id]).get(req.id, [])


def receipt_url(*, rt: Runtime, req: Request) -> str | None:
    """The enterprise's receipt page (回执): no login, the public view, its own rating."""
    if not req.receipt_token:
        return None
    return f"{rt.settings.public_url}/r/{req.receipt_token}"


def by_receipt(*, session: Session, token: str) -> Request | None:
    """The request of a receipt token; None for a token that names none (compared in
    constant time after the indexed look-up, so a near miss takes as long as a far one)."""
    if not 16 <= len(token) <= 32:
        return None
    req = repo.by_receipt_token(session, token)
    if req is None or not hmac.compare_digest(req.receipt_token or "", token):
        return None
    return req


def sees_public_view(principal: Principal) -> bool:
    """Integrations (a grid system, the enterprise's channel) get the public view only:
    the one place this rule is written."""
    return principal.role in roles.PUBLIC_VIEW


def scope_of(*, session: Session, principal: Principal) -> frozenset[str] | None:
    """The departments whose requests are all a caller may see: department staff, and a
    dispatcher or supervisor bound to a department, see that department and everything
    below it (the requests one of them leads, co-handles or has a task of); None for a
    caller who sees every request. The one place this rule is written."""
    if principal.department is None or principal.role not in roles.SCOPED_BY_DEPARTMENT:
        return None
    return directory.subtree(session=session, code=principal.department)


def visible(*, session: Session, principal: Principal, request_id: int | str) -> Request:
    """The request if the caller may see it, by id or by number (HY-20261118-000001); 404
    otherwise, the same as for one that does not exist."""
    scope = scope_of(session=session, principal=principal)
    found = repo.id_for(session, request_id) if isinstance(request_id, str) else request_id
    req = None if found is None else repo.get(session, found, scope=scope)
    if req is None:
        raise NotFound(f"no request {request_id}", code="request_not_found")
    return req


# Fields a submit gained after bodies were first hashed: left out while empty, so a body
# stored before them still replays with the same hash.
_LATER_FIELDS = ("lat", "long", "address", "media_urls", "attachment_ids")


def _hash_body(body: SubmitIn) -> str:
    dump = body.model_dump(mode="json")
    for name in _LATER_FIELDS:
        if dump.get(name) in (None, []):
            dump.pop(name, None)
    canonical = json.dumps(dump, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# An event's view of its request: each key, and the attribute it holds (read at once).
_EVENT_VIEW = {
    "id": "id",
    "number": "number",
    "state": "state",
    "category": "category_code",
    "enterprise_uscc": "enterprise_uscc",
    "lead_department": "lead_department_code",
    "escalation_level": "escalation_level",
    "overdue": "overdue",
}
_EVENT_READ = held(*_EVENT_VIEW.values())


def _event_payload(req: Request) -> dict[str, Any]:
    return dict(zip(_EVENT_VIEW, _EVENT_READ(req), strict=True))


_FIELD = {"lead_department": "lead_department_code"}


@dataclass
class Rows:
    """The timeline rows and events of outcomes applied (`_apply`) as column values, each
    with its `request_id`, for a caller that INSERTs them at once."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


# What `_apply` reads of the request, and of each open deadline for `Request.overdue`.
_APPLYING = held("id", "workflow_name", "workflow_version", "timeline_seq", "state", "overdue")
_LATE = held("missed_at", "kind", "completed_at")
_WORKFLOW = held("workflow_name", "workflow_version")

# The events that carry who is told (`notify`), by the rung of the level they reached.
ESCALATIONS = ("request.escalated", "request.task_escalated")


def _apply(
    session: Session,
    rt: Runtime,
    req: Request,
    outcome: Outcome,
    *,
    overrides: Mapping[str, str] | None,
    deadlines: list[Deadline] | None = None,
    departments: notify.Departments | None = None,
    written: list[TimelineEntry] | None = None,
    rows: Rows | None = None,
    with_tasks: Callable[[], None] | None = None,
) -> list[Deadline]:
    """Persist one outcome of the engine. The only place a request's state is written.

    Every escalation event gets here, whatever fired it (a rung of the ladder, the return or
    reopen limit, a supervision): the leaders its rung names are looked up here and carried
    by the event and the timeline row (`notify`). `departments` saves the worker that read.
    The timeline row is appended to `written`, for a caller that answers with it.

    With `rows`, the timeline row and the events go there as column values, for a caller
    that INSERTs many at once (the worker's batch, `huying.requests.firing`), instead of
    into the session as ORM objects: the same values either way.

    `with_tasks` is for a caller that has not read the request's tasks, their deadlines
    and its co-departments as the session's objects (the worker's batch reads them only
    when a step needs them): called before an outcome that reads or changes them is
    applied, it reads them, and adds the tasks' open deadlines to `deadlines`."""
    now = outcome.timeline.at
    rid, workflow, version, seq, state, overdue = _APPLYING(req)
    final = rt.workflows.spec(workflow, version).states[outcome.state].final
    if with_tasks is not None and _reads_tasks(outcome, final=final):
        with_tasks()
    if outcome.state != state:  # (the ladder's steps leave it as it is)
        req.state = outcome.state
    for name, value in outcome.changes.items():
        if name == "co_departments":
            # in the order a read loads them (`Request.co_departments`), so that an answer
            # built from what was written shows them as a read does
            req.co_departments = [RequestCoDepartment(department_code=c) for c in sorted(value)]
        else:
            setattr(req, _FIELD.get(name, name), value)
    req.timeline_seq = seq = seq + 1
    req.updated_at = now
    t = outcome.timeline
    stopped: list[Deadline] = []
    if returned_by := t.data.get("returned_by"):  # the record_return action
        session.add(
            RequestReturn(
                request=req, department_code=returned_by, at=now, received_at=req.created_at
            )
        )
    still_open = planner(rt).apply(
        session,
        request=req,
        effects=outcome.deadlines,
        now=now,
        overrides=dict(overrides or {}),
        current=deadlines,
        finished=stopped,
    )
    record_facts(req, stopped, rt.calendar)
    _apply_tasks(session, rt, req, outcome, still_open, deadlines, final=final)
    # Overdue is a fact: a missed deadline stays missed while paused (a suspension) and until
    # it ends (a reply) or an extension asked in time moves it (the planner lifts the mark).
    # Only the lead's own deadlines count: not a task's, a review's or a suspension's.
    late = any(
        missed_at is not None and kind not in deadlines_service.NOT_THE_LEADS and ended is None
        for missed_at, kind, ended in map(_LATE, still_open)
    )
    if late != overdue:
        req.overdue = late
    extra = _facts_of_outcome(session, rt, req, outcome, still_open, departments)
    line = {
        "seq": seq,
        "action": t.action,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "actor": t.actor,
        "role": t.role,
        "at": now,
        "note": t.note,
        "data": {**t.data, **extra},
        "public": t.public,
    }
    if rows is not None:
        rows.timeline.append({"request_id": rid, **line})
    else:
        entry = TimelineEntry(request=req, **line)
        session.add(entry)
        if written is not None:
            written.append(entry)
    for draft in outcome.events:
        data = dict(draft.data)
        if draft.type in (*ESCALATIONS, "request.supervised") and "notify" in extra:
            data["notify"] = extra["notify"]
        elif draft.type == "request.suspended" and "resumes_at" in extra:
            data["resumes_at"] = extra["resumes_at"]
        event = {
            # a UUIDv7: the uid index grows at its end (`huying.uids`)
            "uid": f"msg_{uids.ordered_hex16()}",
            "type": draft.type,
            "occurred_at": now,
            "data": {"request": _event_payload(req), **data},
            "public": t.public and draft.type not in ESCALATIONS,  # huying.alerts.public
            "fanned_out_at": None,
        }
        if rows is not None:
            rows.events.append({"request_id": rid, **event})
        else:
            session.add(Event(request=req, **event))
    return still_open


def _apply_tasks(
    session: Session,
    rt: Runtime,
    req: Request,
    outcome: Outcome,
    still_open: list[Deadline],
    deadlines: list[Deadline] | None,
    *,
    final: bool,
) -> None:
    """The outcome's task effects: new tasks with their own `task` deadlines, signatures,
    replies (on time or not by their deadline) and cancellations; and when the request
    reaches a final state (`final`), every task still open is cancelled with it."""
    effects = list(outcome.tasks)
    if final:
        cancelled = {e.task_id for e in effects if e.op == "cancel"}
        effects += [
            TaskEffect("cancel", task_id=t.id)
            for t in req.tasks
            if t.open and t.id not in cancelled
        ]
    if not effects:
        return
    now = outcome.timeline.at
    plan = planner(rt)
    by_id = {t.id: t for t in req.tasks}
    for effect in effects:
        if effect.op == "create":
            _create_task(session, rt, req, effect, outcome, still_open, deadlines)
            continue
        task = by_id.get(effect.task_id or 0)
        if task is None or not task.open:
            continue
        if effect.op == "sign":
            task.status, task.signed_at, task.signed_by = "signed", now, outcome.timeline.actor
        elif effect.op == "reply":
            ended = plan.end_task(still_open, task.id, "met", now)
            task.status, task.reply, task.ended_at = "done", effect.content, now
            task.replied_at, task.replied_by = now, outcome.timeline.actor
            task.signed_at = task.signed_at or now
            task.on_time = ended is None or ended.status == "met"
        elif effect.op == "cancel":
            plan.end_task(still_open, task.id, "cancelled", now)
            task.status, task.ended_at = "cancelled", now


def _reads_tasks(outcome: Outcome, *, final: bool) -> bool:
    """Whether applying `outcome` reads or changes the request's tasks, their open
    deadlines or its co-departments: a task effect (`_apply_tasks`), a final state (every
    open task is cancelled), a deadline effect on kind `task` (the planner), or new
    co-departments. Each reader of those in `_apply` is one of these: a new one is added
    here too (`tests/requests/test_firing_batch.py` fires each kind of step both ways)."""
    return (
        bool(outcome.tasks)
        or final
        or any(e.kind == TASK for e in outcome.deadlines)
        or "co_departments" in outcome.changes
    )


def _create_task(
    session: Session,
    rt: Runtime,
    req: Request,
    effect: TaskEffect,
    outcome: Outcome,
    still_open: list[Deadline],
    deadlines: list[Deadline] | None,
) -> None:
    """A task and its own deadline: the lead's `limit` if given, else the urgency's (or the
    category's) `task` limit."""
    now = outcome.timeline.at
    task = RequestTask(
        department_code=effect.department,
        kind=effect.kind,
        status="pending",
        note=effect.note,
        limit=effect.limit,
        created_at=now,
        created_by=outcome.timeline.actor,
        received_at=req.created_at,
    )
    if (reserved := session.info.pop(_RESERVED_TASK_ID, None)) is not None:
        task.id = reserved  # the submit's first task (`start_submit`)
    req.tasks.append(task)
    duration = (
        parse_duration(effect.limit) if effect.limit else rt.settings.limit_for(req.urgency, TASK)
    )
    d = planner(rt).start(session, request=req, kind=TASK, duration=duration, now=now, task=task)
    still_open.append(d)
    if deadlines is not None and deadlines is not still_open:
        deadlines.append(d)


def _facts_of_outcome(
    session: Session,
    rt: Runtime,
    req: Request,
    outcome: Outcome,
    still_open: Sequence[Deadline],
    departments: notify.Departments | None,
) -> dict[str, Any]:
    """What the timeline row and the events add to the outcome: the leaders an escalation
    notifies (by the rung of the level it reached, from the lead department as it now stands
    or the dispatch centre) and when a suspension that started ends."""
    extra: dict[str, Any] = {}
    escalated = next((e for e in outcome.events if e.type in ESCALATIONS), None)
    if escalated is not None:
        rung = rt.settings.rung(int(escalated.data.get("level") or 0))
        if rung is not None:
            if departments is None:
                departments = directory.department_views(session=session)
            # a task's ladder alerts the task department's leaders, the rest the lead's
            told = (
                escalated.data.get("department")
                if escalated.type == "request.task_escalated"
                else req.lead_department_code
            )
            extra["notify"] = notify.resolve(
                rung,
                departments,
                lead_department=told,
                dispatch_center=rt.settings.dispatch_center,
            )
    if req.suspension is not None and "resumes_at" not in req.suspension:
        timer = next((d for d in still_open if d.kind == SUSPENSION), None)
        if timer is not None:
            extra["resumes_at"] = timer.due_at.isoformat()
            req.suspension = {**req.suspension, "resumes_at": extra["resumes_at"]}
    return extra


def seconds_rounded(seconds: float) -> int:
    """Working seconds as stored: to the nearest second, halves up (as the back-fill's SQL,
    `huying.reports.repository.set_facts`, does)."""
    return math.floor(seconds + 0.5)


def record_facts(req: Request, stopped: list[Deadline], calendar: BusinessCalendar) -> None:
    """The reports' per-request facts, from the deadlines an action just stopped: the signing
    (the sign deadline ending met or missed; a return or merge cancels it instead) and the first
    reply round (the first reply deadline to end met or missed; a reopen starts later rounds).
    `huying.reports.facts.backfill` derives the same facts from stored deadlines."""

    for d in stopped:
        if d.status not in ("met", "missed") or d.completed_at is None:
            continue
        seconds = seconds_rounded(calendar.working_seconds_between(d.started_at, d.completed_at))
        if d.kind == "sign" and req.sign_on_time is None:
            req.sign_on_time = d.status == "met"
            req.sign_working_seconds = seconds
        elif d.kind == "reply" and req.first_reply_on_time is None:
            req.first_reply_on_time = d.status == "met"
            req.first_reply_working_seconds = seconds


@dataclass(frozen=True)
class Intake:
    """What a submit wrote, as written: the request (`created`) or the one it replays, and
    for a new one its deadlines and timeline rows and the names it refers to, so that the
    answer is built without reading any of it back."""

    request: Request
    created: bool
    deadlines: Sequence[Deadline] = ()
    timeline: Sequence[Mapping[str, Any]] = ()  # as `Rows.timeline` holds them
    names: repo.Names | None = None


# session.info: the id `start_submit` read for the request `take_in` makes (SQLite), and
# the id `take_in` took for the submit's first task (PostgreSQL, `repo.next_ids`).
_RESERVED_ID = "huying.requests.next_id"
_RESERVED_TASK_ID = "huying.requests.next_task_id"


def start_submit(*, session: Session) -> None:
    """Read, in one statement, what a submit needs first: the generations of the caches (the
    directory's, and the credentials' that confirm a caller admitted from the cache) and, on
    SQLite, the new request's id (no id is taken on PostgreSQL before the body is checked:
    a refused submit leaves no gap in the numbers). Optional: `take_in` reads what it lacks."""
    if session.get_bind().dialect.name == "postgresql":
        cache.current(session)
        return
    _, next_id = cache.current(session, also=repo.next_id_column(session))
    session.info[_RESERVED_ID] = int(next_id)


def submit(
    *,
    rt: Runtime,
    session: Session,
    principal: Principal,
    body: SubmitIn,
    idempotency_key: str | None,
) -> tuple[Request, bool]:
    """Take in a request and route it at once. Returns (request, created). A new request is
    no longer in the session (`take_in`): read it again to change it in this transaction."""
    done = take_in(
        rt=rt, session=session, principal=principal, body=body, idempotency_key=idempotency_key
    )
    return done.request, done.created


def take_in(
    *,
    rt: Runtime,
    session: Session,
    principal: Principal,
    body: SubmitIn,
    idempotency_key: str | None,
) -> Intake:
    """Take in a request and route it at once (`submit`), keeping what it wrote.

    The enterprise, the category and the routing come from the directory's cache. The rows
    are built by the engine's outcomes as for any action (`_apply`; the timeline rows and the
    events as column values, `Rows`, as the worker's batches hold them) and written with one
    INSERT per table (`repo.insert_new`), not the unit of work: the new request and its
    deadlines are never added to the session. A concurrent submit with the same
    Idempotency-Key or external_id fails there (see `replay`). The request returned holds
    what was written, to read, not to change: it is in no session."""
    if principal.role not in SUBMIT_ROLES:
        raise Forbidden(f"role {principal.role!r} may not submit requests")
    # kept to tell a replay from a reuse, so only for a submit that can be replayed
    kept = idempotency_key is not None or body.external_id is not None
    body_hash = _hash_body(body) if kept else ""
    if idempotency_key is not None:
        existing = _earlier_submit(session, principal, idempotency_key)
        if existing is not None:
            return Intake(_replayed(existing, body_hash, idempotency_key), False)
    if body.external_id is not None:
        earlier = repo.by_external_id(session, principal.id, body.external_id)
        if earlier is not None:
            return Intake(_same_external_id(earlier, body_hash), False)
    enterprise, category, urgency = _submitted_references(session, rt, body)

    now = rt.now()
    spec = rt.workflows.latest(rt.settings.workflows.default)
    grid_code = body.grid_code or enterprise.grid_code
    req = _new_request(
        spec,
        principal,
        body,
        enterprise=enterprise,
        category=category,
        urgency=urgency,
        grid_code=grid_code,
        idempotency_key=idempotency_key,
        body_hash=body_hash,
        now=now,
    )
    req.receipt_token = uids.token_urlsafe16()  # 128 bits: the enterprise's receipt page
    # The id comes first, so that the number and every event of the submit can name it.
    req.id = session.info.pop(_RESERVED_ID, None)
    if req.id is None:
        req.id, session.info[_RESERVED_TASK_ID] = repo.next_ids(session)
    req.number = f"HY-{rt.local_date(now):%Y%m%d}-{req.id:06d}"
    overrides = dict(category.time_limits)
    started = rt.workflows.start(
        spec.name,
        spec.version,
        actor=principal.actor,
        now=now,
        data={
            "source": body.source,
            **({"external_id": body.external_id} if body.external_id else {}),
            **({"attachments": list(body.attachment_ids)} if body.attachment_ids else {}),
        },
    )
    deadlines: list[Deadline] = []  # every deadline of the request, ended ones too
    rows = Rows()  # the timeline rows and the events, as column values
    _apply(session, rt, req, started, overrides=overrides, deadlines=deadlines, rows=rows)
    submitted_seq = req.timeline_seq
    payload = _route_payload(session, category, grid_code, enterprise.chain_code)
    routed = rt.workflows.fire(
        spec.name, spec.version, snapshot(req), "route", actor=SYSTEM, payload=payload, now=now
    )
    _apply(session, rt, req, routed, overrides=overrides, deadlines=deadlines, rows=rows)
    repo.insert_new(
        session, [req, *deadlines], rows={TimelineEntry: rows.timeline, Event: rows.events}
    )
    session.info.pop(_RESERVED_TASK_ID, None)  # (left when the submit made no task)
    attachments.bind(
        session=session,
        settings=rt.settings,
        principal=principal,
        request=req,
        ids=body.attachment_ids,
        timeline_seq=submitted_seq,
        now=now,
    )
    departments = directory.tree(session=session).names
    names = repo.Names(
        departments={
            code: departments.get(code, "")
            for code in (
                *([req.lead_department_code] if req.lead_department_code else []),
                *req.co_department_codes,
                *(t.department_code for t in req.tasks),
            )
        },
        categories={category.code: category.name},
        enterprises={enterprise.uscc: enterprise.name},
    )
    return Intake(req, True, deadlines, rows.timeline, names)


def _earlier_submit(session: Session, principal: Principal, key: str) -> Request | None:
    """The request this caller already submitted under this Idempotency-Key, if any;
    InvalidInput for a key that is not 1 to 200 characters."""
    if not 1 <= len(key) <= 200:
        raise InvalidInput("Idempotency-Key: 1 to 200 characters")
    return repo.by_idempotency(session, principal.id, key)


def _submitted_references(
    session: Session, rt: Runtime, body: SubmitIn
) -> tuple[directory.EnterpriseView, directory.CategoryView, str]:
    """The enterprise and category a submit names, and its urgency (the body's, else the
    category's). InvalidInput for an enterprise not registered, a category not on the call
    list, an urgency without configured time limits, or a grid code that does not match
    `directory.grid_code_pattern`, checked in that order."""
    enterprise = directory.enterprise_view(session=session, uscc=body.enterprise_uscc)
    if enterprise is None or not enterprise.active:
        raise InvalidInput(
            f"enterprise_uscc: enterprise {body.enterprise_uscc} is retired"
            if enterprise is not None
            else f"enterprise_uscc: no enterprise {body.enterprise_uscc} is registered",
            field="enterprise_uscc",
        )
    category = directory.category_view(session=session, code=body.category)
    if category is None or not category.active:
        raise InvalidInput(
            f"category: {body.category!r} is retired from the call list"
            if category is not None
            else f"category: {body.category!r} is not on the call list",
            field="category",
        )
    urgency = body.urgency or category.urgency
    if urgency not in rt.settings.time_limits:
        raise InvalidInput(
            f"urgency: {urgency!r} is not one of {', '.join(rt.settings.time_limits)}",
            field="urgency",
        )
    if body.grid_code is not None and (
        problem := directory.grid_code_problem(
            body.grid_code, pattern=rt.settings.directory.grid_code_pattern
        )
    ):
        raise InvalidInput(f"grid_code: {problem}", field="grid_code")
    return enterprise, category, urgency


def _new_request(
    spec: WorkflowSpec,
    principal: Principal,
    body: SubmitIn,
    *,
    enterprise: directory.EnterpriseView,
    category: directory.CategoryView,
    urgency: str,
    grid_code: str | None,
    idempotency_key: str | None,
    body_hash: str,
    now: datetime,
) -> Request:
    """The row of a new request in the workflow's initial state, before it has an id or a
    number; the body hash is kept with an Idempotency-Key or an external_id, to tell a replay
    from a reuse."""
    return Request(
        workflow_name=spec.name,
        workflow_version=spec.version,
        state=spec.initial,
        enterprise_uscc=enterprise.uscc,
        category_code=category.code,
        urgency=urgency,
        title=body.title,
        description=body.description,
        grid_code=grid_code,
        chain_code=enterprise.chain_code,
        location=body.location,
        lat=body.lat,
        long=body.long,
        address=body.address,
        media_urls=list(body.media_urls) or None,
        contact=body.contact.model_dump() if body.contact else None,
        source=body.source,
        external_id=body.external_id,
        escalation_level=0,
        overdue=False,
        return_count=0,
        reopen_count=0,
        timeline_seq=0,
        submitted_by=principal.id,
        idempotency_scope=principal.id if idempotency_key else None,
        idempotency_key=idempotency_key,
        # kept to tell a replay from a reuse: of the Idempotency-Key or the external_id
        idempotency_hash=body_hash if idempotency_key or body.external_id else None,
        created_at=now,
        updated_at=now,
    )


def _route_payload(
    session: Session,
    category: directory.CategoryView,
    grid_code: str | None,
    chain_code: str | None,
) -> dict[str, Any]:
    """The `route` trigger's payload: the departments of the routing rule that matches, or
    nothing when none does."""
    route = directory.route(
        session=session, category=category, grid_code=grid_code, chain_code=chain_code
    )
    if route is None:
        return {}
    return {
        "lead_department": route.lead_department,
        "co_departments": list(route.co_departments),
        "rule_id": route.rule_id,
    }


def replay(
    *, session: Session, principal: Principal, body: SubmitIn, idempotency_key: str | None
) -> Request | None:
    """After a submit lost a race on its Idempotency-Key or external_id: the winner's
    request, if the bodies match (ExternalIdTaken or InvalidInput if they do not)."""
    body_hash = _hash_body(body)
    if idempotency_key is not None:
        existing = repo.by_idempotency(session, principal.id, idempotency_key)
        if existing is not None:
            return _replayed(existing, body_hash, idempotency_key)
    if body.external_id is not None:
        earlier = repo.by_external_id(session, principal.id, body.external_id)
        if earlier is not None:
            return _same_external_id(earlier, body_hash)
    return None


def _same_external_id(earlier: Request, body_hash: str) -> Request:
    """A second submit under an external_id: the same body replays, another is a conflict
    naming the request that has it (the grid system finds its request again)."""
    if earlier.idempotency_hash is not None and earlier.idempotency_hash == body_hash:
        return earlier
    raise Conflict(
        f"external_id {earlier.external_id!r} is already request {earlier.number}; "
        "look it up with ?external_id= or use another external_id for a new request",
        code="external_id_taken",
        existing_id=earlier.id,
        existing_number=earlier.number,
    )


def _replayed(existing: Request, body_hash: str, key: str) -> Request:
    if existing.idempotency_hash != body_hash:
        raise InvalidInput(
            f"Idempotency-Key {key!r} was already used with a different body "
            f"(request {existing.number}); use a new key for a new request"
        )
    return existing


def parse_body(action: str, body: Any) -> dict[str, Any]:
    model = ACTION_BODIES.get(action, NoteBody)
    try:
        parsed = model.model_validate(body if body is not None else {})
    except ValidationError as exc:
        raise InvalidFields(
            validation_detail(exc.errors(), whole="body"),
            errors=exc.errors(include_url=False, include_context=False, include_input=False),
        ) from None
    return parsed.model_dump(exclude_none=True)


def act(
    *,
    rt: Runtime,
    session: Session,
    principal: Principal,
    request_id: int | str,
    action: str,
    body: Any,
    if_match: int | None,
) -> Request:
    req = visible(session=session, principal=principal, request_id=request_id)
    if if_match is not None and req.version != if_match:
        raise StaleVersion(
            f"request {req.number} is at version {req.version}, not {if_match}; reload it and retry",
            current_version=req.version,
        )
    actor, now = principal.actor, rt.now()
    clocks = open_deadlines(session=session, req=req)
    snap = snapshot(req, clocks)
    rt.workflows.check(req.workflow_name, req.workflow_version, snap, action, actor=actor, now=now)
    payload = parse_body(action, body)
    # Bound below, after the step; its timeline entry names them as `attachments`.
    attachment_ids: list[int] = payload.pop("attachment_ids", None) or []
    if attachment_ids:
        payload["attachments"] = attachment_ids
    supervision.check(
        settings=rt.settings,
        calendar=rt.calendar,
        action=action,
        payload=payload,
        clocks={d.kind: d for d in clocks},
        pending_extension=req.pending_extension,
        now=now,
    )
    _validate_references(session, req, action, payload, principal)
    outcome = rt.workflows.fire(
        req.workflow_name,
        req.workflow_version,
        snap,
        action,
        actor=actor,
        payload=payload,
        now=now,
    )
    _apply(
        session,
        rt,
        req,
        outcome,
        overrides=_overrides_if_starting(session, req, outcome),
        deadlines=clocks,
    )
    attachments.bind(
        session=session,
        settings=rt.settings,
        principal=principal,
        request=req,
        ids=attachment_ids,
        timeline_seq=req.timeline_seq,
        now=now,
    )
    number = req.number
    try:
        session.flush()
    except StaleDataError:
        message = f"request {number} was changed meanwhile; reload it and retry"
        raise (StaleVersion if if_match is not None else ChangedMeanwhile)(message) from None
    return req


def _overrides_if_starting(
    session: Session, req: Request, outcome: Outcome
) -> Mapping[str, str] | None:
    """The category's time limits, read only when the outcome starts a deadline."""
    if not any(e.op == "start" for e in outcome.deadlines):
        return None
    category = directory.category(session=session, code=req.category_code)
    return category.time_limits if category else None


def _validate_references(
    session: Session, req: Request, action: str, payload: dict[str, Any], principal: Principal
) -> None:
    """What the input names must exist and fit: departments, the request to merge into, the
    departments a request is delegated to (below its lead, without an open task already),
    the task an action is about (one of this request's)."""
    if action in ("dispatch", "reassign"):
        codes = [payload["lead_department"], *payload.get("co_departments", [])]
        _known_departments(session, codes)
        if action == "reassign" and payload["lead_department"] == req.lead_department_code:
            raise InvalidInput(
                "lead_department: it already leads this request; name another department",
                code="same_lead",
            )
    elif action == "merge":
        _merge_target(session, req, payload)
    elif action == "delegate":
        _delegation(session, req, payload)
    elif action in ("task_sign", "task_reply", "cancel_task"):
        task_id = payload["task_id"]
        if not any(t.id == task_id for t in req.tasks):
            raise UnknownReference(
                f"task_id: request {req.number} has no task {task_id}",
                kind="task",
                codes=[str(task_id)],
                field="task_id",
            )


def _known_departments(session: Session, codes: Sequence[str], *, field: str | None = None) -> None:
    missing = sorted(set(codes) - directory.known_departments(session=session, codes=codes))
    if missing:
        where = f"{field}: " if field else ""
        raise UnknownReference(
            f"{where}unknown department(s): {', '.join(missing)}",
            kind="department",
            codes=missing,
            field=field,
        )


def _merge_target(session: Session, req: Request, payload: dict[str, Any]) -> None:
    target_id = payload["target_id"]
    if target_id == req.id:
        raise InvalidInput(
            "target_id: a request cannot be merged into itself", code="merge_into_itself"
        )
    target = repo.by_id(session, target_id)
    if target is None:
        raise UnknownReference(
            f"target_id: no request {target_id}",
            kind="request",
            codes=[str(target_id)],
            field="target_id",
        )
    if target.state in ("rejected", "merged"):
        raise InvalidInput(
            f"target_id: request {target.number} is {target.state}",
            code="merge_target_closed",
        )


def _delegation(session: Session, req: Request, payload: dict[str, Any]) -> None:
    """下派 goes down the tree only: to departments below the lead, one open task each."""
    codes: list[str] = payload["departments"]
    _known_departments(session, codes, field="departments")
    lead = req.lead_department_code or ""
    below = directory.subtree(session=session, code=lead) - {lead}
    if outside := sorted(set(codes) - below):
        raise InvalidInput(
            f"departments: {', '.join(outside)} not below {lead}; a request is delegated "
            "to the lead department's own sub-units",
            code="not_below_lead",
        )
    if taken := sorted({t.department_code for t in req.tasks if t.open} & set(codes)):
        raise InvalidInput(
            f"departments: {', '.join(taken)} already have an open task on this request",
            code="task_already_open",
        )


def system_outcome(
    *,
    rt: Runtime,
    req: Request,
    action: str,
    payload: Mapping[str, Any],
    now: datetime,
    deadlines: Sequence[Deadline] = (),
    collections: Collections | None = None,
) -> Outcome:
    """Ask the engine for a timer-driven action (warn, overdue, escalate, auto_close, the
    end of a suspension) fired as the system; `deadlines` are the request's open ones, and
    `collections` its co-departments and tasks when the caller read them (`snapshot`).
    Pure: it writes nothing, and raises if the workflow refuses."""
    workflow, version = _WORKFLOW(req)
    return rt.workflows.fire(
        workflow,
        version,
        snapshot(req, deadlines, collections),
        action,
        actor=SYSTEM,
        payload=payload,
        now=now,
    )


def apply_system(
    *,
    rt: Runtime,
    session: Session,
    req: Request,
    outcome: Outcome,
    overrides: Mapping[str, str] | None = None,
    deadlines: list[Deadline] | None = None,
    departments: notify.Departments | None = None,
    rows: Rows | None = None,
    with_tasks: Callable[[], None] | None = None,
) -> None:
    """Persist what `system_outcome` returned.

    The worker passes the category's time limits, the request's open deadlines and the
    departments, read once for all the steps of a batch, `rows` to take the batch's
    timeline rows and events, and `with_tasks` to add its tasks' deadlines to `deadlines`
    when a step reads them (see `_apply`)."""
    if overrides is None:
        overrides = _overrides_if_starting(session, req, outcome)
    _apply(
        session,
        rt,
        req,
        outcome,
        overrides=overrides,
        deadlines=deadlines,
        departments=departments,
        rows=rows,
        with_tasks=with_tasks,
    )


def allowed_actions(*, rt: Runtime, session: Session, req: Request, actor: Actor) -> list[str]:
    """The actions this actor may take on the request now."""
    return allowed_for(rt=rt, session=session, reqs=[req], actor=actor)[req.id]


def allowed_for(
    *, rt: Runtime, session: Session, reqs: Sequence[Request], actor: Actor
) -> dict[int, list[str]]:
    """The actions this actor may take now on each of these requests (one read of their
    deadlines)."""
    now = rt.now()
    clocks = deadlines_service.open_of_requests(session=session, request_ids=[r.id for r in reqs])
    return {
        r.id: rt.workflows.allowed(
            r.workflow_name,
            r.workflow_version,
            snapshot(r, clocks.get(r.id, [])),
            actor,
            now=now,
        )
        for r in reqs
    }


# ---- lists: what the API's pages and the console's lists call --------------------------

Filters = repo.Filters
LIST_LIMIT = 200  # the most a console list shows
CURSOR_KIND = "r"


def after_id(cursor: str | None) -> int | None:
    """The id a page cursor of the requests' list continues after."""
    return paging.after_id(CURSOR_KIND, cursor)


# A search (`Filters.text`): each word costs four LIKE comparisons over the listed rows.
SEARCH_MAX_CHARS = 100
SEARCH_MAX_WORDS = 8


def search_text(q: str | None) -> str | None:
    """A search's words for `Filters.text`, single-spaced; None when it has none.
    InvalidInput past SEARCH_MAX_CHARS characters or SEARCH_MAX_WORDS words, refused
    rather than run."""
    words = (q or "").split()
    if not words:
        return None
    text = " ".join(words)
    if len(text) > SEARCH_MAX_CHARS or len(words) > SEARCH_MAX_WORDS:
        raise InvalidInput(
            f"q: at most {SEARCH_MAX_CHARS} characters in at most {SEARCH_MAX_WORDS} words",
            field="q",
        )
    return text


def page(
    *,
    session: Session,
    principal: Principal,
    filters: Filters,
    after: int | None,
    limit: int,
) -> tuple[Sequence[Request], str | None]:
    """The requests the caller may see, newest first, and the cursor of the next page."""
    filters = replace(filters, scope=scope_of(session=session, principal=principal))
    if filters.external_id is not None and sees_public_view(principal):
        # external_id is unique per submitter: an integration finds its own request
        filters = replace(filters, submitted_by=principal.id)
    rows, more = repo.page(session, filters, after_id=after, limit=limit)
    return rows, paging.encode(CURSOR_KIND, rows[-1].id) if more and rows else None


def by_deadline(
    *, session: Session, filters: Filters, limit: int = LIST_LIMIT
) -> tuple[Sequence[Request], bool]:
    """The nearest deadline first; returns whether more than `limit` match."""
    return repo.by_deadline(session, filters, limit=limit)


def by_level(
    *, session: Session, filters: Filters, limit: int = LIST_LIMIT
) -> tuple[Sequence[Request], bool]:
    """The highest escalation level first, then the nearest deadline."""
    return repo.by_level(session, filters, limit=limit)


def count(*, session: Session, filters: Filters) -> int:
    return repo.count(session, filters)


def count_by_state(*, session: Session) -> dict[str, int]:
    """How many requests are in each state (states without one left out)."""
    return repo.count_by_state(session)


def count_overdue(*, session: Session, states: Sequence[str]) -> int:
    """How many requests in `states` are overdue now."""
    return repo.count_overdue(session, states=states)


def count_by_level(*, session: Session, states: Sequence[str]) -> dict[int, int]:
    """How many requests in `states` are at each escalation level above 0."""
    return repo.count_by_level(session, states=states)


def marker(*, session: Session, lists: Sequence[Filters], salt: str = "") -> str:
    """A value that changes whenever a request enters, leaves or changes in these lists."""
    return repo.marker(session, *lists, salt=salt)


def returns_of(*, session: Session, request_ids: Sequence[int]) -> dict[int, TimelineEntry]:
    """The latest `return` row of each request (who returned it and why)."""
    return repo.returns_of(session, request_ids)


def actor_names(*, session: Session, actors: Sequence[str]) -> dict[str, str]:
    """Display names for timeline actors: `user:…` and `key:…`."""
    return repo.actor_names(session, actors)


def find_id(*, session: Session, text: str) -> int | None:
    """A request's id from its number (HY-20261118-000001) or its id written as digits."""
    return repo.id_for(session, text)
