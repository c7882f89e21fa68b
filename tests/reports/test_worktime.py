"""Working time inside SQL equals what the business calendar counts, in Python and in the
database, across holidays, make-up days, daylight saving and spans that cross UTC midnight."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import literal, select, true

from huying.calendar import BusinessCalendar
from huying.db import UTCDateTime
from huying.reports import worktime
from huying.runtime import Runtime

SHANGHAI_HOURS = [(time(9), time(12)), (time(13, 30), time(17, 30))]
# 09:00-18:00 in Los Angeles is 16:00/17:00-01:00/02:00 UTC: every span crosses midnight.
LA_HOURS = [(time(9), time(18))]


def instants(start: datetime, days: int, n: int, seed: int) -> list[datetime]:
    rng = random.Random(seed)
    picks = [start + timedelta(seconds=rng.randrange(days * 86_400)) for _ in range(n)]
    # and some on the edges of spans
    picks += [start + timedelta(days=d, hours=h) for d in range(0, days, 3) for h in (1, 4, 9.5)]
    return picks


@pytest.mark.parametrize(
    ("tz", "hours", "start"),
    [
        # around National Day 2026: Oct 1-7 off, Sat Oct 10 a make-up working day
        ("Asia/Shanghai", SHANGHAI_HOURS, datetime(2026, 9, 25, tzinfo=UTC)),
        # daylight saving ends on 1 November 2026 in Los Angeles
        ("America/Los_Angeles", LA_HOURS, datetime(2026, 10, 20, tzinfo=UTC)),
    ],
)
def test_the_day_table_counts_as_the_calendar_does(
    tz: str, hours: list[tuple[time, time]], start: datetime
) -> None:
    cal = BusinessCalendar(timezone=tz, working_hours=hours)
    points = instants(start, 30, 200, seed=7)
    table = worktime.build_day_table(cal, min(points), max(points))
    rng = random.Random(11)
    for _ in range(400):
        a, b = sorted(rng.sample(points, 2))
        expected = cal.working_seconds_between(a, b)
        got = table.working_seconds_to(b) - table.working_seconds_to(a)
        assert got == pytest.approx(expected, abs=1e-6), (a, b)


def test_the_sql_counts_as_the_calendar_does(rt: Runtime) -> None:
    cal = rt.calendar
    points = instants(datetime(2026, 9, 28, tzinfo=UTC), 20, 12, seed=3)
    points.append(datetime(2026, 10, 10, 1, 30, 0, 123456, tzinfo=UTC))  # a make-up Saturday
    table = worktime.build_day_table(cal, min(points), max(points))
    days = table.as_values().cte("workdays")
    wa, wb = days.alias("wa"), days.alias("wb")
    pairs = list(itertools.pairwise(points))
    with rt.transaction() as s:
        for a, b in pairs:
            if b < a:
                a, b = b, a
            la, lb = literal(a, UTCDateTime()), literal(b, UTCDateTime())
            query = (
                select(worktime.working_seconds_sql(wb, lb) - worktime.working_seconds_sql(wa, la))
                .select_from(wa.join(wb, true()))
                .where(wa.c.day == worktime.day_of(la), wb.c.day == worktime.day_of(lb))
            )
            got = s.scalar(query)
            assert got == pytest.approx(cal.working_seconds_between(a, b), abs=1e-3), (a, b)


def test_an_instant_outside_the_table_is_refused() -> None:
    cal = BusinessCalendar(working_hours=SHANGHAI_HOURS)
    a = datetime(2026, 11, 2, tzinfo=UTC)
    table = worktime.build_day_table(cal, a, a + timedelta(days=2))
    with pytest.raises(ValueError, match="outside the table"):
        table.working_seconds_to(a + timedelta(days=10))
    assert table.width == 2
    assert table.first_day <= (a - datetime(1970, 1, 1, tzinfo=UTC)).days - 1
