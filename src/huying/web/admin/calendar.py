"""The admin page 工作日历: the working calendar every time limit is counted on, read only.

What the holiday source knows (its years, and those the config adds days to), one year's
holidays and make-up working days as local dates, the working hours and the time zone, and a
warning while a year a deadline may soon cross is unknown (`calendar.warn_from`). The
calendar does not list a year's holidays itself: they are read off `is_workday`, day by day,
so the config's extra holidays and workdays show as they count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from huying.api.deps import Rt
from huying.calendar import BusinessCalendar
from huying.runtime import Runtime
from huying.web import session as web
from huying.web.admin.common import admin_page
from huying.web.pages import Page

router = APIRouter(include_in_schema=False)
WEEKDAYS = "一二三四五六日"


@dataclass(frozen=True)
class Holiday:
    """A run of consecutive days off that holds at least one weekday (a statutory holiday
    with the weekend around it), e.g. 10月1日—10月8日."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass(frozen=True)
class Month:
    number: int
    holidays: list[Holiday]
    workdays: list[date]  # weekend days worked (调休)


def day_text(d: date) -> str:
    return f"{d.month}月{d.day}日（周{WEEKDAYS[d.weekday()]}）"


def year_of(cal: BusinessCalendar, year: int) -> list[Month]:
    """The year's holidays and make-up working days, month by month (a holiday belongs to
    the month it starts in)."""
    day, end = date(year, 1, 1), date(year, 12, 31)
    holidays: list[Holiday] = []
    workdays: list[date] = []
    run: list[date] = []
    while day <= end + timedelta(days=1):
        off = day <= end and not cal.is_workday(day)
        if off:
            run.append(day)
        else:
            if any(d.weekday() < 5 for d in run):
                holidays.append(Holiday(run[0], run[-1]))
            run = []
            if day <= end and day.weekday() >= 5:
                workdays.append(day)
        day += timedelta(days=1)
    return [
        Month(
            m,
            [h for h in holidays if h.first.month == m],
            [d for d in workdays if d.month == m],
        )
        for m in range(1, 13)
    ]


def _asked_year(request: Request, known: list[int], this_year: int) -> int:
    text = request.query_params.get("year", "")
    return int(text) if text.isdigit() and int(text) in known else this_year


@router.get("/admin/calendar", response_class=HTMLResponse)
def calendar_page(request: Request, rt: Rt) -> Response:
    return admin_page(request, rt, lambda s, who: _page(request, rt, s, who))


def _page(request: Request, rt: Runtime, s: Session, who: web.Visitor) -> Page:
    cal, conf = rt.calendar, rt.settings.calendar
    today = rt.now().astimezone(cal.tz).date()
    official = sorted(cal.official_years)
    configured = sorted({d.year for d in (*conf.extra_holidays, *conf.extra_workdays)})
    # The years one may look at: those whose days are known, and this one.
    viewable = sorted({*official, *configured, today.year})
    year = _asked_year(request, viewable, today.year)
    known = cal.knows_year(year)
    offset = rt.now().astimezone(cal.tz).strftime("%z")
    return Page(
        "admin/calendar.html",
        {
            "title": "工作日历",
            "section": "calendar",
            "today": today,
            "year": year,
            "viewable": viewable,
            "known": known,
            # Asking about a year the source lacks would mark it missing for /healthz.
            "months": year_of(cal, year) if known else [],
            "source": conf.holidays,
            "official": official,
            "configured": configured,
            "extra_holidays": sorted(conf.extra_holidays),
            "extra_workdays": sorted(conf.extra_workdays),
            "unannounced": cal.unannounced(today, warn_from=conf.warn_from_day),
            "next_known": cal.knows_year(today.year + 1),
            "warn_from": conf.warn_from,
            "hours": list(conf.working_hours),
            "tz": cal.tz.key,
            "tz_offset": f"UTC{offset[:3]}:{offset[3:]}",
            "day_text": day_text,
        },
    )
