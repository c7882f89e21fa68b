"""Working days and working hours: when a time limit falls due.

Working days are Monday to Friday, minus statutory holidays, plus make-up working days (调休),
from a holiday source: in production `ChineseHolidays` (the `chinese_calendar` package), in
tests a `HolidayTable` written by hand. Configured extra holidays and workdays win over the
source. A year the source does not know falls back to Monday to Friday plus those extras, with
one warning and a note in `missing_years` (shown by /healthz). Working hours are wall-clock spans
in the calendar's time zone. Every datetime in or out is timezone-aware; results are in UTC.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import chinese_calendar

from huying.durations import Duration, DurationKind, make_duration

log = logging.getLogger("huying.calendar")

_ZERO = timedelta()
_ONE_DAY = timedelta(days=1)
_SPAN = re.compile(r"\s*(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*")
Span = tuple[datetime, datetime]


class Official(Enum):
    """What a holiday source says about a day."""

    HOLIDAY = "holiday"  # a statutory day off, whatever its weekday
    MAKE_UP_WORKDAY = "make_up_workday"  # a weekend day worked in exchange (调休)
    ORDINARY = "ordinary"  # neither: Monday to Friday are worked
    UNKNOWN_YEAR = "unknown_year"  # the source has no data for the day's year


class HolidaySource(Protocol):
    """Where statutory holidays and make-up working days come from, year by year."""

    @property
    def years(self) -> frozenset[int]:
        """The years this source has official data for."""
        ...

    def official(self, day: date) -> Official: ...


class ChineseHolidays:
    """The State Council's holidays as the installed `chinese_calendar` package knows them.

    The package learns a year only in a release after its publication, so the years it knows
    are read from its own tables rather than assumed.
    """

    def __init__(self) -> None:
        holidays: dict[date, object] = chinese_calendar.holidays
        workdays: dict[date, object] = chinese_calendar.workdays
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        # The package answers for every year between its first and its last (its own rule).
        first, last = min(self._holidays).year, max(self._holidays).year
        self._years = frozenset(range(first, last + 1))

    @property
    def years(self) -> frozenset[int]:
        return self._years

    def official(self, day: date) -> Official:
        return _classify(day, self._years, self._holidays, self._workdays)


class HolidayTable:
    """Holidays and make-up working days written out by hand, for the years named.

    Tests use it so that their expectations do not move when `chinese_calendar` learns a year.
    """

    def __init__(
        self, *, years: Iterable[int], holidays: Iterable[date] = (), workdays: Iterable[date] = ()
    ) -> None:
        self._years = frozenset(years)
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        if both := self._holidays & self._workdays:
            raise ValueError(f"days both holiday and workday: {sorted(both)}")
        if stray := {d for d in self._holidays | self._workdays if d.year not in self._years}:
            raise ValueError(f"days outside the years of the table: {sorted(stray)}")

    @property
    def years(self) -> frozenset[int]:
        return self._years

    def official(self, day: date) -> Official:
        return _classify(day, self._years, self._holidays, self._workdays)


def _classify(
    day: date, years: frozenset[int], holidays: frozenset[date], workdays: frozenset[date]
) -> Official:
    if day.year not in years:
        return Official.UNKNOWN_YEAR
    if day in holidays:
        return Official.HOLIDAY
    if day in workdays:
        return Official.MAKE_UP_WORKDAY
    return Official.ORDINARY


class BusinessCalendar:
    def __init__(
        self,
        *,
        timezone: str = "Asia/Shanghai",
        working_hours: Sequence[tuple[time, time]] = (
            (time(9), time(12)),
            (time(13, 30), time(17, 30)),
        ),
        holidays: Literal["cn", "none"] | HolidaySource = "cn",
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
    ) -> None:
        """`holidays`: "cn" for `ChineseHolidays`, "none" for Monday to Friday only (no year is
        then missing), or any other HolidaySource."""
        source: HolidaySource | None
        if holidays == "cn":
            source = ChineseHolidays()
        elif holidays == "none":
            source = None
        elif isinstance(holidays, str):
            raise ValueError(f"holidays must be 'cn' or 'none', not {holidays!r}")
        else:
            source = holidays
        _check_spans(working_hours)
        self._tz = ZoneInfo(timezone)
        self._hours = tuple(working_hours)
        self._source = source
        self._extra_holidays = frozenset(extra_holidays)
        self._extra_workdays = frozenset(extra_workdays)
        self._missing: set[int] = set()
        self._workday_cache: dict[date, bool] = {}
        self._span_cache: dict[date, tuple[Span, ...]] = {}
        self._total_cache: dict[date, timedelta] = {}

    @staticmethod
    def parse_working_hours(spans: Sequence[str]) -> list[tuple[time, time]]:
        """["09:00-12:00", "13:30-17:30"] -> [(time(9), time(12)), (time(13, 30), time(17, 30))]."""
        result = []
        for span in spans:
            match = _SPAN.fullmatch(span)
            try:
                if match is None:
                    raise ValueError
                result.append((time.fromisoformat(match[1]), time.fromisoformat(match[2])))
            except ValueError:
                raise ValueError(
                    f"invalid working-hours span {span!r}: expected 'HH:MM-HH:MM'"
                ) from None
        _check_spans(result)
        return result

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def working_hours(self) -> tuple[tuple[time, time], ...]:
        """The working spans of a working day, in wall-clock time, in order."""
        return self._hours

    @property
    def official_years(self) -> frozenset[int]:
        """The years the holiday source has official data for (none with holidays "none")."""
        return frozenset() if self._source is None else self._source.years

    @property
    def missing_years(self) -> frozenset[int]:
        """Years asked about that the holiday source has no data for (Monday to Friday was used)."""
        return frozenset(self._missing)

    def knows_year(self, year: int) -> bool:
        """Whether `year`'s holidays are known: the source has it, or the config names one of
        its days (a district that types in next year's holidays itself); always with no source."""
        if self._source is None or year in self._source.years:
            return True
        return any(d.year == year for d in self._extra_holidays | self._extra_workdays)

    def unannounced(self, today: date, *, warn_from: tuple[int, int]) -> list[int]:
        """Years that should be known by `today` and are not: this year always, and next
        year from `warn_from` (month, day) on. The State Council publishes next year's
        holidays around November; until the package (or the config) has them, a deadline
        crossing New Year counts 元旦 as a working day."""
        years = [today.year]
        if (today.month, today.day) >= warn_from:
            years.append(today.year + 1)
        return [y for y in years if not self.knows_year(y)]

    def is_workday(self, day: date) -> bool:
        cached = self._workday_cache.get(day)
        if cached is None:
            cached = self._workday_cache[day] = self._compute_is_workday(day)
        return cached

    def workdays(self, start: date, end: date) -> list[date]:
        """The working days from `start` to `end`, both included."""
        return [day for day in _days(start, end) if self.is_workday(day)]

    def add(self, start: datetime, duration: Duration) -> datetime:
        """The instant a limit of `duration` that starts at `start` falls due."""
        if duration.kind == "calendar":
            return _utc(start) + timedelta(seconds=duration.seconds)
        if duration.kind == "working_hours":
            return self.add_working_seconds(start, duration.seconds)
        day = self._local(start).date()
        if duration.days == 0:
            while not self.is_workday(day):
                day += _ONE_DAY
        for _ in range(duration.days):
            day += _ONE_DAY
            while not self.is_workday(day):
                day += _ONE_DAY
        return self._spans(day)[-1][1]

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working time in [a, b); 0 if b <= a."""
        a, b = _utc(a), _utc(b)
        if b <= a:
            return 0.0
        first, last = self._local(a).date(), self._local(b).date()
        if first == last:
            return self._worked(first, a, b).total_seconds()
        # a's day and b's day clipped, the days between whole (their totals are kept)
        total = self._worked(first, a, b) + self._worked(last, a, b)
        day = first + _ONE_DAY
        while day < last:
            total += self._total(day)
            day += _ONE_DAY
        return total.total_seconds()

    def add_working_seconds(self, start: datetime, seconds: float) -> datetime:
        """The earliest instant with `seconds` of working time since `start`.

        A result at the end of a span stays there (12:00, not 13:30).
        """
        if seconds < 0:
            raise ValueError(f"working seconds cannot be negative: {seconds}")
        now, left = _utc(start), timedelta(seconds=seconds)
        if not left:
            return now
        day = self._local(now).date()
        while True:
            for span_start, span_end in self._spans(day):
                begin = max(span_start, now)
                if begin >= span_end:
                    continue
                if left <= span_end - begin:
                    return begin + left
                left -= span_end - begin
            day += _ONE_DAY
            while left > self._total(day):  # a whole day that does not reach it (or a day off)
                left -= self._total(day)
                day += _ONE_DAY

    def point_at(
        self, start: datetime, due: datetime, fraction: float, kind: DurationKind
    ) -> datetime:
        """The instant when `fraction` of the limit [start, due] has passed."""
        if fraction < 0:
            raise ValueError(f"fraction cannot be negative: {fraction}")
        if kind == "calendar":
            return _utc(start) + (_utc(due) - _utc(start)) * fraction
        return self.add_working_seconds(start, fraction * self.working_seconds_between(start, due))

    def remaining(self, due: datetime, at: datetime, kind: DurationKind) -> Duration:
        """What is left of a limit due at `due` when its clock stops at `at`.

        Adding the result at `at` gives back `due`; for working days, so does adding it at any
        instant of `at`'s local day, and each working day spent suspended is added back.
        """
        if kind == "calendar":
            return make_duration(kind, max(0.0, (_utc(due) - _utc(at)).total_seconds()))
        if kind == "working_hours":
            return make_duration(kind, self.working_seconds_between(at, due))
        after = self._local(at).date() + _ONE_DAY
        return make_duration(kind, len(self.workdays(after, self._local(due).date())))

    def _compute_is_workday(self, day: date) -> bool:
        if day in self._extra_workdays:
            return True
        if day in self._extra_holidays:
            return False
        official = Official.ORDINARY if self._source is None else self._source.official(day)
        if official is Official.HOLIDAY:
            return False
        if official is Official.MAKE_UP_WORKDAY:
            return True
        if official is Official.UNKNOWN_YEAR and day.year not in self._missing:
            self._missing.add(day.year)
            log.warning(
                "the holiday calendar has no official holidays for %d; "
                "using Monday to Friday plus the configured extra dates",
                day.year,
            )
        return day.weekday() < 5

    def _spans(self, day: date) -> tuple[Span, ...]:
        """The working spans of a local day, in UTC; empty on a day off."""
        spans = self._span_cache.get(day)
        if spans is None:
            spans = self._span_cache[day] = (
                tuple((self._at(day, start), self._at(day, end)) for start, end in self._hours)
                if self.is_workday(day)
                else ()
            )
        return spans

    def _worked(self, day: date, a: datetime, b: datetime) -> timedelta:
        """The working time of a local day that falls in [a, b)."""
        return sum(
            (max(_ZERO, min(end, b) - max(start, a)) for start, end in self._spans(day)), _ZERO
        )

    def _total(self, day: date) -> timedelta:
        """The working time of a local day; nothing on a day off."""
        total = self._total_cache.get(day)
        if total is None:
            total = self._total_cache[day] = sum(
                (end - start for start, end in self._spans(day)), _ZERO
            )
        return total

    def _at(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, tzinfo=self._tz).astimezone(UTC)

    def _local(self, moment: datetime) -> datetime:
        return _utc(moment).astimezone(self._tz)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # most: the clock's and the database's instants
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
    return moment.astimezone(UTC)


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += _ONE_DAY


def _check_spans(spans: Sequence[tuple[time, time]]) -> None:
    if not spans:
        raise ValueError("working hours need at least one span")
    previous_end: time | None = None
    for start, end in spans:
        if start >= end:
            raise ValueError(f"working-hours span {start:%H:%M}-{end:%H:%M} ends before it starts")
        if previous_end is not None and start < previous_end:
            raise ValueError(
                f"working-hours span {start:%H:%M}-{end:%H:%M} overlaps or precedes the one before"
            )
        previous_end = end
