"""Fixtures: a database per test session built by the real migrations (SQLite by default,
PostgreSQL when HUYING_TEST_DATABASE_URL names one), an injected clock, an API client."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from huying import migrate
from huying.app import create_app
from huying.clock import FrozenClock
from huying.db import Base
from huying.runtime import Runtime, build_runtime
from huying.settings import Settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("HUYING_TEST_DATABASE_URL")
# 2026-11-18 10:00 Shanghai, a Wednesday
T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)


def _fresh_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if PG_URL:
        url = make_url(PG_URL)
        name = f"huying_test_{uuid.uuid4().hex[:10]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'huying.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _fresh_database(tmp_path_factory)


def make_settings(url: str, **overrides: object) -> Settings:
    data: dict[str, object] = {
        "database": {"url": url},
        "workflows": {"path": str(ROOT / "workflows")},
    }
    data.update(overrides)
    return settings_from_mapping(data, base_dir=ROOT)


@pytest.fixture(scope="session")
def migrated(database_url: str) -> str:
    rt = build_runtime(make_settings(database_url))
    migrate.upgrade(rt.db, calendar=rt.calendar)
    rt.close()
    return database_url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def rt(migrated: str, clock: FrozenClock) -> Iterator[Runtime]:
    """A runtime on a clean database (every table emptied after the test)."""
    runtime = build_runtime(make_settings(migrated), clock=clock)
    yield runtime
    empty_tables(runtime)
    runtime.close()


def empty_tables(runtime: Runtime) -> None:
    """Empty every table (TRUNCATE on PostgreSQL; DELETE with foreign keys off on SQLite)."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    if runtime.db.dialect.name == "postgresql":
        with runtime.db.begin() as conn:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    raw = runtime.db.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA foreign_keys=OFF")
        for name in reversed(tables):
            cur.execute(f'DELETE FROM "{name}"')
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


# --- a small directory and one key per role -------------------------------------

WORLD_YAML = (ROOT / "tests" / "world.yaml").read_text(encoding="utf-8")
USCC_A = "91110000600037341L"
USCC_B = "91440101711615159C"


class World:
    def __init__(self, rt: Runtime) -> None:
        from huying.auth.service import create_key
        from huying.directory.loader import load_text

        self.rt = rt
        with rt.transaction() as s:
            load_text(
                session=s,
                text=WORLD_YAML,
                path="world.yaml",
                urgencies=rt.settings.urgencies,
                now=rt.now(),
            )
            self.tokens: dict[str, str] = {}
            for name, role, dept in (
                ("admin", "admin", None),
                ("dispatcher", "dispatcher", None),
                ("supervisor", "supervisor", None),
                ("integration", "integration", None),
                ("gxj", "department", "GXJ"),
                ("street", "department", "STREET"),
                ("rsj", "department", "RSJ"),
            ):
                _, token = create_key(
                    session=s, role=role, department=dept, name=name, now=rt.now()
                )
                self.tokens[name] = token

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


def submit_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "enterprise_uscc": USCC_A,
        "category": "POWER",
        "title": "新厂房用电增容",
        "description": "二期厂房投产需要增容至 2000 kVA，请协调供电方案。",
    }
    body.update(overrides)
    return body
