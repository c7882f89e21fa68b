"""The three rates and the on-time figures, aggregated in the database.

A request belongs to the period in which it was received (`created_at` in [from, to)); every
figure of a row is about those requests as they stand when the report runs. One SQL statement:

1. `request_facts`: one row per request of the period, with a 0/1 column per count. Its own
   columns say most (lead department, state, rating, resolved, reopen and return counts,
   overdue, escalation level); two LEFT JOINs on `deadlines` add the signing (the sign deadline
   that ended in `met` or `missed`) and the first reply round (the reply deadline that the
   signing started). Each matches at most one row, so nothing is grouped per request;
2. the working seconds from dispatch to signing and from signing to the first reply, from the
   day table of `huying.reports.worktime`, joined on the UTC day of each instant;
3. grouped by the chosen key: sums, means, and the 90th percentile by nearest rank
   (`percentile_disc` on PostgreSQL, ranks from window functions on SQLite; the same value).

Python sees one row per group: names are looked up, rates divided and rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, SQLColumnExpression, and_, case, func, or_, select, text
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from huying.calendar import BusinessCalendar
from huying.deadlines.models import Deadline
from huying.directory import repository as directory
from huying.errors import InvalidInput
from huying.reports import worktime
from huying.reports.schemas import GroupBy, RatesRow
from huying.requests.models import Request
from huying.workflow.library import SATISFIED

REACH = timedelta(days=3700)  # how far back a period may start: about ten years
HOUR = 3600.0
URGENCY_NAMES = {"normal": "一般", "urgent": "紧急"}
NO_KEY_NAMES: dict[str, str] = {
    "department": "未派单",
    "category": "无类别",
    "chain": "无产业链",
    "grid": "无网格",
    "urgency": "未定",
}


COUNTS = (
    "received",
    "dispatched",
    "signed",
    "signed_on_time",
    "replied",
    "replied_on_time",
    "closed",
    "resolved",
    "rated",
    "satisfied",
    "reopened",
    "returned",
    "overdue_now",
)


@dataclass(frozen=True)
class Period:
    start: datetime  # included
    end: datetime  # excluded


def period(
    *,
    tz: Any,
    now: datetime,
    start: str | None = None,
    end: str | None = None,
    month: str | None = None,
) -> Period:
    """[from, to) from the query. A date or a time without an offset is read in the calendar's
    time zone; the default is the current month there."""
    if month is not None:
        if start is not None or end is not None:
            raise InvalidInput("month: give either month or from/to, not both")
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise InvalidInput(f"month: expected YYYY-MM, e.g. 2026-11, not {month!r}") from None
        return _checked(_month(first, tz), now)
    this_month = _month(now.astimezone(tz).date().replace(day=1), tz)
    chosen = Period(
        start=_instant("from", start, tz) if start is not None else this_month.start,
        end=_instant("to", end, tz) if end is not None else this_month.end,
    )
    return _checked(chosen, now)


def _month(first: date, tz: Any) -> Period:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Period(
        datetime.combine(first, time(), tzinfo=tz), datetime.combine(following, time(), tzinfo=tz)
    )


def _instant(name: str, value: str, tz: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{name}: expected a date (2026-11-01) or a time (2026-11-01T00:00:00+08:00), "
            f"not {value!r}"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=tz)
    if not 1970 <= moment.year <= 9000:
        raise InvalidInput(f"{name}: a year between 1970 and 9000, please")
    return moment


def _checked(p: Period, now: datetime) -> Period:
    if p.start >= p.end:
        raise InvalidInput("from must be before to")
    if p.start < now - REACH:
        raise InvalidInput("from: a report reaches back at most ten years")
    return p


def _key(group_by: GroupBy, grid_len: int) -> SQLColumnExpression[Any]:
    if group_by == "department":
        return Request.lead_department_code
    if group_by == "category":
        return Request.category_code
    if group_by == "chain":
        return Request.chain_code
    if group_by == "grid":
        return func.substr(Request.grid_code, 1, grid_len)
    return Request.urgency


def _is(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def request_facts(
    *,
    calendar: BusinessCalendar,
    escalation_levels: Sequence[int],
    span: Period,
    group_by: GroupBy,
    grid_len: int = 9,
    now: datetime,
) -> Select[*tuple[Any, ...]]:
    """One row per request received in `span`: its id, its group key, a 0/1 column per count
    and its working seconds to sign and to (first) reply."""
    # The signing: the sign deadline that ended because the lead department signed (met or
    # missed; a return or a merge cancels it instead). A signed request never goes back to
    # `dispatched`, so a request has at most one.
    s = aliased(Deadline, name="signing")
    # The first reply round: the reply deadline the signing started, at the same instant (a
    # reopen starts a later round at its own, later instant). At most one per request.
    f = aliased(Deadline, name="first_reply")
    # Deadlines end by `now` at the latest; the table has a spare day on each side for clocks
    # a little apart. (Not span.end: a `to` far in the future would make a huge table.)
    table = worktime.build_day_table(calendar, span.start, max(now, span.start))
    days = table.as_values().cte("workdays")
    w_dispatch, w_sign, w_reply = (days.alias(n) for n in ("w_dispatch", "w_sign", "w_reply"))
    sign_secs = worktime.working_seconds_sql(w_sign, s.completed_at) - (
        worktime.working_seconds_sql(w_dispatch, s.started_at)
    )
    reply_secs = worktime.working_seconds_sql(w_reply, f.completed_at) - (
        worktime.working_seconds_sql(w_sign, s.completed_at)
    )
    replied = f.completed_at.is_not(None)
    return (
        select(
            Request.id.label("id"),
            _key(group_by, grid_len).label("key"),
            # A lead department now, or one that returned it (a return clears the lead).
            _is(or_(Request.lead_department_code.is_not(None), Request.return_count > 0)).label(
                "dispatched"
            ),
            _is(s.id.is_not(None)).label("signed"),
            _is(s.status == "met").label("signed_on_time"),
            _is(replied).label("replied"),
            _is(and_(replied, f.status == "met")).label("replied_on_time"),
            _is(Request.state == "closed").label("closed"),
            _is(and_(Request.state == "closed", Request.resolved.is_(True))).label("resolved"),
            _is(Request.rating.is_not(None)).label("rated"),
            _is(Request.rating.in_(sorted(SATISFIED))).label("satisfied"),
            _is(Request.reopen_count > 0).label("reopened"),
            _is(Request.return_count > 0).label("returned"),
            _is(Request.overdue.is_(True)).label("overdue_now"),
            *[
                _is(Request.escalation_level >= level).label(f"escalated_{level}")
                for level in escalation_levels
            ],
            sign_secs.label("sign_secs"),
            case((replied, reply_secs)).label("reply_secs"),
        )
        .select_from(Request)
        .outerjoin(
            s,
            and_(
                s.request_id == Request.id,
                s.kind == "sign",
                s.completed_at.is_not(None),
                s.status.in_(("met", "missed")),
                # implied (a deadline starts after its request is received); it lets the
                # database drop other periods' deadlines before it joins
                s.started_at >= span.start,
            ),
        )
        .outerjoin(
            f,
            and_(
                f.request_id == Request.id,
                f.kind == "reply",
                f.started_at == s.completed_at,
                f.started_at >= span.start,
            ),
        )
        .outerjoin(w_dispatch, w_dispatch.c.day == worktime.day_of(s.started_at))
        .outerjoin(w_sign, w_sign.c.day == worktime.day_of(s.completed_at))
        .outerjoin(w_reply, w_reply.c.day == worktime.day_of(f.completed_at))
        .where(Request.created_at >= span.start, Request.created_at < span.end)
    )


def rates(
    *,
    session: Session,
    calendar: BusinessCalendar,
    escalation_levels: Sequence[int],
    span: Period,
    group_by: GroupBy,
    grid_len: int = 9,
    now: datetime,
) -> list[RatesRow]:
    """One row per group of the requests received in `span`; see the module's docstring."""
    dialect = session.get_bind().dialect.name
    facts = request_facts(
        calendar=calendar,
        escalation_levels=escalation_levels,
        span=span,
        group_by=group_by,
        grid_len=grid_len,
        now=now,
    ).subquery("facts")
    counted = [n for n in COUNTS if n != "received"] + [
        f"escalated_{level}" for level in escalation_levels
    ]

    if dialect == "postgresql":
        source: Any = facts

        def p90(name: str) -> ColumnElement[Any]:
            return func.percentile_disc(0.9).within_group(source.c[name])

    else:  # nearest rank from window functions: the value at rank ceil(0.9 n)
        ranked = [
            func.row_number()
            .over(partition_by=[facts.c.key, facts.c[name].is_(None)], order_by=facts.c[name])
            .label(f"{name}_rank")
            for name in ("sign_secs", "reply_secs")
        ] + [
            func.count(facts.c[name]).over(partition_by=facts.c.key).label(f"{name}_n")
            for name in ("sign_secs", "reply_secs")
        ]
        source = select(*facts.c, *ranked).subquery("ranked")

        def p90(name: str) -> ColumnElement[Any]:
            value, rank, n = source.c[name], source.c[f"{name}_rank"], source.c[f"{name}_n"]
            return func.min(case((and_(value.is_not(None), rank * 10 >= n * 9), value)))

    c = source.c
    query = select(
        c.key,
        func.count().label("received"),
        *[func.sum(c[n]).label(n) for n in counted],
        func.avg(c.sign_secs).label("sign_mean"),
        p90("sign_secs").label("sign_p90"),
        func.avg(c.reply_secs).label("reply_mean"),
        p90("reply_secs").label("reply_p90"),
    ).group_by(c.key)

    if dialect == "postgresql":
        # Hash joins and sorts over a month's requests fit in memory instead of spilling.
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    result = session.execute(query).mappings().all()
    names = group_names(session, group_by)
    rows = [row_from(m, group_by, names, escalation_levels) for m in result]
    return sorted(rows, key=lambda r: (r.key is None, r.key or ""))


def group_names(session: Session, group_by: GroupBy) -> dict[str, str]:
    """Code → name of the groups that have names (departments, categories, chains, urgencies)."""
    if group_by == "department":
        return {d.code: d.name for d in directory.departments(session)}
    if group_by == "category":
        return {c.code: c.name for c in directory.categories(session)}
    if group_by == "chain":
        return {c.code: c.name for c in directory.chains(session)}
    if group_by == "urgency":
        return dict(URGENCY_NAMES)
    return {}


def _int(value: Any) -> int:
    return int(value or 0)


def _hours(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / HOUR, 2)


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def row_from(
    m: Any, group_by: GroupBy, names: dict[str, str], escalation_levels: Sequence[int]
) -> RatesRow:
    """A row of the API from one aggregated row: name looked up, hours and rates rounded."""
    key = m["key"]
    counts = {name: _int(m[name]) for name in COUNTS}
    return RatesRow(
        key=key,
        name=NO_KEY_NAMES[group_by] if key is None else names.get(key, key),
        **counts,
        escalations={str(level): _int(m[f"escalated_{level}"]) for level in escalation_levels},
        sign_hours_mean=_hours(m["sign_mean"]),
        sign_hours_p90=_hours(m["sign_p90"]),
        reply_hours_mean=_hours(m["reply_mean"]),
        reply_hours_p90=_hours(m["reply_p90"]),
        response_rate=_rate(counts["signed_on_time"], counts["dispatched"]),
        on_time_rate=_rate(counts["replied_on_time"], counts["replied"]),
        resolution_rate=_rate(counts["resolved"], counts["closed"]),
        satisfaction_rate=_rate(counts["satisfied"], counts["rated"]),
    )
