"""The three rates and the on-time figures, aggregated in the database.

A request belongs to the period in which it was received (`created_at` in [from, to), found
by `ix_requests_created_at`); every figure of a row is about those requests as they stand when
the report runs. One SQL statement over `requests`, grouped by the chosen key:

- each count is `count(*) FILTER (WHERE …)` over the request's own columns (`conditions`):
  lead department, state, rating, resolved, reopen and return counts, overdue, escalation
  level, and the facts `huying.requests.service.record_facts` wrote when the request was signed
  and first replied to (on time or not, and the working seconds it took on the calendar);
- the mean and the 90th percentile by nearest rank of those working seconds: `percentile_disc`
  on PostgreSQL, the rank from window functions on SQLite (the same value);
- by department, `returned` comes from a second aggregation over `request_returns`: the
  requests each department returned, whoever holds them now.

Python sees one row per group: names are looked up, rates divided and rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import SQLColumnExpression, and_, case, distinct, func, or_, select, text, true
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from huying.directory import repository as directory
from huying.errors import InvalidInput
from huying.reports.schemas import GroupBy, RatesRow
from huying.requests.models import Request, RequestReturn
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
    if group_by == "grid":
        return func.substr(Request.grid_code, 1, grid_len)
    column = {
        "department": Request.lead_department_code,
        "category": Request.category_code,
        "chain": Request.chain_code,
        "urgency": Request.urgency,
    }[group_by]
    return column


def conditions(r: Any, escalation_levels: Sequence[int]) -> dict[str, ColumnElement[bool]]:
    """Each count of a row (but `received`, every request) as the condition a request meets;
    `r` is `Request` or an alias of it. The README's table says the same in words."""
    closed = r.state == "closed"
    return {
        # A lead department now, or one that returned it (a return clears the lead).
        "dispatched": or_(r.lead_department_code.is_not(None), r.return_count > 0),
        "signed": r.sign_on_time.is_not(None),
        "signed_on_time": r.sign_on_time.is_(True),
        "replied": r.first_reply_on_time.is_not(None),
        "replied_on_time": r.first_reply_on_time.is_(True),
        "closed": closed,
        "resolved": and_(closed, r.resolved.is_(True)),
        "rated": r.rating.is_not(None),
        "satisfied": r.rating.in_(sorted(SATISFIED)),
        "reopened": r.reopen_count > 0,
        "returned": r.return_count > 0,
        "overdue_now": r.overdue.is_(True),
        **{f"escalated_{level}": r.escalation_level >= level for level in escalation_levels},
    }


def rates(
    *,
    session: Session,
    escalation_levels: Sequence[int],
    span: Period,
    group_by: GroupBy,
    grid_len: int = 9,
) -> list[RatesRow]:
    """One row per group of the requests received in `span`; see the module's docstring."""
    in_span = and_(Request.created_at >= span.start, Request.created_at < span.end)
    times = {"sign": "sign_working_seconds", "reply": "first_reply_working_seconds"}
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        # The percentiles' sorts fit in memory instead of spilling. And a plan for this period:
        # once psycopg has prepared the statement, PostgreSQL would switch to a generic plan,
        # which cannot know how much of the table the period holds (a year: ~1.7× slower).
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        # Grouped in byte order: equal keys are equal either way, and sorting by "C" is much
        # faster than by a linguistic collation (nor can the planner pick a key's index and
        # then read the table in that index's order, one random page per request).
        key = _key(group_by, grid_len).collate("C")
        r: Any = Request
        source: Any = Request

        def p90(column: str) -> ColumnElement[Any]:
            return func.percentile_disc(0.9).within_group(getattr(r, column))

        where = in_span
    else:  # SQLite: the nearest rank from window functions, the value at rank ceil(0.9 n)
        inner_key = _key(group_by, grid_len)
        ranks = []
        for column in times.values():
            value = getattr(Request, column)
            ranks += [
                func.row_number()
                .over(partition_by=[inner_key, value.is_(None)], order_by=value)
                .label(f"{column}_rank"),
                func.count(value).over(partition_by=inner_key).label(f"{column}_n"),
            ]
        source = select(Request, inner_key.label("key"), *ranks).where(in_span).subquery("ranked")
        r = aliased(Request, source)
        key = source.c.key

        def p90(column: str) -> ColumnElement[Any]:
            value, rank = getattr(r, column), source.c[f"{column}_rank"]
            n = source.c[f"{column}_n"]
            return func.min(case((and_(value.is_not(None), rank * 10 >= n * 9), value)))

        where = true()

    query = (
        select(
            key.label("key"),
            func.count().label("received"),
            *[
                func.count().filter(condition).label(name)
                for name, condition in conditions(r, escalation_levels).items()
            ],
            *[
                figure
                for name, column in times.items()
                for figure in (
                    func.avg(getattr(r, column)).label(f"{name}_mean"),
                    p90(column).label(f"{name}_p90"),
                )
            ],
        )
        .select_from(source)
        .where(where)
        .group_by(key)
    )
    result: list[dict[str, Any]] = [dict(m) for m in session.execute(query).mappings()]
    if group_by == "department":
        result = _returns_by_who_returned(session, result, span, escalation_levels)
    names = group_names(session, group_by)
    rows = [row_from(m, group_by, names, escalation_levels) for m in result]
    return sorted(rows, key=lambda r: (r.key is None, r.key or ""))


def _returns_by_who_returned(
    session: Session,
    result: list[dict[str, Any]],
    span: Period,
    escalation_levels: Sequence[int],
) -> list[dict[str, Any]]:
    """By department, `returned` counts the requests each department returned (its 退单),
    not those the department holding them now once got back from another: a second
    aggregation, over `request_returns`, merged by department."""
    received = RequestReturn.received_at
    by_department = dict(
        session.execute(
            select(RequestReturn.department_code, func.count(distinct(RequestReturn.request_id)))
            .where(received >= span.start, received < span.end)
            .group_by(RequestReturn.department_code)
        ).all()
    )
    rows = {m["key"]: m | {"returned": by_department.get(m["key"], 0)} for m in result}
    for code, n in by_department.items():
        if code not in rows:  # returned some, holds none of the period's requests now
            rows[code] = _empty(code, escalation_levels) | {"returned": n}
    return list(rows.values())


def _empty(key: str, escalation_levels: Sequence[int]) -> dict[str, Any]:
    counts = {name: 0 for name in COUNTS} | {f"escalated_{n}": 0 for n in escalation_levels}
    times = {f"{t}_{f}": None for t in ("sign", "reply") for f in ("mean", "p90")}
    return {"key": key, **counts, **times}


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
