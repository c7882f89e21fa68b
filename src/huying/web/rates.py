"""The supervisor's board's three rates (三率) per lead department for a period, from the
reports service (the definitions of `GET /api/v1/reports/rates`, in the README): the console's
view of what the reports service counts; no query and no calendar arithmetic of its own. The
month and the requests per day come straight from `huying.reports.service`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from huying.reports import service as reports
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
