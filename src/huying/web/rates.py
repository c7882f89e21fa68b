"""The figures of the supervisor's board: the three rates (三率) per lead department for a
period, from the reports service (the definitions of `GET /api/v1/reports/rates`, in the
README), and requests per day."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from huying.reports import service as reports
from huying.requests.models import Request
from huying.runtime import Runtime


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


def department_rates(
    session: Session, *, rt: Runtime, start: datetime, end: datetime
) -> list[DepartmentRates]:
    """One row per lead department with requests received in [start, end), by name: the
    figures of `GET /api/v1/reports/rates`, from the same service and definitions."""
    rows = reports.rates(
        session=session,
        escalation_levels=[rung.level for rung in rt.settings.escalation],
        span=reports.Period(start, end),
        group_by="department",
    )
    return sorted(
        (
            DepartmentRates(
                code=r.key,
                name=r.name,
                requests=r.received,
                response=Rate(r.signed_on_time, r.dispatched),
                resolution=Rate(r.resolved, r.closed),
                satisfaction=Rate(r.satisfied, r.rated),
            )
            for r in rows
            # not the 未派单 row, nor a department that only returned requests (its row in
            # the report carries its returns, which the board does not show)
            if r.key is not None and r.received
        ),
        key=lambda d: d.name,
    )


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
