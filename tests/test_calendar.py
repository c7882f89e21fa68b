import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from huying.calendar import BusinessCalendar, ChineseHolidays, HolidayTable, Official
from huying.durations import Duration, DurationKind, parse_duration

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# The State Council's holiday arrangement for 2026, written out so that these tests
# do not depend on the years the installed chinese_calendar knows; a test below checks it
# against the package, which knows 2026 for good.
HOLIDAYS_2026 = HolidayTable(
    years=[2026],
    holidays=[
        *_span(date(2026, 1, 1), date(2026, 1, 3)),  # New Year's Day
        *_span(date(2026, 2, 15), date(2026, 2, 23)),  # Spring Festival
        *_span(date(2026, 4, 4), date(2026, 4, 6)),  # Tomb-sweeping Day
        *_span(date(2026, 5, 1), date(2026, 5, 5)),  # Labour Day
        *_span(date(2026, 6, 19), date(2026, 6, 21)),  # Dragon Boat Festival
        *_span(date(2026, 9, 25), date(2026, 9, 27)),  # Mid-autumn Festival
        *_span(date(2026, 10, 1), date(2026, 10, 7)),  # National Day
    ],
    workdays=[
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ],
)
CN = BusinessCalendar(holidays=HOLIDAYS_2026)


def cst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def due(start: datetime, text: str, calendar: BusinessCalendar = CN) -> datetime:
    return calendar.add(start, parse_duration(text))


# Working days and the source's holidays


def test_is_workday_follows_the_holiday_source() -> None:
    assert CN.is_workday(date(2026, 9, 30))  # Wednesday
    assert not CN.is_workday(date(2026, 10, 1))  # National Day
    assert CN.is_workday(date(2026, 10, 10))  # make-up Saturday
    assert not CN.is_workday(date(2026, 10, 11))  # Sunday


def test_workdays_is_an_inclusive_range() -> None:
    assert CN.workdays(date(2026, 9, 30), date(2026, 10, 10)) == [
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
    ]
    assert CN.workdays(date(2026, 10, 2), date(2026, 10, 1)) == []


def test_holidays_none_is_monday_to_friday() -> None:
    calendar = BusinessCalendar(holidays="none")
    assert calendar.is_workday(date(2026, 10, 1))  # Thursday
    assert not calendar.is_workday(date(2026, 10, 10))  # Saturday


def test_extra_holidays_and_workdays_win_over_the_source() -> None:
    calendar = BusinessCalendar(
        holidays=HOLIDAYS_2026,
        extra_holidays=[date(2026, 9, 30)],
        extra_workdays=[date(2026, 10, 1)],
    )
    assert not calendar.is_workday(date(2026, 9, 30))
    assert calendar.is_workday(date(2026, 10, 1))


def test_extra_workday_makes_a_sunday_a_working_day() -> None:
    calendar = BusinessCalendar(holidays="none", extra_workdays=[date(2026, 3, 8)])
    assert calendar.is_workday(date(2026, 3, 8))
    # Friday 17:00 + 2 working hours: 30 minutes on Friday, 90 minutes on the working Sunday.
    assert due(cst(2026, 3, 6, 17), "2 working hours", calendar) == cst(2026, 3, 8, 10, 30)


# N working days: end of working hours of the N-th working day after the start's day


def test_working_days_across_national_day() -> None:
    # Oct 8, Oct 9, Oct 10 (a make-up Saturday)
    assert due(cst(2026, 9, 30, 16), "3 working days") == cst(2026, 10, 10, 17, 30)


def test_working_days_ignore_the_hour_of_the_start() -> None:
    for hour in (0, 8, 12, 23):
        assert due(cst(2026, 9, 29, hour), "1 working day") == cst(2026, 9, 30, 17, 30)


def test_zero_working_days_is_the_end_of_the_day_or_of_the_next_workday() -> None:
    assert due(cst(2026, 9, 30, 10), "0 working days") == cst(2026, 9, 30, 17, 30)
    assert due(cst(2026, 10, 3, 10), "0 working days") == cst(2026, 10, 8, 17, 30)


def test_working_days_across_spring_festival_2026() -> None:
    # 2026: Feb 14 (Sat) and Feb 28 (Sat) are make-up days; Feb 15-23 are off.
    assert due(cst(2026, 2, 13, 16), "3 working days") == cst(2026, 2, 25, 17, 30)


def test_working_hours_across_spring_festival_2026() -> None:
    assert due(cst(2026, 2, 14, 17), "2 working hours") == cst(2026, 2, 24, 10, 30)
    # Saturday Feb 14 (7 h) and the morning of Tuesday Feb 24 (3 h)
    assert CN.working_seconds_between(cst(2026, 2, 14), cst(2026, 2, 24, 12)) == 10 * 3600


# N working hours: only time inside working hours on working days counts


def test_working_hours_into_a_make_up_saturday() -> None:
    assert due(cst(2026, 10, 9, 17), "2 working hours") == cst(2026, 10, 10, 10, 30)


def test_working_hours_ending_at_the_end_of_a_span_stay_there() -> None:
    assert due(cst(2026, 9, 29, 9), "3 working hours") == cst(2026, 9, 29, 12)
    assert due(cst(2026, 9, 29, 9), "7 working hours") == cst(2026, 9, 29, 17, 30)


def test_working_hours_from_the_lunch_break() -> None:
    assert due(cst(2026, 9, 29, 12, 30), "1 working hour") == cst(2026, 9, 29, 14, 30)


def test_working_hours_from_a_holiday() -> None:
    assert due(cst(2026, 10, 3, 10), "1 working hour") == cst(2026, 10, 8, 10)


def test_working_hours_from_after_hours() -> None:
    assert due(cst(2026, 9, 28, 20), "1 working hour") == cst(2026, 9, 29, 10)


def test_zero_working_hours_is_the_start() -> None:
    assert due(cst(2026, 9, 28, 20), "0 working hours") == cst(2026, 9, 28, 20)


def test_working_seconds_between_counts_only_working_time() -> None:
    assert CN.working_seconds_between(cst(2026, 9, 29, 11), cst(2026, 9, 29, 14)) == 1.5 * 3600
    assert CN.working_seconds_between(cst(2026, 9, 29, 14), cst(2026, 9, 29, 11)) == 0
    assert CN.working_seconds_between(cst(2026, 9, 29), cst(2026, 9, 30)) == 7 * 3600


def test_add_working_seconds_rejects_negative() -> None:
    with pytest.raises(ValueError):
        CN.add_working_seconds(cst(2026, 9, 29, 10), -1)


# Calendar time, time zones, UTC


def test_calendar_time_is_plain_addition() -> None:
    assert due(cst(2026, 10, 1, 3), "2 hours") == cst(2026, 10, 1, 5)
    assert due(cst(2026, 10, 1, 3), "P1DT2H") == cst(2026, 10, 2, 5)


def test_results_are_utc() -> None:
    for text in ("2 hours", "2 working hours", "2 working days"):
        assert due(cst(2026, 9, 29, 10), text).tzinfo is UTC


@pytest.mark.parametrize(
    "call",
    [
        lambda naive: CN.add(naive, parse_duration("1 hour")),
        lambda naive: CN.add(naive, parse_duration("1 working day")),
        lambda naive: CN.add_working_seconds(naive, 60),
        lambda naive: CN.working_seconds_between(naive, cst(2026, 9, 29)),
        lambda naive: CN.remaining(cst(2026, 9, 29), naive, "calendar"),
    ],
)
def test_naive_datetimes_are_rejected(call: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(datetime(2026, 9, 29, 10))


def test_dst_working_hours_are_wall_clock() -> None:
    berlin = BusinessCalendar(timezone="Europe/Berlin", holidays="none")
    friday = datetime(2026, 3, 27, 17, tzinfo=BERLIN)  # +01:00; clocks go forward on Sunday 29th
    monday = datetime(2026, 3, 30, 10, 30, tzinfo=BERLIN)  # +02:00
    assert due(friday, "2 working hours", berlin) == monday
    assert monday.astimezone(UTC) == datetime(2026, 3, 30, 8, 30, tzinfo=UTC)
    assert berlin.working_seconds_between(friday, monday) == 2 * 3600
    assert due(friday, "1 working day", berlin) == datetime(2026, 3, 30, 17, 30, tzinfo=BERLIN)


def test_dst_calendar_time_is_elapsed_time() -> None:
    berlin = BusinessCalendar(timezone="Europe/Berlin", holidays="none")
    saturday_noon = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    assert due(saturday_noon, "1 day", berlin) == datetime(2026, 3, 29, 13, tzinfo=BERLIN)


# Years the source does not know


def test_year_missing_from_the_source_falls_back_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar = BusinessCalendar(holidays=HOLIDAYS_2026, extra_holidays=[date(2027, 1, 1)])
    with caplog.at_level(logging.WARNING, logger="huying.calendar"):
        # Thursday Dec 31: 30 minutes; Jan 1 (extra holiday), the weekend; Monday Jan 4: 90 minutes
        assert due(cst(2026, 12, 31, 17), "2 working hours", calendar) == cst(2027, 1, 4, 10, 30)
        assert due(cst(2026, 12, 31, 17), "3 working days", calendar) == cst(2027, 1, 6, 17, 30)
        assert calendar.is_workday(date(2027, 1, 8))  # Friday, by the Monday-Friday fallback
        assert not calendar.is_workday(date(2027, 1, 9))
        assert calendar.is_workday(date(2028, 1, 3))  # a second missing year: a second warning
    warnings = [r.getMessage() for r in caplog.records if r.name == "huying.calendar"]
    assert len(warnings) == 2
    assert "2027" in warnings[0] and "2028" in warnings[1]
    assert calendar.missing_years == {2027, 2028}


def test_known_years_are_not_missing() -> None:
    calendar = BusinessCalendar(holidays=HOLIDAYS_2026)
    assert not calendar.is_workday(date(2026, 1, 1))
    assert calendar.missing_years == frozenset()


def test_holidays_none_misses_no_year() -> None:
    calendar = BusinessCalendar(holidays="none")
    assert calendar.is_workday(date(2031, 1, 1))  # a Wednesday
    assert calendar.missing_years == frozenset()


def test_the_written_2026_matches_chinese_calendar() -> None:
    package = ChineseHolidays()
    for day in _span(date(2026, 1, 1), date(2026, 12, 31)):
        assert HOLIDAYS_2026.official(day) == package.official(day), day


def test_chinese_calendar_reports_the_years_it_lacks() -> None:
    """Whatever release is installed: the year after its last is unknown, and the calendar
    built on it falls back instead of failing."""
    package = ChineseHolidays()
    assert 2026 in package.years
    beyond = max(package.years) + 1
    assert package.official(date(beyond, 5, 1)) is Official.UNKNOWN_YEAR
    assert package.official(date(min(package.years) - 1, 5, 1)) is Official.UNKNOWN_YEAR
    calendar = BusinessCalendar(holidays="cn")
    monday = date(beyond, 1, 1) + timedelta(days=(7 - date(beyond, 1, 1).weekday()) % 7)
    assert calendar.is_workday(monday + timedelta(days=7))
    assert not calendar.is_workday(monday + timedelta(days=12))  # Saturday
    assert calendar.missing_years == {beyond}


def test_holiday_table_refuses_contradictions() -> None:
    with pytest.raises(ValueError, match="both"):
        HolidayTable(years=[2026], holidays=[date(2026, 1, 1)], workdays=[date(2026, 1, 1)])
    with pytest.raises(ValueError, match="outside"):
        HolidayTable(years=[2026], holidays=[date(2027, 1, 1)])


# Configuration


def test_parse_working_hours() -> None:
    assert BusinessCalendar.parse_working_hours(["09:00-12:00", " 13:30 - 17:30 "]) == [
        (time(9), time(12)),
        (time(13, 30), time(17, 30)),
    ]


@pytest.mark.parametrize(
    "spans",
    [
        [],
        ["9-12"],
        ["09:00"],
        ["09:00-25:00"],
        ["12:00-09:00"],
        ["09:00-12:00", "11:00-17:00"],
        ["13:30-17:30", "09:00-12:00"],
    ],
)
def test_parse_working_hours_rejects_bad_spans(spans: list[str]) -> None:
    with pytest.raises(ValueError):
        BusinessCalendar.parse_working_hours(spans)


def test_constructor_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        BusinessCalendar(working_hours=[])
    with pytest.raises(ValueError):
        BusinessCalendar(holidays="us")  # type: ignore[arg-type]


def test_custom_working_hours() -> None:
    calendar = BusinessCalendar(holidays=HOLIDAYS_2026, working_hours=[(time(8), time(20))])
    assert due(cst(2026, 9, 29, 19), "2 working hours", calendar) == cst(2026, 9, 30, 9)
    assert due(cst(2026, 9, 29, 19), "1 working day", calendar) == cst(2026, 9, 30, 20)


# point_at


def test_point_at_calendar_interpolates() -> None:
    start, end = cst(2026, 10, 1), cst(2026, 10, 2)
    assert CN.point_at(start, end, 0.5, "calendar") == cst(2026, 10, 1, 12)


def test_point_at_working_interpolates_in_working_time() -> None:
    start = cst(2026, 9, 30, 16)
    end = due(start, "3 working days")  # Oct 10 17:30
    total = CN.working_seconds_between(start, end)
    assert total == 1.5 * 3600 + 3 * 7 * 3600
    assert CN.point_at(start, end, 0.0, "working_days") == start
    assert CN.point_at(start, end, 1.0, "working_days") == end
    half = CN.point_at(start, end, 0.5, "working_days")
    assert CN.working_seconds_between(start, half) == total / 2
    assert CN.point_at(cst(2026, 9, 29, 9), cst(2026, 9, 29, 17, 30), 0.5, "working_hours") == (
        cst(2026, 9, 29, 14)  # 3.5 of 7 working hours: the morning and 30 minutes after lunch
    )


# remaining, suspend and resume


def test_remaining_calendar() -> None:
    left = CN.remaining(cst(2026, 10, 1, 12), cst(2026, 10, 1, 10, 30), "calendar")
    assert (left.kind, left.seconds, left.text) == ("calendar", 5400, "90 minutes")
    assert CN.remaining(cst(2026, 10, 1, 12), cst(2026, 10, 2), "calendar").seconds == 0


def test_remaining_working_hours() -> None:
    left = CN.remaining(cst(2026, 10, 9, 14), cst(2026, 10, 8, 17), "working_hours")
    # 30 min on Oct 8, 3 h + 30 min on Oct 9
    assert left == Duration("working_hours", 4 * 3600, 0, "4 working hours")


def test_remaining_working_days_counts_days_after_the_pause_day() -> None:
    end = cst(2026, 10, 10, 17, 30)
    assert CN.remaining(end, cst(2026, 9, 30, 16), "working_days").days == 3
    assert CN.remaining(end, cst(2026, 10, 8, 11), "working_days").days == 2
    assert CN.remaining(end, cst(2026, 10, 10, 9), "working_days").days == 0
    assert CN.remaining(end, cst(2026, 10, 12, 9), "working_days").days == 0


@pytest.mark.parametrize(
    ("text", "kind", "paused"),
    [
        ("3 hours", "calendar", cst(2026, 9, 30, 17)),
        ("5 working hours", "working_hours", cst(2026, 9, 30, 20)),
        ("5 working hours", "working_hours", cst(2026, 10, 1, 9)),
        ("5 working hours", "working_hours", cst(2026, 10, 8, 10, 15)),
        ("3 working days", "working_days", cst(2026, 9, 30, 16, 30)),
        ("3 working days", "working_days", cst(2026, 10, 3, 9)),
        ("3 working days", "working_days", cst(2026, 10, 9, 17)),
        ("0 working days", "working_days", cst(2026, 9, 30, 17)),
    ],
)
def test_pause_and_resume_at_once_gives_the_same_due(
    text: str, kind: DurationKind, paused: datetime
) -> None:
    end = due(cst(2026, 9, 30, 16), text)
    assert CN.add(paused, CN.remaining(end, paused, kind)) == end


@pytest.mark.parametrize("resume_hour", [9, 13, 23])
def test_working_days_resumed_later_the_same_day_give_the_same_due(resume_hour: int) -> None:
    end = due(cst(2026, 9, 30, 16), "3 working days")
    left = CN.remaining(end, cst(2026, 10, 8, 0, 30), "working_days")
    assert CN.add(cst(2026, 10, 8, resume_hour), left) == end


def test_resume_adds_back_working_days_spent_suspended() -> None:
    end = due(cst(2026, 9, 30, 16), "3 working days")  # Oct 10 17:30
    left = CN.remaining(end, cst(2026, 10, 8, 11), "working_days")  # Oct 9, Oct 10
    # suspended through Friday Oct 9: the new due moves one working day later
    assert CN.add(cst(2026, 10, 9, 15), left) == cst(2026, 10, 12, 17, 30)


# Round trip between working_seconds_between and add_working_seconds

starts = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 10, 31), timezones=st.just(SHANGHAI)
)


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(start=starts, seconds=st.integers(0, 60 * 7 * 3600 * 10**6).map(lambda us: us / 10**6))
def test_add_then_measure_round_trips(start: datetime, seconds: float) -> None:
    end = CN.add_working_seconds(start, seconds)
    assert end >= start
    assert CN.working_seconds_between(start, end) == pytest.approx(seconds, abs=1e-6)


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(start=starts, length=st.timedeltas(timedelta(0), timedelta(days=40)))
def test_measure_then_add_reaches_the_earliest_equal_instant(
    start: datetime, length: timedelta
) -> None:
    end = start + length
    worked = CN.working_seconds_between(start, end)
    reached = CN.add_working_seconds(start, worked)
    assert reached <= end
    assert CN.working_seconds_between(reached, end) == 0


def _worked_span_by_span(calendar: BusinessCalendar, a: datetime, b: datetime) -> float:
    """Working time in [a, b), every span of every day clipped: what the calendar's whole
    days (their kept totals) must agree with."""
    total = timedelta()
    day = a.astimezone(calendar.tz).date() - timedelta(days=1)
    while day <= b.astimezone(calendar.tz).date() + timedelta(days=1):
        for start, end in calendar._spans(day):
            total += max(timedelta(), min(end, b) - max(start, a))
        day += timedelta(days=1)
    return total.total_seconds()


BERLIN_CAL = BusinessCalendar(timezone="Europe/Berlin", holidays="none")


@settings(derandomize=True, database=None, deadline=None, max_examples=400)
@given(
    start=starts,
    length=st.timedeltas(timedelta(0), timedelta(days=60)),
    in_utc=st.booleans(),
    berlin=st.booleans(),
)
def test_whole_days_count_as_their_spans_do(
    start: datetime, length: timedelta, in_utc: bool, berlin: bool
) -> None:
    calendar = BERLIN_CAL if berlin else CN
    if in_utc:  # the clock's and the database's instants take the calendar's fast path
        start = start.astimezone(UTC)
    end = start + length
    worked = calendar.working_seconds_between(start, end)
    assert worked == pytest.approx(_worked_span_by_span(calendar, start, end), abs=1e-6)
    reached = calendar.add_working_seconds(start, worked)
    assert _worked_span_by_span(calendar, start, reached) == pytest.approx(worked, abs=1e-6)
    if worked:  # the earliest such instant: a second less is not enough
        assert _worked_span_by_span(calendar, start, reached - timedelta(seconds=1)) < worked
