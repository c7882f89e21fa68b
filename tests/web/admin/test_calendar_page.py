"""The admin page 工作日历: what the calendar knows, a year's holidays and make-up working days
as local dates, the working hours and time zone, and the warning for a year not covered."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from huying.auth.service import Principal
from huying.calendar import BusinessCalendar, HolidayTable
from huying.runtime import Runtime
from huying.web.admin.calendar import year_of
from tests.web.conftest import login


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# The holidays these tests expect, written out: 2025 and 2026 known, 2027 not, whatever years
# the installed chinese_calendar knows.
TABLE = HolidayTable(
    years=[2025, 2026],
    holidays=[
        *_days(date(2025, 10, 1), date(2025, 10, 8)),
        *_days(date(2026, 9, 25), date(2026, 9, 27)),
        *_days(date(2026, 10, 1), date(2026, 10, 7)),
    ],
    workdays=[date(2025, 9, 28), date(2025, 10, 11), date(2026, 9, 20), date(2026, 10, 10)],
)


@pytest.fixture(autouse=True)
def table_calendar(rt: Runtime) -> None:
    """The runtime's calendar on TABLE, with the configured hours and zone."""
    rt.calendar = BusinessCalendar(
        timezone=rt.calendar.tz.key, working_hours=rt.calendar.working_hours, holidays=TABLE
    )


def test_the_admin_sees_this_years_holidays_hours_and_zone(
    web: TestClient, staff: dict[str, Principal]
) -> None:
    login(web, "admin")
    page = web.get("/admin/calendar")
    assert page.status_code == 200
    text = page.text
    assert "工作日历" in text and 'aria-current="page">工作日历' in text
    assert "Asia/Shanghai（UTC+08:00）" in text
    assert "09:00-12:00、13:30-17:30" in text
    # The test clock is 2026-11-18: 2026's National Day week and its make-up Saturday.
    assert "2026 年节假日与调休" in text
    assert "10月1日（周四）—10月7日（周三），共 7 天" in text
    assert "10月10日（周六）" in text and "9月20日（周日）" in text


def test_a_year_is_chosen_among_those_known(web: TestClient, staff: dict[str, Principal]) -> None:
    login(web, "admin")
    assert "2025 年节假日与调休" in web.get("/admin/calendar?year=2025").text
    # A year the calendar does not know falls back to this one.
    assert "2026 年节假日与调休" in web.get("/admin/calendar?year=1900").text
    assert "2026 年节假日与调休" in web.get("/admin/calendar?year=abc").text


def test_next_year_unknown_after_warn_from_is_a_warning(
    web: TestClient, rt: Runtime, staff: dict[str, Principal]
) -> None:
    login(web, "admin")
    text = web.get("/admin/calendar").text
    # 2026-11-18 is past calendar.warn_from (11-01): 2027, not in TABLE, is flagged.
    assert 'data-warning="year-2027"' in text


def test_others_are_refused(web: TestClient, staff: dict[str, Principal]) -> None:
    login(web, "supervisor")
    assert web.get("/admin/calendar").status_code == 403


def test_holidays_are_runs_of_days_off_around_a_weekday() -> None:
    table = HolidayTable(
        years=[2030],
        holidays=[date(2030, 10, d) for d in (1, 2, 3, 4)],  # Tuesday to Friday
        workdays=[date(2030, 9, 29)],
    )
    cal = BusinessCalendar(holidays=table)
    months = year_of(cal, 2030)
    october = months[9]  # the weekend after the holidays is part of the break
    assert [(h.first, h.last) for h in october.holidays] == [(date(2030, 10, 1), date(2030, 10, 6))]
    assert months[8].workdays == [date(2030, 9, 29)]
    # An ordinary weekend is no holiday.
    assert all(not m.holidays for m in months if m.number != 10)
