"""The supervisor's board's three rates (三率) per lead department for a period, from the
reports service (the definitions of `GET /api/v1/reports/rates`, in the README): the console's
view of what the reports service counts; no query and no calendar arithmetic of its own. Each
rate divides the counts its definition in `huying.reports.schemas.RATES` names, and the board
prints that definition's formula, so the page cannot say other than the code. The month and
the requests per day come straight from `huying.reports.service`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from huying.reports import service as reports
from huying.reports.schemas import RATES, RatesRow
from huying.runtime import Runtime

# The board's three, in its columns' order, by their names in the report.
BOARD_RATES = ("response_rate", "resolution_rate", "satisfaction_rate")
# The formula line under the board's table: the report's own words.
FORMULAS = "；".join(RATES[name].formula for name in BOARD_RATES) + "。"


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
    # The resolution's two sources: the enterprise's answer, the department's own claim.
    confirmed: int = 0
    claimed: int = 0


def _rate(row: RatesRow, name: str) -> Rate:
    """A rate of the report's row as the counts its definition divides."""
    definition = RATES[name]
    return Rate(getattr(row, definition.part), getattr(row, definition.whole))


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
                response=_rate(r, "response_rate"),
                resolution=_rate(r, "resolution_rate"),
                satisfaction=_rate(r, "satisfaction_rate"),
                confirmed=r.resolved_confirmed,
                claimed=r.resolved_claimed,
            )
            for r in rows
            # not the 未派单 row, nor a department that only returned requests (its row in
            # the report carries its returns, which the board does not show)
            if r.key is not None and r.received
        ),
        key=lambda d: d.name,
    )
