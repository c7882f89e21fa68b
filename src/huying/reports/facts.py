"""The reports' per-request facts, derived again from stored deadlines.

`huying.requests.service.record_facts` writes them as they happen; `backfill` sets them for
requests that are already stored (the migration that added the columns runs it). Both read
the same deadlines the same way:

- the signing is the first sign deadline to end `met` or `missed` (a return or a merge cancels
  it instead; in workflow v1 a signed request is never dispatched again, so there is one);
- the first reply round is the first reply deadline to end `met` or `missed` (the smallest
  id: a reopen starts a later round, after the earlier one ended);

and the working seconds between its start and its end, on the business calendar, rounded to
the second half up (`seconds_rounded`). SQLite keeps instants to about a millisecond in this
arithmetic, so there a back-filled figure can differ from the recorded one by a second. Working time is counted in SQL with `huying.reports.worktime`'s day table, so a
million requests take one UPDATE per fact rather than a million round trips.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, and_, func, select, update

from huying.calendar import BusinessCalendar
from huying.deadlines.models import Deadline
from huying.reports import worktime
from huying.requests.models import Request

ENDED = ("met", "missed")


def seconds_rounded(seconds: float) -> int:
    """Working seconds as stored: to the nearest second, halves up (as the SQL does)."""
    return math.floor(seconds + 0.5)


def backfill(conn: Connection, calendar: BusinessCalendar) -> int:
    """Set the four facts of every request from its deadlines; returns how many facts of
    requests were set: signings plus first replies."""
    ended = and_(Deadline.kind.in_(("sign", "reply")), Deadline.status.in_(ENDED))
    lo, hi = conn.execute(
        select(func.min(Deadline.started_at), func.max(Deadline.completed_at)).where(ended)
    ).one()
    if lo is None or hi is None:
        return 0
    days = worktime.build_day_table(calendar, lo, max(lo, hi)).as_values().cte("workdays")
    for kind, on_time, seconds in (
        ("sign", Request.sign_on_time, Request.sign_working_seconds),
        ("reply", Request.first_reply_on_time, Request.first_reply_working_seconds),
    ):
        finished = (Deadline.kind == kind, Deadline.status.in_(ENDED))
        first = (
            select(func.min(Deadline.id))
            .where(*finished, Deadline.completed_at.is_not(None))
            .group_by(Deadline.request_id)
        )
        a, b = days.alias("w_start"), days.alias("w_end")
        working = worktime.working_seconds_sql(
            b, Deadline.completed_at
        ) - worktime.working_seconds_sql(a, Deadline.started_at)
        ended_here = (
            select(
                Deadline.request_id.label("request_id"),
                (Deadline.status == "met").label("on_time"),
                worktime.floor_int(working + 0.5).label("seconds"),  # as `seconds_rounded`
            )
            .join(a, a.c.day == worktime.day_of(Deadline.started_at))
            .join(b, b.c.day == worktime.day_of(Deadline.completed_at))
            .where(Deadline.id.in_(first))
            .subquery("ended")
        )
        values: dict[Any, Any] = {on_time: ended_here.c.on_time, seconds: ended_here.c.seconds}
        conn.execute(update(Request).where(Request.id == ended_here.c.request_id).values(values))
    # (not the UPDATEs' row counts: SQLite reports none for a statement that begins WITH)
    signed = func.count(Request.sign_on_time)
    return int(conn.execute(select(signed + func.count(Request.first_reply_on_time))).scalar_one())
