"""The figures of the supervisor's board: the three rates (三率) per lead department for a
period, and requests per day.

A stand-in, kept apart so that the board can switch to the reports service
(`huying.reports`) once it lands: the board calls `department_rates` and
`requests_per_day` only. Counted with SQL COUNTs over the requests created in the period,
each attributed to its lead department now:

- response rate (响应率): sign deadlines met / sign deadlines met or missed;
- resolution rate (解决率): replies marked resolved / replies with `resolved` set;
- satisfaction rate (满意率): ratings in the top three levels / ratings given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from huying.deadlines.models import Deadline
from huying.directory.models import Department
from huying.requests.models import Request
from huying.workflow.library import SATISFIED


@dataclass(frozen=True)
class Rate:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def text(self) -> str:
        value = self.value
        return "—" if value is None else f"{value * 100:.1f}%"


@dataclass(frozen=True)
class DepartmentRates:
    code: str
    name: str
    requests: int
    response: Rate
    resolution: Rate
    satisfaction: Rate


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_of(moment: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The calendar month holding `moment` in `tz`, as UTC instants [start, end)."""
    first = moment.astimezone(tz).date().replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return local_midnight(first, tz), local_midnight(following, tz)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """COUNT(CASE WHEN condition THEN 1 END): the rows that meet the condition."""
    return func.count(case((condition, 1)))


def department_rates(session: Session, *, start: datetime, end: datetime) -> list[DepartmentRates]:
    """One row per lead department with requests created in [start, end), by name."""
    in_period = and_(
        Request.created_at >= start,
        Request.created_at < end,
        Request.lead_department_code.is_not(None),
    )
    replies = session.execute(
        select(
            Request.lead_department_code,
            func.count(Request.id),
            _count_if(Request.resolved.is_(True)),
            _count_if(Request.resolved.is_not(None)),
            _count_if(Request.rating.in_(SATISFIED)),
            _count_if(Request.rating.is_not(None)),
        )
        .where(in_period)
        .group_by(Request.lead_department_code)
    ).all()
    signs = {
        str(code): (int(met), int(decided))
        for code, met, decided in session.execute(
            select(
                Request.lead_department_code,
                _count_if(Deadline.status == "met"),
                _count_if(Deadline.status.in_(("met", "missed"))),
            )
            .join(Deadline, Deadline.request_id == Request.id)
            .where(in_period, Deadline.kind == "sign")
            .group_by(Request.lead_department_code)
        )
    }
    codes = [str(row[0]) for row in replies]
    names: dict[str, str] = {
        code: name
        for code, name in session.execute(
            select(Department.code, Department.name).where(Department.code.in_(codes))
        )
    }
    result = [
        DepartmentRates(
            code=str(code),
            name=names.get(str(code), str(code)),
            requests=int(total),
            response=Rate(*signs.get(str(code), (0, 0))),
            resolution=Rate(int(resolved), int(replied)),
            satisfaction=Rate(int(satisfied), int(rated)),
        )
        for code, total, resolved, replied, satisfied, rated in replies
    ]
    return sorted(result, key=lambda r: (-r.requests, r.code))


def requests_per_day(session: Session, *, days: Sequence[date], tz: tzinfo) -> list[int]:
    """How many requests were created on each local day, in one pass over the period."""
    if not days:
        return []
    bounds = [(local_midnight(d, tz), local_midnight(d + timedelta(days=1), tz)) for d in days]
    columns = [
        _count_if(and_(Request.created_at >= lo, Request.created_at < hi)) for lo, hi in bounds
    ]
    row = session.execute(
        select(*columns).where(
            Request.created_at >= bounds[0][0], Request.created_at < bounds[-1][1]
        )
    ).one()
    return [int(v) for v in row]
