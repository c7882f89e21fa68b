"""Request use cases. Every state change goes through `_apply`: the engine decides, and
state, timeline row, deadline changes and outbox events are written in one transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from huying.alerts.models import Event
from huying.auth.service import Principal
from huying.calendar import BusinessCalendar
from huying.deadlines.models import Deadline
from huying.deadlines.service import DeadlinePlanner
from huying.directory import repository as directory
from huying.directory import service as directory_service
from huying.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from huying.reports.facts import seconds_rounded
from huying.requests import repository as repo
from huying.requests.models import Request, RequestCoDepartment, RequestReturn, TimelineEntry
from huying.requests.schemas import ACTION_BODIES, NoteBody, SubmitIn
from huying.runtime import Runtime
from huying.workflow.context import SYSTEM, Actor, Outcome, Snapshot

SUBMIT_ROLES = ("integration", "dispatcher", "admin")


def planner(rt: Runtime) -> DeadlinePlanner:
    return DeadlinePlanner(settings=rt.settings, calendar=rt.calendar)


def snapshot(req: Request) -> Snapshot:
    return Snapshot(
        state=req.state,
        lead_department=req.lead_department_code,
        co_departments=tuple(req.co_department_codes),
        return_count=req.return_count,
        reopen_count=req.reopen_count,
        escalation_level=req.escalation_level,
        rating=req.rating,
        resolved=req.resolved,
        pending_extension=req.pending_extension,
    )


def visible(*, session: Session, principal: Principal, request_id: int) -> Request:
    """The request if the caller may see it; 404 otherwise, the same as for one that does not exist."""
    scope = principal.department if principal.role == "department" else None
    req = repo.get(session, request_id, department=scope)
    if req is None:
        raise NotFound(f"no request {request_id}")
    return req


def _hash_body(body: SubmitIn) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _event_payload(req: Request) -> dict[str, Any]:
    return {
        "id": req.id,
        "number": req.number,
        "state": req.state,
        "category": req.category_code,
        "enterprise_uscc": req.enterprise_uscc,
        "lead_department": req.lead_department_code,
        "escalation_level": req.escalation_level,
        "overdue": req.overdue,
    }


_FIELD = {"lead_department": "lead_department_code"}


def _apply(
    session: Session,
    rt: Runtime,
    req: Request,
    outcome: Outcome,
    *,
    overrides: Mapping[str, str] | None,
    deadlines: list[Deadline] | None = None,
) -> list[Deadline]:
    """Persist one outcome of the engine. The only place a request's state is written."""
    now = outcome.timeline.at
    req.state = outcome.state
    for name, value in outcome.changes.items():
        if name == "co_departments":
            req.co_departments = [RequestCoDepartment(department_code=c) for c in value]
        else:
            setattr(req, _FIELD.get(name, name), value)
    req.timeline_seq += 1
    req.updated_at = now
    t = outcome.timeline
    session.add(
        TimelineEntry(
            request=req,
            seq=req.timeline_seq,
            action=t.action,
            from_state=t.from_state,
            to_state=t.to_state,
            actor=t.actor,
            role=t.role,
            at=now,
            note=t.note,
            data=dict(t.data),
        )
    )
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
    req.overdue = any(d.status == "missed" for d in still_open)
    for draft in outcome.events:
        session.add(
            Event(
                uid=f"msg_{uuid.uuid4().hex}",
                type=draft.type,
                request=req,
                occurred_at=now,
                data={"request": _event_payload(req), **draft.data},
            )
        )
    return still_open


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


def submit(
    *,
    rt: Runtime,
    session: Session,
    principal: Principal,
    body: SubmitIn,
    idempotency_key: str | None,
) -> tuple[Request, bool]:
    """Take in a request and route it at once. Returns (request, created)."""
    if principal.role not in SUBMIT_ROLES:
        raise Forbidden(f"role {principal.role!r} may not submit requests")
    body_hash = _hash_body(body)
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 200:
            raise InvalidInput("Idempotency-Key: 1 to 200 characters")
        existing = repo.by_idempotency(session, principal.id, idempotency_key)
        if existing is not None:
            return _replayed(existing, body_hash, idempotency_key), False

    enterprise = directory.enterprise(session, body.enterprise_uscc)
    if enterprise is None:
        raise InvalidInput(f"enterprise_uscc: no enterprise {body.enterprise_uscc} is registered")
    category = directory.category(session, body.category)
    if category is None or not category.active:
        raise InvalidInput(f"category: {body.category!r} is not on the call list")
    urgency = body.urgency or category.urgency
    if urgency not in rt.settings.time_limits:
        raise InvalidInput(
            f"urgency: {urgency!r} is not one of {', '.join(rt.settings.time_limits)}"
        )

    now = rt.now()
    spec = rt.workflows.latest(rt.settings.workflows.default)
    grid_code = body.grid_code or enterprise.grid_code
    req = Request(
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
        idempotency_hash=body_hash if idempotency_key else None,
        created_at=now,
        updated_at=now,
    )
    # The id comes first, so that the number and every event of the submit can name it.
    req.id = _next_request_id(session)
    req.number = f"HY-{rt.local_date(now):%Y%m%d}-{req.id:06d}"
    session.add(req)
    overrides = category.time_limits
    started = rt.workflows.start(
        spec.name,
        spec.version,
        actor=principal.actor,
        now=now,
        data={
            "source": body.source,
            **({"external_id": body.external_id} if body.external_id else {}),
        },
    )
    deadlines = _apply(session, rt, req, started, overrides=overrides, deadlines=[])
    route = directory_service.route(
        session=session, category=category, grid_code=grid_code, chain_code=enterprise.chain_code
    )
    payload: dict[str, Any] = {}
    if route is not None:
        payload = {
            "lead_department": route.lead_department,
            "co_departments": list(route.co_departments),
            "rule_id": route.rule_id,
        }
    routed = rt.workflows.fire(
        spec.name, spec.version, snapshot(req), "route", actor=SYSTEM, payload=payload, now=now
    )
    _apply(session, rt, req, routed, overrides=overrides, deadlines=deadlines)
    session.flush()  # a concurrent submit with the same key fails here: see `replay`
    return req, True


def _next_request_id(session: Session) -> int:
    if session.get_bind().dialect.name == "postgresql":
        return int(
            session.scalar(text("SELECT nextval(pg_get_serial_sequence('requests', 'id'))")) or 0
        )
    # SQLite: every write transaction begins IMMEDIATE, so writers are serialised here.
    return int(session.scalar(select(func.max(Request.id))) or 0) + 1


def replay(
    *, session: Session, principal: Principal, body: SubmitIn, idempotency_key: str
) -> Request | None:
    """After a submit lost a race on its Idempotency-Key: the winner's request, if the bodies match."""
    existing = repo.by_idempotency(session, principal.id, idempotency_key)
    return None if existing is None else _replayed(existing, _hash_body(body), idempotency_key)


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
        raise InvalidInput(
            "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ),
            errors=exc.errors(include_url=False, include_context=False, include_input=False),
        ) from None
    return parsed.model_dump(exclude_none=True)


def act(
    *,
    rt: Runtime,
    session: Session,
    principal: Principal,
    request_id: int,
    action: str,
    body: Any,
    if_match: int | None,
) -> Request:
    req = visible(session=session, principal=principal, request_id=request_id)
    if if_match is not None and req.version != if_match:
        raise PreconditionFailed(
            f"request {req.number} is at version {req.version}, not {if_match}; reload it and retry",
            current_version=req.version,
        )
    actor = principal.actor
    snap = snapshot(req)
    rt.workflows.check(req.workflow_name, req.workflow_version, snap, action, actor=actor)
    payload = parse_body(action, body)
    _validate_references(session, req, action, payload, principal)
    outcome = rt.workflows.fire(
        req.workflow_name,
        req.workflow_version,
        snap,
        action,
        actor=actor,
        payload=payload,
        now=rt.now(),
    )
    _apply(session, rt, req, outcome, overrides=_overrides_if_starting(session, req, outcome))
    number = req.number
    try:
        session.flush()
    except StaleDataError:
        message = f"request {number} was changed meanwhile; reload it and retry"
        raise (PreconditionFailed if if_match is not None else Conflict)(message) from None
    return req


def _overrides_if_starting(
    session: Session, req: Request, outcome: Outcome
) -> Mapping[str, str] | None:
    """The category's time limits, read only when the outcome starts a deadline."""
    if not any(e.op == "start" for e in outcome.deadlines):
        return None
    category = directory.category(session, req.category_code)
    return category.time_limits if category else None


def _validate_references(
    session: Session, req: Request, action: str, payload: dict[str, Any], principal: Principal
) -> None:
    if action == "dispatch":
        codes = [payload["lead_department"], *payload.get("co_departments", [])]
        missing = sorted(set(codes) - directory.department_codes(session, codes))
        if missing:
            raise InvalidInput(f"unknown department(s): {', '.join(missing)}")
    elif action == "merge":
        target_id = payload["target_id"]
        if target_id == req.id:
            raise InvalidInput("target_id: a request cannot be merged into itself")
        target = session.get(Request, target_id)
        if target is None:
            raise InvalidInput(f"target_id: no request {target_id}")
        if target.state in ("rejected", "merged"):
            raise InvalidInput(f"target_id: request {target.number} is {target.state}")


def system_fire(
    *,
    rt: Runtime,
    session: Session,
    req: Request,
    action: str,
    payload: Mapping[str, Any],
    now: datetime,
    overrides: Mapping[str, str] | None = None,
    deadlines: list[Deadline] | None = None,
) -> Outcome:
    """Fire a timer-driven action (warn, overdue, escalate, auto_close) as the system.

    The worker passes the category's time limits and the request's open deadlines, loaded
    once for all the steps it fires on one deadline."""
    outcome = rt.workflows.fire(
        req.workflow_name,
        req.workflow_version,
        snapshot(req),
        action,
        actor=SYSTEM,
        payload=payload,
        now=now,
    )
    if overrides is None:
        overrides = _overrides_if_starting(session, req, outcome)
    _apply(session, rt, req, outcome, overrides=overrides, deadlines=deadlines)
    return outcome


def allowed_actions(*, rt: Runtime, req: Request, actor: Actor) -> list[str]:
    return rt.workflows.allowed(req.workflow_name, req.workflow_version, snapshot(req), actor)
