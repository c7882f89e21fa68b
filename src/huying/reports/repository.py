"""The reports' queries: the rates aggregation, the returns and the tasks by department, the
names of the groups, the requests per day, and the statements that back-fill the per-request
facts.

The rates are one SQL statement over `requests`, grouped by the chosen key (see
`huying.reports.service` for what each figure means):

- each count is `count(*) FILTER (WHERE …)` over the request's own columns (`conditions`);
- the mean and the 90th percentile by nearest rank of the working seconds: `percentile_disc`
  on PostgreSQL, the rank from window functions on SQLite (the same value).

A `scope` (a set of department codes, None for all) keeps the requests led by one of them, and
the returns and tasks of one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    SQLColumnExpression,
    and_,
    case,
    distinct,
    func,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from huying.deadlines.models import Deadline
from huying.directory.models import Category, Chain, Department
from huying.reports import worktime
from huying.reports.schemas import GroupBy
from huying.requests.models import Request, RequestReturn, RequestTask
from huying.workflow.library import SATISFIED

# the working seconds of each fact, by the name of its figures (`sign_mean`, `reply_p90`)
TIMES = {"sign": "sign_working_seconds", "reply": "first_reply_working_seconds"}
ENDED = ("met", "missed")  # a deadline that ended either way
OPEN_TASK = ("pending", "signed")  # a task not yet replied to, nor cancelled


# --- the rates -----------------------------------------------------------------------------


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


def _in_scope(column: Any, scope: frozenset[str] | None) -> ColumnElement[bool]:
    """Rows whose department `column` is one of `scope`; every row when scope is None."""
    return true() if scope is None else column.in_(sorted(scope))


def conditions(r: Any, escalation_levels: Sequence[int]) -> dict[str, ColumnElement[bool]]:
    """Each count of a row (but `received`, every request) as the condition a request meets;
    `r` is `Request` or an alias of it. The README's table says the same in words."""
    closed = r.state == "closed"
    confirmed = and_(closed, r.enterprise_resolved.is_(True))
    claimed = and_(closed, r.enterprise_resolved.is_(None), r.resolved.is_(True))
    return {
        # A lead department now, or one that returned it (a return clears the lead).
        "dispatched": or_(r.lead_department_code.is_not(None), r.return_count > 0),
        # 应签收: signed (its sign deadline ended, met or missed), or still waiting for its
        # signing past the sign deadline (a request `dispatched` runs only that deadline).
        # One whose sign deadline is still ahead is in neither the response rate's
        # numerator nor its denominator: it may yet be signed on time.
        "sign_due": or_(
            r.sign_on_time.is_not(None), and_(r.state == "dispatched", r.overdue.is_(True))
        ),
        "signed": r.sign_on_time.is_not(None),
        "signed_on_time": r.sign_on_time.is_(True),
        "replied": r.first_reply_on_time.is_not(None),
        "replied_on_time": r.first_reply_on_time.is_(True),
        "closed": closed,
        # 已解决: the enterprise's answer where it gave one, the department's claim otherwise.
        "resolved": or_(confirmed, claimed),
        "resolved_confirmed": confirmed,
        "resolved_claimed": claimed,
        "rated": r.rating.is_not(None),
        "satisfied": r.rating.in_(sorted(SATISFIED)),
        "reopened": r.reopen_count > 0,
        "returned": r.return_count > 0,
        "overdue_now": r.overdue.is_(True),
        **{f"escalated_{level}": r.escalation_level >= level for level in escalation_levels},
    }


@dataclass(frozen=True)
class _Grouped:
    """What the aggregation reads, as each database can best give it: the group key, the
    requests (`r`, `Request` or an alias of it) in `source`, which rows of it count, and the
    90th percentile of a column of `TIMES`."""

    key: Any
    r: Any
    source: Any
    where: ColumnElement[bool]
    p90: Callable[[str], ColumnElement[Any]]


def _on_postgresql(session: Session, key: SQLColumnExpression[Any], in_span: Any) -> _Grouped:
    # The percentiles' sorts fit in memory instead of spilling. And a plan for this period:
    # once psycopg has prepared the statement, PostgreSQL would switch to a generic plan,
    # which cannot know how much of the table the period holds (a year: ~1.7× slower).
    session.execute(text("SET LOCAL work_mem = '64MB'"))
    session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))

    def p90(column: str) -> ColumnElement[Any]:
        return func.percentile_disc(0.9).within_group(getattr(Request, column))

    # Grouped in byte order: equal keys are equal either way, and sorting by "C" is much
    # faster than by a linguistic collation (nor can the planner pick a key's index and
    # then read the table in that index's order, one random page per request).
    return _Grouped(key.collate("C"), Request, Request, in_span, p90)


def _on_sqlite(key: SQLColumnExpression[Any], in_span: Any) -> _Grouped:
    """The nearest rank from window functions: the value at rank ceil(0.9 n)."""
    ranks = []
    for column in TIMES.values():
        value = getattr(Request, column)
        ranks += [
            func.row_number()
            .over(partition_by=[key, value.is_(None)], order_by=value)
            .label(f"{column}_rank"),
            func.count(value).over(partition_by=key).label(f"{column}_n"),
        ]
    source = select(Request, key.label("key"), *ranks).where(in_span).subquery("ranked")
    r = aliased(Request, source)

    def p90(column: str) -> ColumnElement[Any]:
        value, rank = getattr(r, column), source.c[f"{column}_rank"]
        n = source.c[f"{column}_n"]
        return func.min(case((and_(value.is_not(None), rank * 10 >= n * 9), value)))

    return _Grouped(source.c.key, r, source, true(), p90)


def rates(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy,
    grid_len: int,
    escalation_levels: Sequence[int],
    scope: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """One mapping per group of the requests received in [start, end) and led by a department
    of `scope` (any, when None): `key`, `received`, a count per `conditions`, and
    `<fact>_mean`, `<fact>_p90` in working seconds per `TIMES`."""
    in_span = and_(
        Request.created_at >= start,
        Request.created_at < end,
        _in_scope(Request.lead_department_code, scope),
    )
    key = _key(group_by, grid_len)
    if session.get_bind().dialect.name == "postgresql":
        g = _on_postgresql(session, key, in_span)
    else:
        g = _on_sqlite(key, in_span)
    query = (
        select(
            g.key.label("key"),
            func.count().label("received"),
            *[
                func.count().filter(condition).label(name)
                for name, condition in conditions(g.r, escalation_levels).items()
            ],
            *[
                figure
                for name, column in TIMES.items()
                for figure in (
                    func.avg(getattr(g.r, column)).label(f"{name}_mean"),
                    g.p90(column).label(f"{name}_p90"),
                )
            ],
        )
        .select_from(g.source)
        .where(g.where)
        .group_by(g.key)
    )
    return [dict(m) for m in session.execute(query).mappings()]


def returns_by_department(
    session: Session, *, start: datetime, end: datetime, scope: frozenset[str] | None = None
) -> dict[str, int]:
    """Department (of `scope`, any when None) → how many distinct requests received in
    [start, end) it returned."""
    received = RequestReturn.received_at
    rows = session.execute(
        select(RequestReturn.department_code, func.count(distinct(RequestReturn.request_id)))
        .where(received >= start, received < end, _in_scope(RequestReturn.department_code, scope))
        .group_by(RequestReturn.department_code)
    ).all()
    return {code: int(n) for code, n in rows}


def task_conditions() -> dict[str, ColumnElement[bool]]:
    """Each task count but `tasks` (every task not cancelled) as the condition a task meets.
    The README's table says the same in words."""
    t = RequestTask
    done = t.status == "done"
    # Its `task` deadline passed (the worker set missed_at at its due instant): the task can
    # no longer be replied to on time.
    missed = (
        select(Deadline.id)
        .where(Deadline.task_id == t.id, Deadline.kind == "task", Deadline.missed_at.is_not(None))
        .exists()
    )
    overdue_open = and_(t.status.in_(OPEN_TASK), missed)
    return {
        # 应答复: replied, or still open past its task deadline. One whose deadline is still
        # ahead is in neither the 协办按时率's numerator nor its denominator.
        "tasks_due": or_(done, overdue_open),
        "tasks_replied": done,
        "tasks_on_time": and_(done, t.on_time.is_(True)),
        "tasks_overdue_open": overdue_open,
    }


def tasks_by_department(
    session: Session, *, start: datetime, end: datetime, scope: frozenset[str] | None = None
) -> dict[str, dict[str, int]]:
    """Department (of `scope`, any when None) → its task counts: `tasks` and one per
    `task_conditions`, over its tasks, not cancelled, of the requests received in [start, end)
    (`received_at`, the request's `created_at`: no join with `requests`)."""
    t = RequestTask
    query = (
        select(
            t.department_code.label("key"),
            func.count().label("tasks"),
            *[func.count().filter(c).label(name) for name, c in task_conditions().items()],
        )
        .where(
            t.received_at >= start,
            t.received_at < end,
            t.status != "cancelled",
            _in_scope(t.department_code, scope),
        )
        .group_by(t.department_code)
    )
    return {
        m["key"]: {name: int(n) for name, n in m.items() if name != "key"}
        for m in session.execute(query).mappings()
    }


def names(session: Session, group_by: GroupBy) -> dict[str, str]:
    """Code → name of the departments, categories or chains; nothing for other groupings."""
    named: dict[str, Any] = {"department": Department, "category": Category, "chain": Chain}
    model = named.get(group_by)
    if model is None:
        return {}
    return {code: name for code, name in session.execute(select(model.code, model.name))}


# --- the console's trend -------------------------------------------------------------------


def created_between(
    session: Session,
    bounds: Sequence[tuple[datetime, datetime]],
    scope: frozenset[str] | None = None,
) -> list[int]:
    """How many requests (led by a department of `scope`, any when None) were created in each
    [lo, hi) of `bounds` (ascending, adjoining), in one pass over the whole period."""
    columns = [
        func.count(case((and_(Request.created_at >= lo, Request.created_at < hi), 1)))
        for lo, hi in bounds
    ]
    row = session.execute(
        select(*columns).where(
            Request.created_at >= bounds[0][0],
            Request.created_at < bounds[-1][1],
            _in_scope(Request.lead_department_code, scope),
        )
    ).one()
    return [int(v) for v in row]


# --- the per-request facts, back-filled ----------------------------------------------------


def ended_deadlines_span(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """The earliest start and the latest completion of the sign and reply deadlines that
    ended met or missed."""
    ended = and_(Deadline.kind.in_(("sign", "reply")), Deadline.status.in_(ENDED))
    lo, hi = conn.execute(
        select(func.min(Deadline.started_at), func.max(Deadline.completed_at)).where(ended)
    ).one()
    return lo, hi


def set_facts(conn: Connection, days: CTE, kind: str) -> None:
    """Set a request's facts of `kind` (sign or reply) from the first deadline of that kind
    that ended met or missed: on time or not, and the working seconds it took, with `days`
    the calendar's day table (`huying.reports.worktime`)."""
    on_time, seconds = {
        "sign": (Request.sign_on_time, Request.sign_working_seconds),
        "reply": (Request.first_reply_on_time, Request.first_reply_working_seconds),
    }[kind]
    finished = (Deadline.kind == kind, Deadline.status.in_(ENDED))
    first = (
        select(func.min(Deadline.id))
        .where(*finished, Deadline.completed_at.is_not(None))
        .group_by(Deadline.request_id)
    )
    a, b = days.alias("w_start"), days.alias("w_end")
    working = worktime.working_seconds_sql(b, Deadline.completed_at) - worktime.working_seconds_sql(
        a, Deadline.started_at
    )
    ended_here = (
        select(
            Deadline.request_id.label("request_id"),
            (Deadline.status == "met").label("on_time"),
            worktime.floor_int(working + 0.5).label("seconds"),  # halves up, to the second
        )
        .join(a, a.c.day == worktime.day_of(Deadline.started_at))
        .join(b, b.c.day == worktime.day_of(Deadline.completed_at))
        .where(Deadline.id.in_(first))
        .subquery("ended")
    )
    values: dict[Any, Any] = {on_time: ended_here.c.on_time, seconds: ended_here.c.seconds}
    conn.execute(update(Request).where(Request.id == ended_here.c.request_id).values(values))


def facts_set(conn: Connection) -> int:
    """How many facts of requests are set: signings plus first replies."""
    # (not the UPDATEs' row counts: SQLite reports none for a statement that begins WITH)
    signed = func.count(Request.sign_on_time)
    return int(conn.execute(select(signed + func.count(Request.first_reply_on_time))).scalar_one())
