"""Working time inside SQL: how many working seconds lie between two stored instants.

A report cannot call the business calendar once per request, and the calendar (holidays,
make-up days, working hours in the calendar's time zone) cannot be written as a formula in
SQL. So the calendar is turned into a small table, one row per UTC day of the report's reach,
sent with the query as a VALUES list:

    day   the UTC day, as whole days since 1970-01-01
    cum   working seconds from the first day of the table to the start of this day
    s1, e1 … sK, eK   the working spans that fall inside this UTC day, as seconds since its
          UTC midnight (a span that crosses midnight is cut in two; unused pairs are 0, 0)

With `x` an instant in seconds since the epoch, `day = floor(x / 86400)` and
`sod = x − 86400·day`, the working seconds from the start of the table to `x` are

    W(x) = cum + Σₖ clamp(sod, sₖ, eₖ) − sₖ

and the working time between a and b is W(b) − W(a): exactly what
`BusinessCalendar.working_seconds_between(a, b)` returns, for any time zone (daylight saving
included, because the spans are computed per day by the calendar's own rules) — checked
against it in tests. The lookup joins on an integer; a report over a year sends ~370 rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, Integer, SQLColumnExpression, case, cast, column, literal, values
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.sql.selectable import Values

from huying.calendar import BusinessCalendar

DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class epoch_seconds(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of a stored instant, as a float, on SQLite and PostgreSQL."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "postgresql")
def _epoch_pg(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    return f"date_part('epoch', {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: Any, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC; julianday keeps about 10 µs of precision.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@dataclass(frozen=True)
class DayTable:
    first_day: int  # days since the epoch, UTC
    cum: tuple[float, ...]  # per day: working seconds before its UTC midnight
    spans: tuple[tuple[tuple[int, int], ...], ...]  # per day: (start, end) seconds of the day
    width: int  # span pairs per row (the most any day has; at least 1)

    @property
    def last_day(self) -> int:
        return self.first_day + len(self.cum) - 1

    def working_seconds_to(self, moment: datetime) -> float:
        """W(moment) in Python, the same arithmetic as the SQL (used by tests)."""
        x = (moment - _EPOCH).total_seconds()
        day = int(x // DAY)
        i = day - self.first_day
        if not 0 <= i < len(self.cum):
            raise ValueError(f"{moment.isoformat()} is outside the table")
        sod = x - day * DAY
        return self.cum[i] + sum(min(max(sod, s), e) - s for s, e in self.spans[i])

    def as_values(self, name: str = "workdays") -> Values:
        """The table as a VALUES list with literal numbers (no bind parameters to count)."""
        cols = [column("day", Integer), column("cum", Float)]
        for k in range(1, self.width + 1):
            cols += [column(f"s{k}", Integer), column(f"e{k}", Integer)]
        rows = []
        for i, (cum, spans) in enumerate(zip(self.cum, self.spans, strict=True)):
            padded = list(spans) + [(0, 0)] * (self.width - len(spans))
            rows.append((self.first_day + i, float(cum), *[v for pair in padded for v in pair]))
        return values(*cols, name=name, literal_binds=True).data(rows)


def build_day_table(calendar: BusinessCalendar, start: datetime, end: datetime) -> DayTable:
    """The table for instants from `start` to `end` (one spare UTC day on each side)."""
    first = _utc_day(start) - 1
    last = _utc_day(end) + 1
    lo = datetime.fromtimestamp(first * DAY, UTC)
    hi = datetime.fromtimestamp((last + 1) * DAY, UTC)
    # Every working span of every local day that can touch [lo, hi), in epoch seconds.
    spans: list[tuple[int, int]] = []
    local = lo.astimezone(calendar.tz).date() - timedelta(days=1)
    stop = hi.astimezone(calendar.tz).date() + timedelta(days=1)
    while local <= stop:
        if calendar.is_workday(local):
            for opens, closes in calendar.working_hours:
                spans.append((_epoch(local, opens, calendar), _epoch(local, closes, calendar)))
        local += timedelta(days=1)
    per_day: list[list[tuple[int, int]]] = [[] for _ in range(last - first + 1)]
    for a, b in spans:
        for day in range(max(a // DAY, first), min((b - 1) // DAY, last) + 1):
            base = day * DAY
            piece = (max(a, base) - base, min(b, base + DAY) - base)
            if piece[0] < piece[1]:
                per_day[day - first].append(piece)
    cum: list[float] = []
    total = 0.0
    for pieces in per_day:
        cum.append(total)
        total += sum(e - s for s, e in pieces)
    width = max(1, *(len(p) for p in per_day))
    return DayTable(
        first_day=first,
        cum=tuple(cum),
        spans=tuple(tuple(sorted(p)) for p in per_day),
        width=width,
    )


def working_seconds_sql(table: Any, instant: SQLColumnExpression[Any]) -> ColumnElement[float]:
    """W(instant) for a row of the day table joined on `day_of(instant)`; NULL when unjoined."""
    x = epoch_seconds(instant)
    sod = x - cast(table.c.day, Float) * DAY
    total: ColumnElement[float] = table.c.cum
    for k in range(1, _width(table) + 1):
        s, e = table.c[f"s{k}"], table.c[f"e{k}"]
        total = total + case((sod <= s, literal(0)), (sod >= e, e - s), else_=sod - s)
    return total


class floor_int(FunctionElement[int]):
    """The largest integer not above a non-negative number (SQLite may lack floor())."""

    type = Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(floor_int, "postgresql")
def _floor_pg(element: floor_int, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(floor_int, "sqlite")
def _floor_sqlite(element: floor_int, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"  # truncates; x >= 0


def day_of(instant: SQLColumnExpression[Any]) -> ColumnElement[int]:
    """The UTC day of a stored instant, as whole days since the epoch."""
    return floor_int(epoch_seconds(instant) / DAY)


def _width(table: Any) -> int:
    return sum(1 for c in table.c if c.name.startswith("s") and c.name[1:].isdigit())


def _utc_day(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds() // DAY)


def _epoch(day: date, wall: time, calendar: BusinessCalendar) -> int:
    moment = datetime.combine(day, wall, tzinfo=calendar.tz)
    return int((moment - _EPOCH).total_seconds())
