"""Fixtures: a database per test session built by the real migrations (SQLite by default,
PostgreSQL when HUYING_TEST_DATABASE_URL names one), an injected clock, an API client."""

from __future__ import annotations

import functools
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from huying import migrate
from huying.app import create_app
from huying.clock import FrozenClock
from huying.db import Base
from huying.runtime import Runtime, build_runtime, checked_workflows
from huying.settings import Settings, settings_from_mapping
from huying.workflow.definition import WorkflowSpec

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("HUYING_TEST_DATABASE_URL")
# 2026-11-18 10:00 Shanghai, a Wednesday
T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
Specs = dict[tuple[str, int], WorkflowSpec]


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


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """`main` points the root logger at this test's captured stderr, which closes after
    it: put the handlers back, so that later tests do not log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _fresh_database(tmp_path_factory)


# The default time limits with tasks (协办, 下派) given a limit beyond the weeks a test spans:
# for tests that count the lead's own steps of the worker while a routed co-department's
# task runs beside them (tests/requests/test_tasks.py fires the tasks' own).
QUIET_TASKS = {
    "normal": {
        "dispatch": "2 working hours",
        "sign": "1 working day",
        "reply": "5 working days",
        "feedback": "3 working days",
        "task": "60 working days",
    },
    "urgent": {
        "dispatch": "30 minutes",
        "sign": "1 hour",
        "reply": "24 hours",
        "feedback": "1 working day",
        "task": "60 working days",
    },
}


def make_settings(url: str, **overrides: object) -> Settings:
    data: dict[str, object] = {
        "database": {"url": url},
        "workflows": {"path": str(ROOT / "src/huying/data/workflows")},
    }
    data.update(overrides)
    return settings_from_mapping(data, base_dir=ROOT)


@pytest.fixture(scope="session")
def workflows() -> Specs:
    """The workflows that make_settings names, parsed and checked once for the session:
    every runtime built on make_settings shares them (specs are frozen)."""
    return checked_workflows(make_settings("sqlite://"))


@pytest.fixture(scope="session")
def migrated(database_url: str, workflows: Specs) -> str:
    rt = build_runtime(make_settings(database_url), workflows=workflows)
    migrate.upgrade(rt.db, calendar=rt.calendar)
    rt.close()
    return database_url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def rt(migrated: str, clock: FrozenClock, workflows: Specs) -> Iterator[Runtime]:
    """A runtime on a clean database (every table emptied after the test)."""
    runtime = build_runtime(make_settings(migrated), clock=clock, workflows=workflows)
    yield runtime
    empty_tables(runtime)
    runtime.close()


@contextmanager
def sent_statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements SQLAlchemy's execution sends on `engine` while this is open, each
    cursor execution once (SQLite's BEGIN IMMEDIATE too; COMMIT is not one).

    Listening changes the path: while anything listens, `huying.db` sends what it would run
    on the driver's cursor (`insert_rows`, SQLite's BEGIN) through that execution instead,
    the same statements, so that they are all seen here."""
    sent: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


@contextmanager
def driver_statements(ran: list[str] | None = None) -> Iterator[list[str]]:
    """The statements psycopg's cursors run while this is open (PostgreSQL; its raw cursor is
    one of them), an executemany once, appended to `ran` if given. What SQLAlchemy's
    listeners do not see: `huying.db` runs a submit's statements on the driver's cursor."""
    found: list[str] = [] if ran is None else ran
    with ExitStack() as patches:
        for name in ("execute", "executemany"):
            real = getattr(psycopg.Cursor, name)

            def spy(self: Any, query: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
                found.append(str(query))
                return _real(self, query, *args, **kwargs)

            patches.enter_context(patch.object(psycopg.Cursor, name, spy))
        yield found


@functools.cache
def _tables() -> tuple[tuple[str, ...], str]:
    """Every table, children first, and the one statement that names those that have rows.
    Read at the first emptying, once every model has been imported."""
    names = tuple(t.name for t in reversed(Base.metadata.sorted_tables))
    filled = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in names
    )
    return names, filled


# Each sequence that a table owns (its identity) and that has given out a number, back to
# its start, as TRUNCATE ... RESTART IDENTITY does: ids start at 1 in every test (request
# numbers are made of them; tests/test_openapi_fuzz.py acts on request 1). A sequence
# moves on without a row left behind (a rolled-back insert), so this does not look at rows.
_RESTART_SEQUENCES = """
SELECT setval(s.oid, q.start_value, false)
FROM pg_class s
JOIN pg_sequences q ON q.schemaname = current_schema() AND q.sequencename = s.relname
JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid
WHERE s.relkind = 'S' AND s.relnamespace = current_schema()::regnamespace
  AND q.last_value IS NOT NULL AND t.relname = ANY(:tables)
"""


def empty_tables(runtime: Runtime) -> None:
    """Empty every table in one transaction: a DELETE for each table that has rows, children
    first, then the identities restarted (TRUNCATE of every table took half a second a test
    on PostgreSQL). SQLite restarts ids by itself (no AUTOINCREMENT: a new id is the largest
    plus one); its foreign keys are off meanwhile, as before, since departments and requests
    refer to themselves."""
    tables, filled_sql = _tables()
    if runtime.db.dialect.name == "postgresql":
        with runtime.db.begin() as conn:
            filled = set(conn.execute(text(filled_sql)).scalars())
            for name in tables:
                if name in filled:
                    conn.execute(text(f'DELETE FROM "{name}"'))
            conn.execute(text(_RESTART_SEQUENCES), {"tables": list(tables)})
        return
    raw = runtime.db.raw_connection()  # autocommit (huying.db): the BEGIN below is ours
    try:
        cur = raw.cursor()
        filled = {row[0] for row in cur.execute(filled_sql)}
        if not filled:
            return
        cur.execute("PRAGMA foreign_keys=OFF")  # outside the transaction: a no-op inside one
        cur.execute("BEGIN")
        try:
            for name in tables:
                if name in filled:
                    cur.execute(f'DELETE FROM "{name}"')
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
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
    """tests/world.yaml loaded by `huying load`'s loader, and one API key per role made by
    `create_key` (`world` fixture: from a snapshot of those rows where it can, below)."""

    tokens: dict[str, str]

    def __init__(self, rt: Runtime, tokens: dict[str, str] | None = None) -> None:
        from huying.auth.service import create_key
        from huying.directory.loader import load_text

        self.rt = rt
        if tokens is not None:  # the rows are there already (`_Snapshot.restore`)
            self.tokens = tokens
            return
        with rt.transaction() as s:
            load_text(
                session=s,
                text=WORLD_YAML,
                path="world.yaml",
                urgencies=rt.settings.urgencies,
                now=rt.now(),
            )
            self.tokens = {}
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


# The rows a World wrote, per database, clock and settings, restored by a few bulk INSERTs
# in the tests that follow: loading it costs 40 ms of a test on SQLite and 115 ms on
# PostgreSQL (twenty flushes with their audit rows), the restore a few.
@dataclass(frozen=True)
class _Snapshot:
    rows: dict[str, list[dict[str, Any]]]  # by table, parents first, each in key order
    sequences: dict[str, int]  # PostgreSQL: each sequence's last value
    tokens: dict[str, str]

    @classmethod
    def take(cls, rt: Runtime, tokens: dict[str, str]) -> _Snapshot:
        rows: dict[str, list[dict[str, Any]]] = {}
        sequences: dict[str, int] = {}
        with rt.db.connect() as conn:
            for table in Base.metadata.sorted_tables:
                found = conn.execute(table.select().order_by(*table.primary_key)).mappings()
                if taken := [dict(row) for row in found]:
                    rows[table.name] = taken
            if rt.db.dialect.name == "postgresql":
                sequences = {name: value for name, value in conn.execute(text(_SEQUENCES))}
        return cls(rows, sequences, tokens)

    def restore(self, rt: Runtime) -> World:
        tables = Base.metadata.tables
        with rt.db.begin() as conn:
            for name, rows in self.rows.items():
                conn.execute(tables[name].insert(), rows)
            for name, value in self.sequences.items():
                conn.execute(text("SELECT setval(:name, :value)"), {"name": name, "value": value})
        return World(rt, dict(self.tokens))


_SEQUENCES = """
SELECT quote_ident(sequencename), last_value FROM pg_sequences
WHERE schemaname = current_schema() AND last_value IS NOT NULL
"""
_WORLDS: dict[tuple[str, datetime, str], _Snapshot] = {}


def _empty(rt: Runtime) -> bool:
    with rt.db.connect() as conn:
        return conn.execute(text(_tables()[1])).first() is None


@pytest.fixture
def world(rt: Runtime) -> World:
    """A World on the test's empty database: loaded the first time for a database, clock
    and settings, and restored from the rows it wrote after that. A test that wrote rows
    before asking for it gets it loaded."""
    key = (str(rt.db.url), rt.now(), rt.settings.model_dump_json())
    if not _empty(rt):
        return World(rt)
    if (snapshot := _WORLDS.get(key)) is not None:
        return snapshot.restore(rt)
    world = World(rt)
    _WORLDS[key] = _Snapshot.take(rt, world.tokens)
    return world


def submit_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "enterprise_uscc": USCC_A,
        "category": "POWER",
        "title": "新厂房用电增容",
        "description": "二期厂房投产需要增容至 2000 kVA，请协调供电方案。",
    }
    body.update(overrides)
    return body
