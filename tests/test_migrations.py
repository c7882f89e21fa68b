"""The schema is built only by the migrations: they match the models and go down cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select

from huying import migrate
from huying.app import create_app
from huying.clock import FrozenClock
from huying.db import Base, make_engine
from huying.requests.models import Request, RequestReturn
from huying.runtime import Runtime, build_runtime
from tests.conftest import T0, World, _fresh_database, make_settings, submit_body

BEFORE_FACTS = "c87d14a1e27b"  # the revision before requests carried their report facts
BEFORE_RETURNS = "5b2f0c9d7e41"  # the revision before returns had their own rows


@pytest.fixture
def empty_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _fresh_database(tmp_path_factory)


def test_upgrade_matches_models_and_downgrade_to_base(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
        migrate.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)  # and up again
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@dataclass
class Stored:
    """A migrated database with the tests' directory, reached through the API."""

    rt: Runtime
    clock: FrozenClock
    world: World
    client: TestClient

    def submit(self) -> str:
        """A POWER request (→ GXJ), submitted at T0; the URL of its actions."""
        r = self.client.post(
            "/api/v1/requests", json=submit_body(), headers=self.world.h("integration")
        )
        assert r.status_code == 201, r.text
        return f"/api/v1/requests/{r.json()['id']}/actions"


@pytest.fixture
def stored(empty_url: str) -> Iterator[Stored]:
    clock = FrozenClock(T0)  # Wednesday 10:00; working hours 09:00-12:00, 13:30-17:30
    # Returns go straight back (no review): the returns migration reads the timeline rows
    # such returns wrote, as workflow version 1's did.
    settings = make_settings(empty_url, workflow_rules={"returns_need_review": False})
    rt = build_runtime(settings, clock=clock)
    try:
        migrate.upgrade(rt.db, calendar=rt.calendar)
        world = World(rt)
        with TestClient(create_app(rt)) as client:
            yield Stored(rt, clock, world, client)
    finally:
        rt.close()


def test_the_facts_migration_derives_the_facts_of_stored_requests(stored: Stored) -> None:
    """Requests stored before the facts existed get them from their deadlines, on the calendar."""
    rt, clock, gxj = stored.rt, stored.clock, stored.world.h("gxj")
    url = stored.submit()
    clock.set(T0 + timedelta(hours=3))  # 13:00, in the lunch break: 2 working hours
    assert stored.client.post(f"{url}/sign", headers=gxj).status_code == 200
    clock.set(T0 + timedelta(days=1))  # Thursday 10:00: 4 + 1 working hours
    body = {"content": "已协调", "resolved": True}
    assert stored.client.post(f"{url}/reply", json=body, headers=gxj).status_code == 200
    columns = (
        Request.sign_on_time,
        Request.sign_working_seconds,
        Request.first_reply_on_time,
        Request.first_reply_working_seconds,
    )
    with rt.db.connect() as conn:
        recorded = conn.execute(select(*columns)).one()
    assert tuple(recorded) == (True, 2 * 3600, True, 5 * 3600)

    migrate.downgrade(rt.db, BEFORE_FACTS)
    assert "sign_on_time" not in {c["name"] for c in inspect(rt.db).get_columns("requests")}
    migrate.upgrade(rt.db, calendar=rt.calendar)
    with rt.db.connect() as conn:
        assert conn.execute(select(*columns)).one() == recorded
        assert conn.execute(select(Request.timeline_seq)).scalar() == 4  # nothing lost


def test_the_returns_migration_finds_the_returns_in_the_timeline(stored: Stored) -> None:
    rt, clock, gxj = stored.rt, stored.clock, stored.world.h("gxj")
    body = {"reason": "非本部门职责"}
    first = stored.submit()
    clock.set(T0 + timedelta(hours=1))
    second = stored.submit()  # received an hour later, returned first
    for url, minutes in ((second, 90), (first, 120)):
        clock.set(T0 + timedelta(minutes=minutes))
        r = stored.client.post(f"{url}/return", json=body, headers=gxj)
        assert r.status_code == 200, r.text
    columns = (
        RequestReturn.request_id,
        RequestReturn.department_code,
        RequestReturn.at,
        RequestReturn.received_at,
    )
    with rt.db.connect() as conn:
        recorded = conn.execute(select(*columns).order_by(RequestReturn.at)).all()
    assert [tuple(row)[1:] for row in recorded] == [
        ("GXJ", T0 + timedelta(minutes=90), T0 + timedelta(hours=1)),
        ("GXJ", T0 + timedelta(minutes=120), T0),
    ]

    migrate.downgrade(rt.db, BEFORE_RETURNS)
    assert "request_returns" not in inspect(rt.db).get_table_names()
    migrate.upgrade(rt.db, calendar=rt.calendar)
    with rt.db.connect() as conn:
        assert conn.execute(select(*columns).order_by(RequestReturn.at)).all() == recorded
