"""The input rules of supervision that need the configuration or the calendar, checked before
the engine fires: a suspension's reason code and length, an extension's length within the cap
of its deadline, a supervision's level within the ladder. Each failure is a 422 naming the
field, and nothing is written.

The rules of state and time (a request that is late cannot be suspended or extended, the
counts) are the workflow's guards (`huying.workflow.library`), a 409 saying why. Every entry
point (API, console, CLI) acts through `huying.requests.service.act`, which calls `check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from huying.calendar import BusinessCalendar
from huying.deadlines.models import Deadline
from huying.durations import Duration, parse_duration
from huying.errors import InvalidFields
from huying.settings import Settings


def _invalid(field: str, message: str, *, code: str) -> InvalidFields:
    return InvalidFields(
        f"{field}: {message}",
        errors=[{"type": code, "loc": ["body", field], "msg": message}],
        code=code,
    )


def _positive(field: str, text: str) -> Duration:
    duration = parse_duration(text)
    if duration.seconds <= 0 and duration.days <= 0:
        raise _invalid(field, "must be longer than zero", code="duration_not_positive")
    return duration


def check(
    *,
    settings: Settings,
    calendar: BusinessCalendar,
    action: str,
    payload: Mapping[str, Any],
    clocks: Mapping[str, Deadline],
    pending_extension: Mapping[str, Any] | None,
    now: datetime,
) -> None:
    """Raise InvalidFields for input the configuration does not allow; `clocks` are the
    request's open deadlines by kind. An approval without its own `extend_by` grants what was
    asked: within the cap still (a changed config may have lowered it)."""
    if action == "request_suspension":
        _suspension(settings, calendar, payload, now)
    elif action == "request_extension" and payload.get("extend_by"):
        _extension(settings, calendar, str(payload["extend_by"]), clocks.get("reply"))
    elif action == "decide_extension" and payload.get("approved"):
        asked = payload.get("extend_by") or (pending_extension or {}).get("extend_by")
        if asked:
            _extension(settings, calendar, str(asked), clocks.get("reply"))
    elif action == "supervise" and payload.get("level") is not None:
        top = settings.ladder_top
        if int(payload["level"]) > top:
            raise _invalid(
                "level",
                f"at most {top}, the escalation ladder's top level",
                code="level_above_ladder",
            )


def _suspension(
    settings: Settings, calendar: BusinessCalendar, payload: Mapping[str, Any], now: datetime
) -> None:
    reasons = settings.suspension.reasons
    code = payload.get("reason_code")
    if code not in reasons:
        raise _invalid(
            "reason_code",
            f"{code!r} is not one of {', '.join(reasons)}",
            code="unknown_reason_code",
        )
    length = _positive("length", str(payload.get("length")))
    longest = parse_duration(settings.suspension.max_length)
    if calendar.add(now, length) > calendar.add(now, longest):
        raise _invalid(
            "length",
            f"at most {longest.text} (suspension.max_length)",
            code="suspension_too_long",
        )


def _extension(
    settings: Settings, calendar: BusinessCalendar, text: str, reply: Deadline | None
) -> None:
    """`extend_by` > 0, and with what this deadline's earlier extensions added at most
    `extension.max_length` in total, both counted in working time from its due instant."""
    by = _positive("extend_by", text)
    if reply is None:  # no reply deadline runs: the workflow's guard says why
        return
    cap = parse_duration(settings.extension.max_length)
    due = reply.due_at
    added = calendar.working_seconds_between(due, calendar.add(due, by))
    allowed = calendar.working_seconds_between(due, calendar.add(due, cap))
    if (reply.extended_seconds or 0) + added > allowed + 0.5:
        already = (
            f"; this deadline was already extended by {(reply.extended_seconds or 0) / 3600:g} "
            "working hours"
            if reply.extended_seconds
            else ""
        )
        raise _invalid(
            "extend_by",
            f"at most {cap.text} in total per deadline (extension.max_length){already}",
            code="extension_too_long",
        )
