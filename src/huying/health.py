"""`/healthz`: answers without authentication. The database, the workers' last ticks, the
outbox backlog, dead deliveries, the escalation rungs that alert nobody, and the years the
holiday calendar does not know. Also the startup log of those rungs (`log_escalation_gaps`),
which the API and the worker write when they start."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from huying import __version__
from huying.alerts import service as alerts
from huying.api.deps import Rt
from huying.api.problems import PROBLEM
from huying.deadlines import service as deadlines
from huying.directory import service as directory
from huying.directory.notify import Gap
from huying.errors import Unavailable
from huying.runtime import Runtime

router = APIRouter(tags=["health"])
log = logging.getLogger("huying.health")

# Gaps written one line each at startup; past this, one line says how many more.
STARTUP_GAP_LINES = 20


@router.get(
    "/healthz",
    responses={
        503: {
            "description": "the database does not answer: a problem document with the same fields",
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    },
)
def healthz(rt: Rt) -> JSONResponse:
    """200 with `status` "ok" while the database answers; 503, a problem document with the
    same fields (`code` "unavailable"), when it does not. What needs a person but not a
    restart leaves it 200 and "ok", with a field of its own, so that a load balancer's probe
    does not take a serving instance out for a configuration gap:
    `escalation_gaps` (each {department, level} whose rung alerts nobody; department null
    for requests with no lead department) and `calendar.years_without_official_holidays`
    (years a deadline met without official holidays, and this year, or next year from
    `calendar.warn_from` on, while the holiday package and the config know none of its
    days)."""
    now = rt.now()
    body: dict[str, Any] = {
        "status": "ok",
        "version": __version__,
        "time": now.astimezone(rt.calendar.tz).isoformat(),
    }
    try:
        with rt.sessions() as s:
            beats = deadlines.heartbeats(session=s, limit=20)
            backlog = alerts.backlog(session=s)
            gaps = directory.escalation_gaps(session=s, settings=rt.settings)
        body["database"] = "ok"
        body["workers"] = [
            {
                "name": b.name,
                "last_tick_at": b.last_tick_at.astimezone(rt.calendar.tz).isoformat(),
                "seconds_since_tick": round((now - b.last_tick_at).total_seconds(), 1),
            }
            for b in beats
        ]
        body["last_tick_at"] = body["workers"][0]["last_tick_at"] if beats else None
        body["outbox"] = {
            "events_not_fanned_out": backlog.events_not_fanned_out,
            "deliveries_pending": backlog.deliveries_pending,
        }
        body["deliveries_dead"] = backlog.deliveries_dead
        body["escalation_gaps"] = [g.as_dict() for g in gaps]
    except SQLAlchemyError as exc:
        body["status"] = "unavailable"
        body["database"] = f"unreachable: {exc.__class__.__name__}"
    body["calendar"] = calendar_health(rt, rt.local_date(now))
    if body["status"] == "ok":
        return JSONResponse(body)
    problem = {
        "type": "about:blank",
        "title": "Service unavailable",
        "status": 503,
        "detail": body["database"],
        "code": "unavailable",
    }
    return JSONResponse({**body, **problem}, status_code=503, media_type=PROBLEM)


def calendar_health(rt: Runtime, today: date) -> dict[str, Any]:
    """The holiday calendar's part of /healthz. A year is listed once a deadline met it
    without official data, and before any does: this year, and next year from
    `calendar.warn_from` on (the State Council publishes it around November, and a
    chinese-calendar release follows), unless the config names one of its days."""
    cal = rt.calendar
    known = cal.official_years
    met = {y for y in cal.missing_years if not cal.knows_year(y)}
    expected = cal.unannounced(today, warn_from=rt.settings.calendar.warn_from_day)
    return {
        "holidays": rt.settings.calendar.holidays,
        "last_official_year": max(known) if known else None,
        "years_without_official_holidays": sorted(met.union(expected)),
        "warn_from": rt.settings.calendar.warn_from,
    }


def describe_gap(gap: Gap, *, dispatch_center: str | None) -> str:
    """One gap as `huying directory check` and the startup log write it."""
    if gap.department is not None:
        return str(gap)
    who = (
        f"(no lead department → dispatch_center {dispatch_center})"
        if dispatch_center
        else "(no lead department; dispatch_center is not set)"
    )
    return f"{who}: level {gap.level} notifies nobody"


def log_escalation_gaps(rt: Runtime, *, limit: int = STARTUP_GAP_LINES) -> list[Gap]:
    """Warn, when a process starts, of each rung that would alert nobody: an escalation
    that reaches no one is found now, not when a late request gets there. One read of the
    directory; a database that does not answer is logged and startup goes on (the worker
    and /healthz carry on without it). Returns the gaps found (none when it could not read)."""
    try:
        with rt.transaction() as s:
            gaps = directory.escalation_gaps(session=s, settings=rt.settings)
    except (SQLAlchemyError, Unavailable) as exc:
        log.warning(
            "could not check the escalation ladder against the directory (%s); "
            "run `huying directory check` once the database answers",
            exc.__class__.__name__,
        )
        return []
    center = rt.settings.dispatch_center
    for gap in gaps[:limit]:
        log.warning("escalation alerts nobody: %s", describe_gap(gap, dispatch_center=center))
    if len(gaps) > limit:
        log.warning(
            "escalation alerts nobody: … and %d more (`huying directory check` lists them all)",
            len(gaps) - limit,
        )
    return gaps
