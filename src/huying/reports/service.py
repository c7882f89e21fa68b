"""The three rates and the on-time figures, aggregated in the database.

A request belongs to the period in which it was received (`created_at` in [from, to), found
by `ix_requests_created_at`); every figure of a row is about those requests as they stand when
the report runs. An aggregation over `requests` grouped by the chosen key, and one or two
more statements for the percentiles (`huying.reports.repository` holds them and every other
query of the reports):

- each count is `count(*) FILTER (WHERE …)` over the request's own columns
  (`repository.conditions`):
  lead department, state, rating, the department's `resolved` and the enterprise's
  `enterprise_resolved`, reopen and return counts, overdue, escalation level, and the facts
  `huying.requests.service.record_facts` wrote when the request was signed and first replied
  to (on time or not, and the working seconds it took on the calendar);
- the mean and the 90th percentile by nearest rank of those working seconds (the value
  `percentile_disc(0.9)` gives, found from a histogram of each group and then read from the
  one bucket of it that holds the rank, in order from its nearer end where that is cheap:
  `repository.rates`);
- by department, `returned` comes from a second aggregation over `request_returns`: the
  requests each department returned, whoever holds them now; and the task counts from a third,
  over `request_tasks` (found by their `received_at`, the request's `created_at`): the tasks
  (协办 and 下派, not cancelled) of each department, whichever department leads the request.
  By any other key the task counts and the 协办按时率 are null: a category, a chain or a grid
  has no task department.

A caller bound to a department (`huying.requests.service.scope_of`: a bound supervisor) passes
its subtree as `scope`: the requests led by one of those departments, and the returns and the
tasks of one of them. None (everyone else): every request.

Python sees one row per group: names are looked up, rates divided and rounded, each by its
definition in `huying.reports.schemas.RATES` (the same one every label prints):

- 响应率 = signed_on_time / sign_due: a request whose sign deadline is still ahead and
  unsigned is in neither, since it may yet be signed on time;
- 解决率 = resolved / closed, where resolved is the enterprise's answer to 是否解决 where it
  gave one (resolved_confirmed) and the department's claim otherwise (resolved_claimed);
- 满意率 = satisfied / rated; 按期办结率 = replied_on_time / replied;
- 协办按时率 = tasks_on_time / tasks_due: the tasks replied, plus those still open past their
  task deadline; like the response rate, a task whose deadline is still ahead and unreplied is
  in neither, since it may yet be replied on time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from huying.errors import InvalidInput
from huying.reports import repository
from huying.reports.schemas import COUNT_LABELS, RATES, TASK_COUNTS, GroupBy, RatesRow

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


# Every count of requests of a row, in the exports' order: `received` and each of
# `repository.conditions`. The task counts (`TASK_COUNTS`) come by department only.
COUNTS = tuple(name for name in COUNT_LABELS if name not in TASK_COUNTS)
NO_TASKS = dict.fromkeys(TASK_COUNTS, 0)


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
    this_month = month_of(moment=now, tz=tz)
    chosen = Period(
        start=_instant("from", start, tz) if start is not None else this_month.start,
        end=_instant("to", end, tz) if end is not None else this_month.end,
    )
    return _checked(chosen, now)


def month_of(*, moment: datetime, tz: Any) -> Period:
    """The calendar month that holds `moment` in the calendar's time zone `tz`."""
    return _month(moment.astimezone(tz).date().replace(day=1), tz)


def _month(first: date, tz: Any) -> Period:
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Period(_midnight(first, tz), _midnight(following, tz))


def _midnight(day: date, tz: Any) -> datetime:
    return datetime.combine(day, time(), tzinfo=tz)


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


def rates(
    *,
    session: Session,
    escalation_levels: Sequence[int],
    span: Period,
    group_by: GroupBy,
    grid_len: int = 9,
    scope: frozenset[str] | None = None,
) -> list[RatesRow]:
    """One row per group of the requests received in `span` (and led within `scope`, the
    departments a bound caller covers; None: all); see the module's docstring."""
    result = repository.rates(
        session,
        start=span.start,
        end=span.end,
        group_by=group_by,
        grid_len=grid_len,
        escalation_levels=escalation_levels,
        scope=scope,
    )
    if group_by == "department":
        returned = repository.returns_by_department(
            session, start=span.start, end=span.end, scope=scope
        )
        tasks = repository.tasks_by_department(session, start=span.start, end=span.end, scope=scope)
        result = _by_department(result, returned, tasks, escalation_levels)
    names = _group_names(session, group_by)
    rows = [_row_from(m, group_by, names, escalation_levels) for m in result]
    return sorted(rows, key=lambda r: (r.key is None, r.key or ""))


def _by_department(
    result: list[dict[str, Any]],
    returned: dict[str, int],
    tasks: dict[str, dict[str, int]],
    escalation_levels: Sequence[int],
) -> list[dict[str, Any]]:
    """By department, `returned` counts the requests each department returned (its 退单),
    not those the department holding them now once got back from another; and the task
    counts are those of the department's own tasks, on requests another department leads.
    Both come from aggregations of their own (`returned` over `request_returns`, `tasks` over
    `request_tasks`, by department), merged in here. A department that returned requests or
    has tasks but leads none of the period's requests gets a row of its own."""
    rows = {m["key"]: m | {"returned": 0} | NO_TASKS for m in result}
    for code in returned.keys() | tasks.keys():
        rows.setdefault(code, _empty(code, escalation_levels) | NO_TASKS)
    for code, n in returned.items():
        rows[code]["returned"] = n
    for code, counts in tasks.items():
        rows[code].update(counts)
    return list(rows.values())


def _empty(key: str, escalation_levels: Sequence[int]) -> dict[str, Any]:
    counts = {name: 0 for name in COUNTS} | {f"escalated_{n}": 0 for n in escalation_levels}
    times = {f"{t}_{f}": None for t in repository.TIMES for f in ("mean", "p90")}
    return {"key": key, **counts, **times}


def _group_names(session: Session, group_by: GroupBy) -> dict[str, str]:
    """Code → name of the groups that have names (departments, categories, chains, urgencies)."""
    if group_by == "urgency":
        return dict(URGENCY_NAMES)
    return repository.names(session, group_by)


def requests_per_day(
    *, session: Session, days: Sequence[date], tz: Any, scope: frozenset[str] | None = None
) -> list[int]:
    """How many requests were created on each day of `days` (ascending, one after another),
    from midnight to midnight in the calendar's time zone `tz`; with a `scope`, those led
    by one of its departments, as in the rates."""
    if not days:
        return []
    return repository.created_between(
        session,
        [(_midnight(d, tz), _midnight(d + timedelta(days=1), tz)) for d in days],
        scope=scope,
    )


def _int(value: Any) -> int:
    return int(value or 0)


def _hours(seconds: Any) -> float | None:
    return None if seconds is None else round(float(seconds) / HOUR, 2)


def _rate(part: int | None, whole: int | None) -> float | None:
    return None if part is None or not whole else round(part / whole, 4)


def _row_from(
    m: Any, group_by: GroupBy, names: dict[str, str], escalation_levels: Sequence[int]
) -> RatesRow:
    """A row of the API from one aggregated row: name looked up, hours and rates rounded;
    the task counts null but by department."""
    key = m["key"]
    counts: dict[str, int | None] = {name: _int(m[name]) for name in COUNTS}
    counts |= {name: None if m.get(name) is None else _int(m[name]) for name in TASK_COUNTS}
    return RatesRow(
        key=key,
        name=NO_KEY_NAMES[group_by] if key is None else names.get(key, key),
        **counts,
        escalations={str(level): _int(m[f"escalated_{level}"]) for level in escalation_levels},
        sign_hours_mean=_hours(m["sign_mean"]),
        sign_hours_p90=_hours(m["sign_p90"]),
        reply_hours_mean=_hours(m["reply_mean"]),
        reply_hours_p90=_hours(m["reply_p90"]),
        **{name: _rate(counts[d.part], counts[d.whole]) for name, d in RATES.items()},
    )
