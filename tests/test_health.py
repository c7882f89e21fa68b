from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient

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
    # a year chinese-calendar does not know shows up once asked about
    rt.calendar.is_workday(datetime(2027, 3, 1).date())
    assert 2027 in client.get("/healthz").json()["calendar"]["years_without_official_holidays"]
