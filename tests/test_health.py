from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from huying.calendar import BusinessCalendar, HolidayTable
from huying.clock import FrozenClock
from huying.runtime import Runtime
from huying.worker import Worker
from tests.conftest import World, submit_body


def test_healthz_reports_worker_outbox_and_calendar(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock
) -> None:
    before = client.get("/healthz").json()
    assert before["status"] == "ok" and before["last_tick_at"] is None
    client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert client.get("/healthz").json()["outbox"]["events_not_fanned_out"] == 1
    Worker(rt, name="w1").tick(clock.now())
    after = client.get("/healthz").json()
    assert after["workers"][0]["name"] == "w1"
    assert after["deliveries_dead"] == 0


def test_healthz_reports_the_years_the_holiday_source_lacks(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that knows 2026 only, whatever the installed chinese-calendar knows."""
    monkeypatch.setattr(rt, "calendar", BusinessCalendar(holidays=HolidayTable(years=[2026])))
    calendar = client.get("/healthz").json()["calendar"]
    assert calendar == {
        "holidays": "cn",
        "last_official_year": 2026,
        "years_without_official_holidays": [],
    }
    assert rt.calendar.is_workday(date(2027, 3, 1))  # a Monday, by the fallback
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["calendar"]["years_without_official_holidays"] == [2027]


def test_healthz_with_holidays_none_names_no_year(
    client: TestClient, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "calendar", BusinessCalendar(holidays="none"))
    rt.calendar.is_workday(date(2031, 3, 3))
    calendar = client.get("/healthz").json()["calendar"]
    assert calendar["last_official_year"] is None
    assert calendar["years_without_official_holidays"] == []
