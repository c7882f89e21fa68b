"""`/healthz`: answers without authentication. The database, the workers' last ticks, the
outbox backlog, dead deliveries, and the years the holiday calendar does not know."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from huying import __version__
from huying.alerts import service as alerts
from huying.api.deps import Rt
from huying.api.problems import PROBLEM
from huying.deadlines import service as deadlines

router = APIRouter(tags=["health"])


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
    except SQLAlchemyError as exc:
        body["status"] = "unavailable"
        body["database"] = f"unreachable: {exc.__class__.__name__}"
    known = rt.calendar.official_years
    body["calendar"] = {
        "holidays": rt.settings.calendar.holidays,
        # the gap shows before a deadline reaches it: a year after this one needs a new
        # chinese-calendar release
        "last_official_year": max(known) if known else None,
        "years_without_official_holidays": sorted(rt.calendar.missing_years),
    }
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
