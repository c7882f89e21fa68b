"""Operational output: `/metrics` (parsed with prometheus-client's own parser; only for an
admin or monitor key unless metrics.public) and the logs (JSON lines with the request id)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, event, func, select, update

from huying import __version__, logs, metrics
from huying.alerts.fanout import fan_out
from huying.alerts.models import Delivery, Event
from huying.app import create_app
from huying.auth.models import ApiKey
from huying.auth.service import create_key, create_user
from huying.clock import FrozenClock
from huying.db import make_engine, make_sessionmaker
from huying.reports import rollups
from huying.runtime import Runtime, build_runtime
from huying.settings import LoggingSettings
from huying.worker import Worker
from tests.api.support import assert_problem
from tests.conftest import World, make_settings, submit_body

API = "/api/v1/requests"
NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"  # connection refused at once


def instrumented(rt: Runtime) -> FastAPI:
    app = create_app(rt)
    if not hasattr(app.state, "metrics"):  # until create_app installs them itself
        metrics.install(app, rt)
    return app


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(instrumented(rt), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def monitor(rt: Runtime) -> dict[str, str]:
    """The headers of a Prometheus scraper: a key of role monitor."""
    return {"Authorization": f"Bearer {new_key(rt, 'monitor')}"}


def new_key(rt: Runtime, role: str, department: str | None = None) -> str:
    with rt.transaction() as s:
        _, token = create_key(session=s, role=role, department=department, name=role, now=rt.now())
    return token


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    """The one sample of family `name` (any sample suffix) with exactly these labels."""
    family = families[name]
    found = [s.value for s in family.samples if s.labels == labels]
    assert len(found) == 1, (name, labels, family.samples)
    return float(found[0])


def sample(families: dict[str, Any], family: str, sample_name: str, **labels: str) -> float:
    found = [
        s.value for s in families[family].samples if s.name == sample_name and s.labels == labels
    ]
    assert len(found) == 1, (sample_name, labels, families[family].samples)
    return float(found[0])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_state_of_the_system(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, monitor: dict[str, str]
) -> None:
    # Wednesday 18 November 10:00: A and B go to GXJ, C (OTHER) to the dispatchers' queue
    ids = {}
    for name, category in (("A", "POWER"), ("B", "POWER"), ("C", "OTHER")):
        r = client.post(API, json=submit_body(category=category), headers=world.h("integration"))
        ids[name] = r.json()["id"]
    clock.set(at("2026-11-18T10:30:00+08:00"))
    assert client.post(f"{API}/{ids['B']}/actions/sign", headers=world.h("gxj")).status_code == 200
    r = client.post(
        "/api/v1/webhooks",
        json={"url": "https://hooks.example.com/huying", "event_types": ["*"]},
        headers=world.h("admin"),
    )
    assert r.status_code == 201, r.text
    # 4 events so far (A, B dispatched; C awaiting dispatch; B signed) → 4 deliveries
    assert fan_out(rt, now=clock.now()) == 4
    with rt.transaction() as s:
        first = s.scalar(select(func.min(Delivery.id)))
        s.execute(
            update(Delivery)
            .where(Delivery.id == first)
            .values(status="dead", next_attempt_at=None, attempts=8)
        )

    # Thursday 17:30: the worker ticks. A's sign deadline is due: overdue, level 1. C's
    # dispatch deadline (2 working hours, due Wed 12:00) went overdue then, level 1, and rung 2
    # came one working day later (Thu 12:00): level 2.
    clock.set(at("2026-11-19T17:30:00+08:00"))
    Worker(rt, name="test-worker").tick(clock.now())
    clock.advance(timedelta(seconds=42))

    families = scrape(client, monitor)
    assert value(families, "huying_database_up") == 1
    states = {s.labels["state"]: s.value for s in families["huying_requests"].samples}
    assert states == {
        "awaiting_dispatch": 1,
        "closed": 0,
        "dispatched": 1,
        "in_progress": 1,
        "merged": 0,
        "rejected": 0,
        "replied": 0,
        "return_review": 0,
        "submitted": 0,
        "suspended": 0,
    }
    assert value(families, "huying_requests_overdue") == 2
    assert value(families, "huying_requests_escalated", level="1") == 1
    assert value(families, "huying_requests_escalated", level="2") == 1
    assert value(families, "huying_requests_escalated", level="3") == 0
    assert sample(families, "huying_escalations", "huying_escalations_total") == 3
    assert value(families, "huying_workers") == 1
    assert value(families, "huying_worker_tick_lag_seconds") == 42
    # The tick's events are not fanned out yet: A warning, overdue, escalated; C warning,
    # overdue, escalated twice.
    with rt.transaction() as s:
        unfanned = s.scalar(
            select(func.count()).select_from(Event).where(Event.fanned_out_at.is_(None))
        )
    assert unfanned == 7
    assert value(families, "huying_outbox_events_pending") == 7
    assert value(families, "huying_outbox_deliveries_pending") == 3
    assert value(families, "huying_deliveries_dead") == 1


def test_months_the_rates_read_from_requests_until_folded(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, monitor: dict[str, str]
) -> None:
    # Wednesday 18 November: a request; November has not ended, so nothing is due a fold
    r = client.post(API, json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    assert value(scrape(client, monitor), "huying_report_months_unfolded") == 0
    clock.set(at("2026-12-01T09:00:00+08:00"))  # November has ended, never folded
    assert value(scrape(client, monitor), "huying_report_months_unfolded") == 1
    assert rollups.fold_due(rt) == 1
    assert value(scrape(client, monitor), "huying_report_months_unfolded") == 0
    # a November request signed in December: November is dirty again until the next fold
    sign = client.post(f"{API}/{r.json()['id']}/actions/sign", headers=world.h("gxj"))
    assert sign.status_code == 200, sign.text
    assert value(scrape(client, monitor), "huying_report_months_unfolded") == 1


def test_http_latency_by_route_template_and_status(
    client: TestClient, world: World, monitor: dict[str, str]
) -> None:
    rid = client.post(API, json=submit_body(), headers=world.h("integration")).json()["id"]
    for _ in range(2):
        assert client.get(f"{API}/{rid}", headers=world.h("admin")).status_code == 200
    assert client.get(f"{API}/999999", headers=world.h("admin")).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.get(API).status_code == 401

    families = scrape(client, monitor)
    h = "huying_http_request_duration_seconds"
    one = {"method": "GET", "route": "/api/v1/requests/{request_id}"}
    assert sample(families, h, f"{h}_count", **one, status="200") == 2
    assert sample(families, h, f"{h}_count", **one, status="404") == 1
    assert sample(families, h, f"{h}_count", method="POST", route=API, status="201") == 1
    assert sample(families, h, f"{h}_count", method="GET", route="unmatched", status="404") == 1
    assert sample(families, h, f"{h}_count", method="GET", route=API, status="401") == 1
    buckets = [
        s
        for s in families[h].samples
        if s.name == f"{h}_bucket" and s.labels.get("status") == "200"
    ]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 2
    assert sample(families, h, f"{h}_sum", **one, status="200") > 0
    # templates, never raw ids
    routes = {s.labels["route"] for s in families[h].samples}
    assert not any(re.search(r"/\d+(/|$)", route) for route in routes), routes


def test_each_app_has_its_own_registry(rt: Runtime, monitor: dict[str, str]) -> None:
    with TestClient(instrumented(rt)) as a, TestClient(instrumented(rt)) as b:
        for _ in range(3):
            a.get("/healthz")
        b.get("/healthz")
        h = "huying_http_request_duration_seconds"
        count = {"method": "GET", "route": "/healthz", "status": "200"}
        assert sample(scrape(a, monitor), h, f"{h}_count", **count) == 3
        assert sample(scrape(b, monitor), h, f"{h}_count", **count) == 1


# --- who may scrape ----------------------------------------------------------------------


@pytest.fixture
def statements(rt: Runtime) -> Iterator[list[str]]:
    """The SQL the runtime's engine runs, as it runs it."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(rt.db, "before_cursor_execute", record)
    yield seen
    event.remove(rt.db, "before_cursor_execute", record)


def aggregates(seen: list[str]) -> list[str]:
    """The statements of the collector: every one of them counts rows."""
    return [sql for sql in seen if "count(" in sql.lower() or "max(" in sql.lower()]


def test_without_credentials_a_scrape_is_401_and_queries_nothing(
    client: TestClient, statements: list[str]
) -> None:
    for headers in ({}, {"Authorization": "Bearer hyk_not-a-key"}):
        statements.clear()
        r = client.get("/metrics", headers=headers)
        assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert aggregates(statements) == []
        assert "huying_requests" not in r.text


@pytest.mark.parametrize(
    ("role", "department"),
    [("integration", None), ("dispatcher", None), ("supervisor", None), ("department", "GXJ")],
)
def test_a_key_of_another_role_is_403_and_runs_no_aggregate(
    client: TestClient,
    rt: Runtime,
    world: World,
    statements: list[str],
    role: str,
    department: str | None,
) -> None:
    token = new_key(rt, role, department)
    statements.clear()
    r = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 403, "admin, monitor")
    assert aggregates(statements) == []
    assert statements, "the key itself was looked up"


def test_admin_and_monitor_keys_and_an_admin_session_may_scrape(
    client: TestClient, rt: Runtime, world: World, monitor: dict[str, str]
) -> None:
    assert value(scrape(client, monitor), "huying_database_up") == 1
    assert value(scrape(client, world.h("admin")), "huying_database_up") == 1
    with rt.transaction() as s:
        create_user(
            session=s,
            username="ops",
            password="运维-password-1",
            role="admin",
            department=None,
            now=rt.now(),
        )
    login = client.post(
        "/api/v1/auth/login", json={"username": "ops", "password": "运维-password-1"}
    )
    assert login.status_code == 200, login.text
    session = {"Authorization": f"Bearer {login.json()['token']}"}
    assert value(scrape(client, session), "huying_database_up") == 1


def test_a_revoked_monitor_key_is_401(
    client: TestClient, rt: Runtime, monitor: dict[str, str]
) -> None:
    scrape(client, monitor)
    with rt.transaction() as s:
        s.execute(update(ApiKey).where(ApiKey.role == "monitor").values(revoked_at=rt.now()))
    assert_problem(client.get("/metrics", headers=monitor), 401, "revoked")


def test_public_metrics_need_no_credentials(migrated: str, clock: FrozenClock) -> None:
    public = build_runtime(make_settings(migrated, metrics={"public": True}), clock=clock)
    try:
        with TestClient(instrumented(public)) as c:
            families = scrape(c)
    finally:
        public.close()
    assert value(families, "huying_database_up") == 1


# --- the database down ---------------------------------------------------------------------


def unplug(rt: Runtime) -> Engine:
    """Point the runtime at a database server that is not there, as in an outage."""
    dead = make_engine(NOWHERE)
    rt.sessions = make_sessionmaker(dead)
    return dead


def test_a_public_scrape_without_the_database_still_answers(clock: FrozenClock) -> None:
    down = build_runtime(make_settings(NOWHERE, metrics={"public": True}), clock=clock)
    try:
        with TestClient(instrumented(down), raise_server_exceptions=False) as c:
            families = scrape(c)
    finally:
        down.close()
    assert value(families, "huying_database_up") == 0
    assert "huying_requests" not in families
    assert value(families, "huying_info", version=__version__) == 1


def test_a_key_that_passed_lately_still_scrapes_while_the_database_is_down(
    rt: Runtime, clock: FrozenClock, world: World, monitor: dict[str, str]
) -> None:
    """The outage shows as huying_database_up 0, not as a failed scrape; for an hour."""
    app = instrumented(rt)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert value(scrape(c, monitor), "huying_database_up") == 1
        live = rt.sessions
        dead = unplug(rt)
        try:
            clock.advance(timedelta(minutes=59))
            families = scrape(c, monitor)
            assert value(families, "huying_database_up") == 0
            assert "huying_requests" not in families
            # a key this process never accepted cannot be checked: 503, nothing shown
            r = c.get("/metrics", headers=world.h("admin"))
            assert_problem(r, 503)
            clock.advance(timedelta(minutes=2))  # an hour and a minute since it last passed
            assert_problem(c.get("/metrics", headers=monitor), 503)
        finally:
            rt.sessions = live
            dead.dispose()


# --- logs ----------------------------------------------------------------------------


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for h in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(h)
    root.setLevel(level)


def logged_app(rt: Runtime) -> FastAPI:
    app = instrumented(rt)
    logs.install(app)

    @app.get("/_log_something")
    def log_something() -> dict[str, str]:  # a sync route: runs in the thread pool
        logging.getLogger("huying.test").info("did %s", "something", extra={"step": 3})
        return {"ok": "yes"}

    return app


def test_json_logs_carry_the_request_id(rt: Runtime, root_logger: logging.Logger) -> None:
    out = io.StringIO()
    logs.configure(LoggingSettings.model_validate({"json": True, "level": "INFO"}), stream=out)
    with TestClient(logged_app(rt)) as c:
        r = c.get("/_log_something")
        given = c.get("/_log_something", headers={"X-Request-ID": "grid-7f3a.1"})
        weird = c.get("/_log_something", headers={"X-Request-ID": 'a b"c'})
    rid = r.headers["X-Request-ID"]
    assert len(rid) == 32
    assert given.headers["X-Request-ID"] == "grid-7f3a.1"
    assert weird.headers["X-Request-ID"] not in ('a b"c', rid)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [e for e in lines if e["logger"] == "huying.test"]
    assert [e["request_id"] for e in mine] == [rid, "grid-7f3a.1", weird.headers["X-Request-ID"]]
    assert mine[0]["message"] == "did something"
    assert mine[0]["level"] == "INFO"
    assert mine[0]["step"] == 3
    assert mine[0]["time"].endswith("+00:00")
    # outside a request there is no id
    logging.getLogger("huying.test").warning("idle")
    assert json.loads(out.getvalue().splitlines()[-1])["request_id"] is None


def test_plain_logs_and_level(rt: Runtime, root_logger: logging.Logger) -> None:
    out = io.StringIO()
    logs.configure(LoggingSettings(), stream=out)  # plain, INFO
    logs.configure(LoggingSettings.model_validate({"level": "WARNING"}), stream=out)  # replaces
    assert sum(getattr(h, "_huying", False) for h in root_logger.handlers) == 1
    with TestClient(logged_app(rt)) as c:
        c.get("/_log_something")  # INFO: filtered out
    logging.getLogger("huying.test").warning("disk %d%% full", 93)
    text = out.getvalue()
    assert "did something" not in text
    assert text.rstrip().endswith("WARNING huying.test [-]: disk 93% full")
