"""`/healthz`: answers without authentication; says whether the database answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from huying import __version__
from huying.api.deps import Rt

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(rt: Rt) -> JSONResponse:
    body: dict[str, Any] = {"status": "ok", "version": __version__}
    try:
        with rt.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        body["database"] = "ok"
    except SQLAlchemyError as exc:
        body["status"] = "unavailable"
        body["database"] = f"unreachable: {exc.__class__.__name__}"
    missing = sorted(rt.calendar.missing_years)
    body["calendar"] = {
        "holidays": rt.settings.calendar.holidays,
        "years_without_official_holidays": missing,
    }
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
