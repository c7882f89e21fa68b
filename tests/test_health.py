from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from huying import worker as worker_module
from huying.app import create_app
from huying.calendar import BusinessCalendar, HolidayTable
from huying.clock import FrozenClock
from huying.directory import service as directory
from huying.health import log_escalation_gaps
from huying.runtime import Runtime, build_runtime
from huying.settings import Settings
from huying.worker import Worker
from tests.conftest import Specs, World, make_settings, submit_body

# The gaps of tests/world.yaml under the default ladder (department_head, street_leadership,
# district_supervision) and no dispatch centre: departments in code order, then None.
WORLD_GAPS = [
    {"department": "DIST", "level": 1},
    {"department": "DIST", "level": 2},
    {"department": "GXJ", "level": 2},
    {"department": "RSJ", "level": 1},
    {"department": "RSJ", "level": 2},
    {"department": "STREET", "level": 1},
    {"department": None, "level": 1},
    {"department": None, "level": 2},
    {"department": None, "level": 3},
]


def shanghai(y: int, m: int, d: int) -> datetime:
    """10:00 in Shanghai on that day."""
    return datetime(y, m, d, 2, tzinfo=UTC)


def with_settings(rt: Runtime, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> Settings:
    settings = make_settings(rt.settings.database_url, **overrides)
    monkeypatch.setattr(rt, "settings", settings)
    return settings


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


# --- escalation gaps -----------------------------------------------------------------------


def test_healthz_lists_the_rungs_that_alert_nobody_and_stays_ok(
    client: TestClient, world: World
) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"  # a gap needs a person, not a probe taking the server out
    assert body["escalation_gaps"] == WORLD_GAPS


def test_healthz_gaps_follow_the_dispatch_centre_and_fixed_departments(
    client: TestClient, world: World, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GXJ as dispatch centre gives the requests without a lead its head (level 1) and,
    through its parent, the district's supervision (level 3); a {department, role} entry
    fills level 2 for everyone."""
    with_settings(rt, monkeypatch, dispatch_center="GXJ")
    gaps = client.get("/healthz").json()["escalation_gaps"]
    assert [g for g in gaps if g["department"] is None] == [{"department": None, "level": 2}]
    with_settings(
        rt,
        monkeypatch,
        dispatch_center="GXJ",
        escalation=[
            {"after": "0 seconds", "level": 1, "notify": ["department_head"]},
            {
                "after": "1 working day",
                "level": 2,
                "notify": [
                    "street_leadership",
                    {"department": "DIST", "role": "district_supervision"},
                ],
            },
        ],
    )
    assert client.get("/healthz").json()["escalation_gaps"] == [
        {"department": "DIST", "level": 1},
        {"department": "RSJ", "level": 1},
        {"department": "STREET", "level": 1},
    ]


def test_healthz_without_a_directory_names_only_the_requests_without_a_lead(
    client: TestClient,
) -> None:
    gaps = client.get("/healthz").json()["escalation_gaps"]
    assert gaps == [{"department": None, "level": n} for n in (1, 2, 3)]


def test_a_database_that_fails_the_gap_read_is_a_503_without_gaps(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**_: object) -> list[object]:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(directory, "escalation_gaps", down)
    r = client.get("/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "unavailable" and "escalation_gaps" not in body
    assert body["database"] == "unreachable: OperationalError"
    assert "years_without_official_holidays" in body["calendar"]


# --- the startup log -------------------------------------------------------------------


def gap_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "huying.health" and r.levelno == logging.WARNING
    ]


def test_the_app_logs_each_gap_once_at_startup(
    rt: Runtime, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="huying.health")
    with TestClient(create_app(rt)) as c:
        lines = gap_lines(caplog)
        c.get("/healthz")
    assert gap_lines(caplog) == lines  # at startup only, not per call
    assert len(lines) == len(WORLD_GAPS)
    assert lines[0] == "escalation alerts nobody: DIST: level 1 notifies nobody"
    assert lines[-1] == (
        "escalation alerts nobody: (no lead department; dispatch_center is not set): "
        "level 3 notifies nobody"
    )


def test_the_startup_log_is_capped(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with_settings(rt, monkeypatch, dispatch_center="GXJ")
    caplog.set_level(logging.WARNING, logger="huying.health")
    gaps = log_escalation_gaps(rt, limit=3)
    lines = gap_lines(caplog)
    assert len(gaps) == 7 and len(lines) == 4
    assert lines[2] == "escalation alerts nobody: GXJ: level 2 notifies nobody"
    assert lines[3].endswith("… and 4 more (`huying directory check` lists them all)")
    caplog.clear()
    log_escalation_gaps(rt, limit=7)
    assert len(gap_lines(caplog)) == 7
    assert gap_lines(caplog)[-1] == (
        "escalation alerts nobody: (no lead department → dispatch_center GXJ): "
        "level 2 notifies nobody"
    )


@pytest.fixture
def unreachable(tmp_path: Any, clock: FrozenClock, workflows: Specs) -> Iterator[Runtime]:
    """A runtime whose SQLite file cannot be opened: its folder does not exist."""
    runtime = build_runtime(
        make_settings(f"sqlite:///{tmp_path / 'missing' / 'huying.db'}"),
        clock=clock,
        workflows=workflows,
    )
    yield runtime
    runtime.close()


def test_a_database_down_at_startup_is_logged_and_the_app_starts(
    unreachable: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="huying.health")
    with TestClient(create_app(unreachable), raise_server_exceptions=False) as c:
        assert c.get("/healthz").status_code == 503
    [line] = gap_lines(caplog)
    assert line.startswith("could not check the escalation ladder against the directory")
    assert "OperationalError" in line


def test_the_worker_logs_the_gaps_when_it_starts(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`huying worker`: its scheduler is replaced by one that returns at once."""

    class Returns:
        def __init__(self, **_: object) -> None:
            self.started = False

        def add_listener(self, *_: object) -> None: ...
        def add_job(self, *_: object, **__: object) -> None: ...
        def shutdown(self, wait: bool = True) -> None: ...

        def start(self) -> None:
            self.started = True

    monkeypatch.setattr(worker_module, "BlockingScheduler", Returns)
    monkeypatch.setattr("huying.worker.signal.signal", lambda *_: None)
    caplog.set_level(logging.WARNING, logger="huying.health")
    worker_module.run_forever(rt)
    assert len(gap_lines(caplog)) == len(WORLD_GAPS)


# --- the holiday calendar --------------------------------------------------------------


@pytest.fixture
def knows_2026(monkeypatch: pytest.MonkeyPatch) -> None:
    """`holidays: cn` reads a table that knows 2026 only, whatever chinese-calendar knows."""
    monkeypatch.setattr("huying.calendar.ChineseHolidays", lambda: HolidayTable(years=[2026]))


def calendar_at(
    rt: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    at: datetime,
    **calendar: Any,
) -> dict[str, Any]:
    """/healthz's calendar on the day `at`, with the runtime's calendar built from settings
    that add `calendar` (as a config file would)."""
    settings = with_settings(rt, monkeypatch, calendar=calendar)
    from huying.runtime import build_calendar

    monkeypatch.setattr(rt, "calendar", build_calendar(settings))
    clock.set(at)
    with TestClient(create_app(rt)) as c:
        body: dict[str, Any] = c.get("/healthz").json()
    assert body["status"] == "ok"
    return dict(body["calendar"])


@pytest.mark.usefixtures("knows_2026")
def test_next_year_is_listed_from_warn_from_while_unknown(
    rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert calendar_at(rt, clock, monkeypatch, shanghai(2026, 12, 2)) == {
        "holidays": "cn",
        "last_official_year": 2026,
        "years_without_official_holidays": [2027],
        "warn_from": "11-01",
    }
    october = calendar_at(rt, clock, monkeypatch, shanghai(2026, 10, 1))
    assert october["years_without_official_holidays"] == []
    first_day = calendar_at(rt, clock, monkeypatch, shanghai(2026, 11, 1))
    assert first_day["years_without_official_holidays"] == [2027]
    later = calendar_at(rt, clock, monkeypatch, shanghai(2026, 12, 2), warn_from="12-15")
    assert later["years_without_official_holidays"] == [] and later["warn_from"] == "12-15"


@pytest.mark.usefixtures("knows_2026")
def test_a_year_the_config_names_a_day_of_is_known(
    rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A district that types in next year's holidays itself: 2027 is no longer listed, even
    once a deadline has counted days of it."""
    december = calendar_at(
        rt, clock, monkeypatch, shanghai(2026, 12, 2), extra_holidays=["2027-01-01"]
    )
    assert december["years_without_official_holidays"] == []
    assert rt.calendar.is_workday(date(2027, 3, 1))  # a Monday, by the fallback
    assert 2027 in rt.calendar.missing_years
    clock.set(shanghai(2026, 12, 3))
    with TestClient(create_app(rt)) as c:
        assert c.get("/healthz").json()["calendar"]["years_without_official_holidays"] == []


@pytest.mark.usefixtures("knows_2026")
def test_this_year_is_listed_when_unknown(
    rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = calendar_at(rt, clock, monkeypatch, shanghai(2027, 2, 1))
    assert calendar["years_without_official_holidays"] == [2027]


def test_healthz_reports_the_years_a_deadline_met_without_holidays(
    client: TestClient, rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before warn_from, a year is listed once a computation reaches it."""
    monkeypatch.setattr(rt, "calendar", BusinessCalendar(holidays=HolidayTable(years=[2026])))
    clock.set(shanghai(2026, 10, 1))
    calendar = client.get("/healthz").json()["calendar"]
    assert calendar["last_official_year"] == 2026
    assert calendar["years_without_official_holidays"] == []
    assert rt.calendar.is_workday(date(2028, 3, 1))  # a Wednesday, by the fallback
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["calendar"]["years_without_official_holidays"] == [2028]
    clock.set(shanghai(2026, 11, 2))
    assert client.get("/healthz").json()["calendar"]["years_without_official_holidays"] == [
        2027,
        2028,
    ]


def test_healthz_with_holidays_none_names_no_year(
    client: TestClient, rt: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "calendar", BusinessCalendar(holidays="none"))
    rt.calendar.is_workday(date(2031, 3, 3))
    clock.set(shanghai(2026, 12, 2))
    calendar = client.get("/healthz").json()["calendar"]
    assert calendar["last_official_year"] is None
    assert calendar["years_without_official_holidays"] == []
