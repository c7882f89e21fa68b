"""The engine's bounds and files (DESIGN.md, "Hardening"): a pool with no free connection
answers 503, never 500; PostgreSQL cancels a statement past `database.statement_timeout`
except in migrations; the SQLite file holding the secrets is its owner's only."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InternalError,
    MultipleResultsFound,
    NoResultFound,
    OperationalError,
    StatementError,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    registry,
    relationship,
    validates,
)
from sqlalchemy.types import TypeDecorator

from huying import cache
from huying.app import create_app
from huying.clock import FrozenClock
from huying.db import (
    TOGETHER_MOST_PARAMS,
    JSONType,
    UTCDateTime,
    among,
    constructor,
    held,
    insert_rows,
    insert_together,
    json_text,
    make_engine,
    select_one,
    unbounded,
    update_versioned,
)
from huying.deadlines.models import Deadline
from huying.errors import Unavailable
from huying.reports.models import report_months
from huying.requests import repository as requests_repo
from huying.requests.models import Request
from huying.runtime import Runtime, build_runtime
from tests.conftest import (
    PG_URL,
    World,
    driver_statements,
    make_settings,
    sent_statements,
    submit_body,
)

needs_postgresql = pytest.mark.skipif(not PG_URL, reason="PostgreSQL's statement_timeout")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def tight(rt: Runtime, clock: FrozenClock) -> Iterator[Runtime]:
    """A runtime on the tests' database with the smallest pool and short waits: a call
    waits 0.3 s for a connection (on SQLite, whose one connection is the writers' queue,
    that wait is `statement_timeout`); on PostgreSQL a statement runs 0.3 s at most, and
    the watchdog hangs up after 0.3 + 2 s without an answer."""
    settings = make_settings(
        rt.settings.database_url,
        database={
            "url": rt.settings.database_url,
            "pool_size": 1,
            "connect_timeout": 2,
            "pool_timeout": 0.3,
            "statement_timeout": 0.3,
        },
    )
    runtime = build_runtime(settings, clock=clock)
    yield runtime
    runtime.close()


def hold_every_connection(rt: Runtime, stack: ExitStack) -> list[Connection]:
    """Check out every connection the pool may hand out (1 on SQLite; 1 + 1 overflow on
    PostgreSQL) and keep them until `stack` closes."""
    size = 1 if rt.db.dialect.name == "sqlite" else 2
    return [stack.enter_context(rt.db.connect()) for _ in range(size)]


def test_no_free_connection_is_unavailable_not_a_pool_timeout(
    tight: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with ExitStack() as stack:
        hold_every_connection(tight, stack)
        with (
            pytest.raises(Unavailable, match="no connection came free"),
            tight.transaction() as s,
        ):
            s.execute(select(1))
    assert "database pool:" in caplog.text
    with tight.transaction() as s:  # and once one is free again, it is used
        assert s.scalar(select(1)) == 1


def test_a_sqlite_file_another_writer_holds_is_a_503_and_changes_nothing(
    tight: Runtime, world: World
) -> None:
    """Another process writing past the busy timeout (`statement_timeout`): the BEGIN
    IMMEDIATE of a submit fails as SQLAlchemy's OperationalError, answered 503, whether it
    runs on the driver's connection (nothing watching) or through SQLAlchemy's execution."""
    if tight.db.dialect.name != "sqlite":
        pytest.skip("SQLite's writers queue on the file; PostgreSQL's lock rows")
    path = tight.db.url.database
    assert path is not None
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        h = world.h("integration")
        assert client.post("/api/v1/requests", json=submit_body(), headers=h).status_code == 201
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            for watched in (False, True):
                with sent_statements(tight.db) if watched else ExitStack():
                    r = client.post("/api/v1/requests", json=submit_body(), headers=h)
                assert r.status_code == 503, r.text
                assert r.headers["content-type"] == "application/problem+json"
            other.execute("ROLLBACK")
        finally:
            other.close()
        found = client.get("/api/v1/requests", headers=h).json()
        assert len(found["items"]) == 1


def test_no_free_connection_is_a_503_problem_with_retry_after(tight: Runtime, world: World) -> None:
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        h = world.h("integration")
        assert client.get("/api/v1/requests", headers=h).status_code == 200
        with ExitStack() as stack:
            hold_every_connection(tight, stack)
            r = client.get("/api/v1/requests", headers=h)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["retry-after"] == "5"
        assert "database" in r.json()["detail"]
        assert client.get("/api/v1/requests", headers=h).status_code == 200


@needs_postgresql
def test_postgresql_cancels_a_statement_past_the_statement_timeout(tight: Runtime) -> None:
    with tight.db.connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        with pytest.raises(OperationalError, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(3)"))


def test_sqlite_reads_an_instant_as_sqlalchemys_composition_reads_it() -> None:
    """`UTCDateTime` reads SQLite's text in one step, to what SQLAlchemy's own composition
    (its `DATETIME` parser, then `process_result_value`) gives: in UTC, aware, with or
    without microseconds, and an instant some other writer stored with an offset moved to
    UTC (also one as long as SQLAlchemy's own text, which is read with "+00:00" appended)."""
    dialect = sqlite.dialect()
    column = UTCDateTime()
    ours = column._cached_result_processor(dialect, None)
    impl = column.impl_instance.dialect_impl(dialect).result_processor(dialect, None)
    assert ours is not None and impl is not None

    def theirs(value: str | None) -> datetime | None:
        return column.process_result_value(impl(value), dialect)

    for stored in (
        "2026-12-05 08:45:59.123456",
        "2026-12-05 08:45:59.000000",
        "2026-12-05 08:45:59",
        "0999-01-02 03:04:05.000006",
        "2026-12-05 16:45:59.5+08:00",
        "2026-12-05 16:45:59.1+0800",  # 26 characters, as SQLAlchemy's own, with an offset
        "2026-12-05T08:45:59.123456",
        None,
    ):
        assert ours(stored) == theirs(stored)
        if stored is not None:
            assert ours(stored).tzinfo is UTC  # type: ignore[union-attr]


@needs_postgresql
def test_postgresql_sessions_read_timestamps_in_utc(rt: Runtime) -> None:
    """Whatever the server's own zone (here Etc/UTC, elsewhere often Asia/Shanghai), each
    session's is UTC, so psycopg gives `datetime.UTC` and `UTCDateTime` passes it through."""
    with rt.db.connect() as conn:
        assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
        at = conn.execute(text("SELECT TIMESTAMPTZ '2026-12-03 16:00:00+08'")).scalar_one()
        assert at.tzinfo is UTC and at == datetime(2026, 12, 3, 8, tzinfo=UTC)
        typed = literal_column("TIMESTAMPTZ '2026-12-03 16:00:00+08'", type_=UTCDateTime())
        assert conn.execute(select(typed)).scalar() == at
        # a session in another zone (PGTZ overrides the connection's options): still UTC
        conn.execute(text("SET TIME ZONE 'Asia/Shanghai'"))
        other = conn.execute(select(typed)).scalar_one()
        assert other.tzinfo is UTC and other == at
        conn.rollback()


@needs_postgresql
def test_a_snapshot_reads_one_state_while_others_commit(rt: Runtime) -> None:
    """`Runtime.snapshot`: every statement sees what had committed at its first; READ
    COMMITTED (`transaction`) would see the other transaction's row at the second read."""
    month = datetime(1990, 1, 1, tzinfo=UTC)
    count = (
        select(func.count()).select_from(report_months).where(report_months.c.starts_at == month)
    )
    try:
        with rt.snapshot() as s:
            assert s.scalar(count) == 0
            with rt.transaction() as w:
                w.execute(insert(report_months).values(starts_at=month, ends_at=month, dirty=True))
            assert s.scalar(count) == 0
        with rt.transaction() as s:
            assert s.scalar(count) == 1
    finally:
        with rt.transaction() as w:
            w.execute(delete(report_months).where(report_months.c.starts_at == month))


@needs_postgresql
def test_a_snapshot_refuses_writes_and_its_connection_goes_back_read_write(
    tight: Runtime,
) -> None:
    month = datetime(1990, 2, 1, tzinfo=UTC)
    with pytest.raises(InternalError, match="read-only transaction"), tight.snapshot() as s:
        assert s.scalar(text("SHOW transaction_isolation")) == "repeatable read"
        s.execute(insert(report_months).values(starts_at=month, ends_at=month, dirty=True))
    with tight.transaction() as s:  # the pool's one connection, as any transaction's
        assert s.scalar(text("SHOW transaction_isolation")) == "read committed"
        assert s.scalar(text("SHOW transaction_read_only")) == "off"
        assert (
            s.scalar(
                select(func.count())
                .select_from(report_months)
                .where(report_months.c.starts_at == month)
            )
            == 0
        )


@needs_postgresql
def test_migrations_and_backfills_run_unbounded(tight: Runtime) -> None:
    with tight.db.begin() as conn:
        unbounded(conn)
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
        conn.execute(text("SELECT pg_sleep(3)"))  # past the bound, and past the watchdog's
    with tight.db.connect() as conn:  # the next transaction is bounded again
        assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"


def test_the_sqlite_file_and_its_folder_are_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "huying.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:  # a write: WAL and shared-memory files appear
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
            assert wal.exists() and shm.exists()
            assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        engine.dispose()
    assert mode(path.parent) == 0o700


def test_an_existing_sqlite_file_and_folder_keep_their_modes(tmp_path: Path) -> None:
    """Huying creates private files; it does not change what an operator chose."""
    path = tmp_path / "huying.db"
    path.touch()
    path.chmod(0o640)
    folder = mode(tmp_path)
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    assert (mode(path), mode(tmp_path)) == (0o640, folder)


def test_update_versioned_writes_the_rows_whose_version_matches(
    rt: Runtime, world: World, client: TestClient
) -> None:
    """The batch UPDATE of the worker (`update_versioned`): one statement over arrays on
    PostgreSQL, an executemany on SQLite's cursor or for a JSON column; NULLs and instants
    written as given, and a row whose version moved on left alone and left out of the
    count."""
    for _ in range(2):
        r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
        assert r.status_code == 201, r.text
    deadlines = cast(Table, Deadline.__table__)
    requests = cast(Table, Request.__table__)
    missed = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with rt.transaction() as s:
        first, second = s.execute(
            select(deadlines.c.id, deadlines.c.version)
            .where(deadlines.c.kind == "sign")
            .order_by(deadlines.c.id)
        ).all()
        columns = ("status", "missed_at", "warn_at", "rungs_fired", "version")
        rows = [
            {"_id": first.id, "_read": first.version, "status": "missed", "missed_at": missed}
            | {"warn_at": None, "rungs_fired": 2, "version": first.version + 1},
            {"_id": second.id, "_read": second.version + 7, "status": "missed"}  # moved on
            | {"missed_at": missed, "warn_at": None, "rungs_fired": 2, "version": 9},
        ]
        assert update_versioned(s.connection(), deadlines, columns, rows) == 1
        request_id = s.scalar(select(requests.c.id).order_by(requests.c.id).limit(1))
        read = s.scalar(select(requests.c.version).where(requests.c.id == request_id))
        pending = {"by": "3 working days", "reason": "等待检测报告"}
        json_row = {"_id": request_id, "_read": read, "pending_extension": pending}
        assert update_versioned(s.connection(), requests, ("pending_extension",), [json_row]) == 1
    with rt.transaction() as s:
        written = s.execute(
            select(deadlines).where(deadlines.c.id.in_([first.id, second.id]))
        ).all()
        by_id = {row.id: row for row in written}
        assert (by_id[first.id].status, by_id[first.id].missed_at) == ("missed", missed)
        assert by_id[first.id].warn_at is None and by_id[first.id].rungs_fired == 2
        assert by_id[first.id].version == first.version + 1
        assert (by_id[second.id].status, by_id[second.id].version) == ("running", second.version)
        assert (
            s.scalar(select(requests.c.pending_extension).where(requests.c.id == request_id))
            == pending
        )
    with rt.db.connect() as connection:
        assert update_versioned(connection, deadlines, columns, []) == 0


def test_update_versioned_lets_a_listener_see_its_statement(
    rt: Runtime, world: World, client: TestClient
) -> None:
    """Written on the driver's cursor on SQLite, it goes through SQLAlchemy's execution
    instead while anything watches the engine's statements, as `insert_rows` does; the
    same rows are written either way."""
    for _ in range(2):
        r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
        assert r.status_code == 201, r.text
    deadlines = cast(Table, Deadline.__table__)
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with rt.db.connect() as conn:
        first, second = conn.execute(
            select(deadlines.c.id, deadlines.c.version)
            .where(deadlines.c.kind == "sign")
            .order_by(deadlines.c.id)
        ).all()
    columns = ("missed_at", "version")
    for row, watched in ((first, True), (second, False)):
        params = [{"_id": row.id, "_read": row.version, "missed_at": at, "version": 5}]
        with ExitStack() as stack:
            sent = stack.enter_context(sent_statements(rt.db)) if watched else []
            conn = stack.enter_context(rt.db.begin())
            assert update_versioned(conn, deadlines, columns, params) == 1
        updates = [s.split(" SET")[0] for s in sent if s.startswith("UPDATE")]
        assert updates == (["UPDATE deadlines"] if watched else [])
    with rt.db.connect() as conn:
        assert conn.execute(
            select(deadlines.c.missed_at, deadlines.c.version)
            .where(deadlines.c.id.in_([first.id, second.id]))
            .order_by(deadlines.c.id)
        ).all() == [(at, 5), (at, 5)]


# --- insert_rows: the driver's cursor, SQLAlchemy's statement and processors -----------------


def copies_of_a_request(rt: Runtime, client: TestClient, world: World) -> list[dict[str, Any]]:
    """Two rows for `requests` unlike any written: a submitted request's row, without its id,
    with its unique columns changed, and a value in the columns a submit leaves empty (JSON,
    booleans, floats, instants)."""
    r = client.post("/api/v1/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    requests = cast(Table, Request.__table__)
    with rt.db.connect() as conn:
        row = dict(
            conn.execute(select(requests).where(requests.c.id == r.json()["id"])).one()._mapping
        )
    del row["id"]
    closed = datetime(2026, 11, 20, 9, 30, 15, 123456, tzinfo=UTC)
    return [
        row
        | {
            "number": f"HY-20261120-9{k:05d}",
            "receipt_token": f"copy{k}",
            "pending_extension": {"by": "3 working days", "reason": "等待检测报告"},
            "media_urls": ["https://example.com/现场.jpg"],
            "resolved": k == 0,
            "lat": 22.5431 + k,
            "closed_at": closed,
            "rating": "satisfied",
        }
        for k in range(2)
    ]


def read_back(rt: Runtime, ids: list[int]) -> list[dict[str, Any]]:
    requests = cast(Table, Request.__table__)
    with rt.db.connect() as conn:
        found = conn.execute(select(requests).where(requests.c.id.in_(ids)).order_by(requests.c.id))
        return [
            {k: v for k, v in r._mapping.items() if k not in ("id", "number", "receipt_token")}
            for r in found
        ]


def test_insert_rows_writes_what_sqlalchemy_writes(
    rt: Runtime, world: World, client: TestClient
) -> None:
    """The same rows through the driver's cursor and through SQLAlchemy's execution read back
    the same, column for column (JSON, booleans, floats, aware instants), and RETURNING
    gives the new ids in the order of the rows."""
    requests = cast(Table, Request.__table__)
    rows = copies_of_a_request(rt, client, world)
    with rt.db.begin() as conn, sent_statements(rt.db) as sent:
        through_sqlalchemy = insert_rows(conn, requests, rows, returning="id")
    assert len(sent) >= 1  # its listener saw them: SQLAlchemy's execution ran
    again = [
        r | {"number": f"{r['number']}b", "receipt_token": f"{r['receipt_token']}b"} for r in rows
    ]
    with rt.db.begin() as conn:
        through_driver = insert_rows(conn, requests, again, returning="id")
        numbers = dict(
            conn.execute(
                select(requests.c.id, requests.c.number).where(requests.c.id.in_(through_driver))
            ).all()
        )
    assert [numbers[i] for i in through_driver] == [r["number"] for r in again]
    assert read_back(rt, through_driver) == read_back(rt, through_sqlalchemy)
    assert read_back(rt, through_driver)[0]["closed_at"] == rows[0]["closed_at"]


@pytest.fixture
def instants(rt: Runtime) -> Iterator[Table]:
    """A scratch table of an instant and a JSON value a row, dropped after the test."""
    table = Table(
        "scratch_rows",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime),
        Column("data", JSONType),
    )
    with rt.db.begin() as conn:
        table.create(conn)
    yield table
    with rt.db.begin() as conn:
        table.drop(conn)


def test_insert_rows_writes_many_rows_with_their_bind_processors(
    rt: Runtime, instants: Table
) -> None:
    """Several rows without RETURNING, in one executemany on the driver's cursor: each value
    as SQLAlchemy's bind processors give it (SQLite's own trace shows the instant as text,
    in UTC, and the JSON dumped, by orjson), and read back as written."""
    at = datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)
    traced: list[str] = []
    with rt.db.begin() as conn:
        raw: Any = conn.connection.dbapi_connection
        if rt.db.dialect.name == "sqlite":
            raw.set_trace_callback(traced.append)
        insert_rows(conn, instants, [{"at": at, "data": {"n": k}} for k in range(3)])
        if rt.db.dialect.name == "sqlite":
            raw.set_trace_callback(None)
    if rt.db.dialect.name == "sqlite":
        assert [s for s in traced if s.startswith("INSERT")] == [
            f"INSERT INTO scratch_rows (at, data) VALUES ('{at:%Y-%m-%d %H:%M:%S.%f}', '{{\"n\":{k}}}')"
            for k in range(3)
        ]
    with rt.db.connect() as conn:
        assert conn.execute(
            select(instants.c.at, instants.c.data).order_by(instants.c.id)
        ).all() == [(at, {"n": k}) for k in range(3)]


def test_insert_rows_writes_many_rows_as_each_would_be_written_alone(
    rt: Runtime, instants: Table
) -> None:
    """Many rows at once: an instant shared by many rows is converted once for all of them
    (`_Prepared.many`), to what each row's own conversion gives, whatever its zone; SQLite's
    JSON is written by orjson and reads back as the stdlib writes it (non-ASCII text, int
    keys, nesting, NULL); a value neither can write is refused as SQLAlchemy refuses it."""
    shanghai = timezone(timedelta(hours=8))
    moments = [
        datetime(2026, 11, 20, 9, 0, tzinfo=shanghai),
        datetime(2026, 11, 20, 1, 0, tzinfo=UTC),  # the same instant, another zone
        datetime(2026, 11, 20, 1, 0, 0, 5, tzinfo=UTC),
        None,
    ]
    data: list[Any] = [
        {"reason": "等待检测报告", "by": ["3 working days"], "n": {1: True, 2: None}},
        [1, 2.5, "二"],
        None,
        {},
    ]
    rows = [{"at": moments[k % 4], "data": data[k // 4 % 4]} for k in range(40)]
    with rt.db.begin() as conn:
        insert_rows(conn, instants, rows)
    with rt.db.connect() as conn:
        found = conn.execute(select(instants.c.at, instants.c.data).order_by(instants.c.id)).all()
    assert found == [
        (
            None if r["at"] is None else r["at"].astimezone(UTC),
            json.loads(json.dumps(r["data"])) if r["data"] is not None else None,
        )
        for r in rows
    ]
    for refused in ({"at": datetime(2026, 11, 20, tzinfo=UTC)}, {"x": {1, 2}}):
        with pytest.raises((TypeError, StatementError)), rt.db.begin() as conn:
            insert_rows(conn, instants, [{"at": None, "data": refused}] * 2)


def test_insert_rows_fills_defaults_through_sqlalchemy(rt: Runtime) -> None:
    """A row without a column that has a default on the Python side: SQLAlchemy's execution
    evaluates the default, as it would for any INSERT."""
    table = Table(
        "scratch_defaults",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer, default=7),
        Column("label", String(10)),
    )
    with rt.db.begin() as conn:
        table.create(conn)
    try:
        with rt.db.begin() as conn:
            [new] = insert_rows(conn, table, [{"label": "x"}], returning="id")
        with rt.db.connect() as conn:
            assert conn.execute(
                select(table.c.n, table.c.label).where(table.c.id == new)
            ).one() == (7, "x")
    finally:
        with rt.db.begin() as conn:
            table.drop(conn)


def test_insert_rows_raises_sqlalchemys_integrity_error(
    rt: Runtime, world: World, client: TestClient
) -> None:
    """A unique key broken on the driver's cursor is SQLAlchemy's IntegrityError, as the route
    that answers a concurrent retry expects; the transaction rolls back and nothing of it
    stays."""
    requests = cast(Table, Request.__table__)
    rows = copies_of_a_request(rt, client, world)
    with pytest.raises(IntegrityError) as caught, rt.db.begin() as conn:
        insert_rows(conn, requests, [rows[0], rows[0] | {"receipt_token": "other"}])
    assert not caught.value.connection_invalidated
    with rt.db.connect() as conn:
        assert conn.scalar(select(func.count()).where(requests.c.number == rows[0]["number"])) == 0


# --- insert_together: several tables' rows, one statement on PostgreSQL -------------------


@pytest.fixture
def family(rt: Runtime) -> Iterator[tuple[Table, Table]]:
    """Two scratch tables, a parent and a child that names it, with values to convert on
    their way in (an instant, JSON)."""
    metadata = MetaData()
    parents = Table(
        "scratch_parents",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(20)),
        Column("at", UTCDateTime),
        Column("data", JSONType),
    )
    children = Table(
        "scratch_children",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey("scratch_parents.id"), nullable=False),
        Column("n", Integer),
    )
    with rt.db.begin() as conn:
        metadata.create_all(conn)
    try:
        yield parents, children
    finally:
        with rt.db.begin() as conn:
            metadata.drop_all(conn)


AT = datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC)


def a_parent_and_a_child(
    family: tuple[Table, Table], *, naming: int = 1
) -> list[tuple[Table, list[dict[str, Any]]]]:
    """Parts for `insert_together`: parent 1, and a child naming parent `naming`."""
    parents, children = family
    return [
        (parents, [{"id": 1, "name": "p", "at": AT, "data": None}]),
        (children, [{"parent_id": naming, "n": 1}]),
    ]


def test_insert_together_writes_every_part_with_its_processors(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    """A child's row names a parent written by the same call; the last part's new ids come
    back in the order of its rows; instants and JSON go in as SQLAlchemy writes them."""
    parents, children = family
    with rt.db.begin() as conn:
        [child] = insert_together(
            conn,
            [
                (parents, [{"id": 7, "name": "甲", "at": AT, "data": {"k": [1, "二"]}}]),
                (parents, [{"id": 8, "name": "乙", "at": None, "data": None}]),
                (children, [{"parent_id": 8, "n": 3}]),
            ],
            returning="id",
        )
        ids = insert_together(
            conn, [(children, [{"parent_id": 7, "n": k} for k in (5, 6)])], returning="id"
        )
    with rt.db.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(parents).order_by(parents.c.id))] == [
            (7, "甲", AT, {"k": [1, "二"]}),
            (8, "乙", None, None),
        ]
        found = conn.execute(select(children.c.id, children.c.n).order_by(children.c.id)).all()
    assert [tuple(r) for r in found] == [(child, 3), (ids[0], 5), (ids[1], 6)]


def test_insert_together_is_one_statement_on_postgresql(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    """On PostgreSQL the parts are one statement, one round trip; on SQLite one INSERT each
    part."""
    parents, children = family
    parts: list[tuple[Table, list[dict[str, Any]]]] = [
        (parents, [{"id": k, "name": f"p{k}", "at": AT, "data": [k]} for k in (1, 2)]),
        (children, [{"parent_id": 1, "n": 1}, {"parent_id": 2, "n": 2}]),
        (children, [{"parent_id": 2}]),  # another set of columns
    ]
    if rt.db.dialect.name == "sqlite":
        traced: list[str] = []
        with rt.db.begin() as conn:
            raw: Any = conn.connection.dbapi_connection
            raw.set_trace_callback(traced.append)
            try:
                insert_together(conn, parts)
            finally:
                raw.set_trace_callback(None)
        # a line per row: the driver's executemany of each part, in the order of the parts
        assert [s.split(" (")[0] for s in traced] == ["INSERT INTO scratch_parents"] * 2 + [
            "INSERT INTO scratch_children"
        ] * 3
    else:
        with driver_statements() as ran, rt.db.begin() as conn:
            insert_together(conn, parts)
        ran = [s for s in ran if "INSERT" in s]  # (not the pool's ping)
        assert len(ran) == 1 and ran[0].startswith("WITH "), ran
        assert "$1" in ran[0] and "%(" not in ran[0]  # psycopg's raw cursor
    with rt.db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(children)) == 3


def test_insert_together_returns_several_rows_ids_from_a_statement_of_their_own(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    """PostgreSQL does not promise RETURNING's order across rows: the last part, returning
    several, is its own, the parts before it one statement still."""
    children = family[1]
    parts = [
        *a_parent_and_a_child(family),
        (children, [{"parent_id": 1, "n": k} for k in (7, 8)]),
    ]
    with driver_statements() as ran, rt.db.begin() as conn:
        ids = insert_together(conn, parts, returning="id")
    with rt.db.connect() as conn:
        found = conn.execute(select(children.c.id, children.c.n).order_by(children.c.id)).all()
    assert [tuple(r) for r in found][1:] == [(ids[0], 7), (ids[1], 8)]
    if rt.db.dialect.name == "postgresql":
        inserts = [s for s in ran if "INSERT" in s]
        assert inserts[0].startswith("WITH ") and len(inserts) == 3  # the last's rows one by one


def test_insert_together_writes_many_rows_one_statement_per_part(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    """Past `TOGETHER_MOST_PARAMS` parameters, each part is an executemany of its own."""
    children = family[1]
    many = TOGETHER_MOST_PARAMS // 2 + 1  # two parameters a row
    parts = [
        a_parent_and_a_child(family)[0],
        (children, [{"parent_id": 1, "n": k} for k in range(many)]),
    ]
    with driver_statements() as ran, rt.db.begin() as conn:
        insert_together(conn, parts)
    with rt.db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(children)) == many
    if rt.db.dialect.name == "postgresql":
        inserts = [s for s in ran if "INSERT" in s]
        assert [s.split(" (")[0] for s in inserts] == [
            "INSERT INTO scratch_parents",
            "INSERT INTO scratch_children",
        ]


class Noted(TypeDecorator[int]):
    """An integer that notes the placeholder style of the dialect it is bound for."""

    impl = Integer
    cache_ok = True
    styles: ClassVar[list[str]] = []

    def process_bind_param(self, value: int | None, dialect: Any) -> int | None:
        Noted.styles.append(dialect.paramstyle)
        return value


def test_insert_together_leaves_sqlalchemys_own_processors_to_its_dialect(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    """The `$n` dialect of PostgreSQL's one statement keeps its types' processors apart: a
    processor made for it is not the one SQLAlchemy's own execution uses afterwards."""
    table = Table(
        "scratch_noted", MetaData(), Column("id", Integer, primary_key=True), Column("v", Noted)
    )
    with rt.db.begin() as conn:
        table.create(conn)
    try:
        Noted.styles.clear()
        with rt.db.begin() as conn:
            insert_together(conn, [a_parent_and_a_child(family)[0], (table, [{"v": 1}])])
            conn.execute(insert(table), [{"v": 2}])
        own = rt.db.dialect.paramstyle
        expected = ["numeric_dollar", own] if rt.db.dialect.name == "postgresql" else [own, own]
        assert Noted.styles == expected
    finally:
        with rt.db.begin() as conn:
            table.drop(conn)


def test_insert_together_lets_a_listener_see_each_insert(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    with sent_statements(rt.db) as sent, rt.db.begin() as conn:
        insert_together(conn, a_parent_and_a_child(family))
    assert [s.split(" (")[0] for s in sent if s.startswith("INSERT")] == [
        "INSERT INTO scratch_parents",
        "INSERT INTO scratch_children",
    ]


def test_insert_together_breaks_a_foreign_key_as_sqlalchemy_raises_it_and_writes_nothing(
    rt: Runtime, family: tuple[Table, Table]
) -> None:
    with pytest.raises(IntegrityError), rt.db.begin() as conn:
        insert_together(conn, a_parent_and_a_child(family, naming=2))  # no such parent
    with rt.db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(family[0])) == 0


@pytest.mark.parametrize("write", ["insert_rows", "insert_together"])
def test_a_write_on_a_lost_connection_invalidates_it(
    rt: Runtime, family: tuple[Table, Table], write: str
) -> None:
    """The driver's connection gone under a statement: the error says the connection was
    invalidated (the API answers 503), and the pool does not hand that connection out again."""
    parts = a_parent_and_a_child(family)
    with rt.db.connect() as conn:
        conn.begin()
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.close()
        with pytest.raises(DBAPIError) as caught:
            if write == "insert_rows":
                insert_rows(conn, *parts[0])
            else:
                insert_together(conn, parts)
        assert caught.value.connection_invalidated and conn.invalidated
    with rt.db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(family[0])) == 0


# --- select_one: one row on the driver's cursor ---------------------------------------------


@pytest.fixture
def numbers(rt: Runtime) -> Iterator[Table]:
    """A scratch table of two rows: n = 1 and 2, each with an instant."""
    table = Table(
        "scratch_numbers",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("n", Integer),
        Column("at", UTCDateTime),
    )
    at = datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC)
    with rt.db.begin() as conn:
        table.create(conn)
        conn.execute(insert(table), [{"n": 1, "at": at}, {"n": 2, "at": at}])
    try:
        yield table
    finally:
        with rt.db.begin() as conn:
            table.drop(conn)


def test_select_one_reads_on_the_cursor_what_sqlalchemy_reads(
    rt: Runtime, world: World, numbers: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The submit's first statement (the generations, and on SQLite the next request's id)
    and a statement with literal parameters: the row SQLAlchemy's execution gives, read
    without it."""
    statements = [
        cache._statement(None),
        select(numbers.c.n, func.count()).where(numbers.c.n == 2).group_by(numbers.c.n),
    ]
    if rt.db.dialect.name == "sqlite":
        statements.append(cache._statement(requests_repo._max_id_plus_one()))
    with rt.db.connect() as conn:
        expected = [tuple(conn.execute(s).one()) for s in statements]
        monkeypatch.setattr(Connection, "execute", None)  # any use of it fails
        assert [select_one(conn, s) for s in statements] == expected
    assert expected[1] == (2, 1)


def test_select_one_refuses_no_row_and_several_as_one_does(rt: Runtime, numbers: Table) -> None:
    with rt.db.connect() as conn:
        with pytest.raises(NoResultFound):
            select_one(conn, select(numbers.c.n).where(numbers.c.n == 3))
        with pytest.raises(MultipleResultsFound):
            select_one(conn, select(numbers.c.n))


def test_select_one_leaves_a_value_to_convert_to_sqlalchemy(
    rt: Runtime, numbers: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A column whose value SQLAlchemy converts on its way back (an aware instant, which
    SQLite keeps as text) goes through SQLAlchemy's execution, and arrives converted."""
    executed: list[object] = []
    execute = Connection.execute

    def counted(self: Connection, statement: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(statement)
        return execute(self, statement, *args, **kwargs)

    statement = select(numbers.c.at).where(numbers.c.n == 1)
    with rt.db.connect() as conn:
        monkeypatch.setattr(Connection, "execute", counted)
        assert select_one(conn, statement) == (datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=UTC),)
    assert executed == [statement]


def test_select_one_lets_a_listener_see_its_statement(rt: Runtime, numbers: Table) -> None:
    statement = select(numbers.c.n).where(numbers.c.n == 1)
    with rt.db.connect() as conn, sent_statements(rt.db) as sent:
        assert select_one(conn, statement) == (1,)
    assert [s for s in sent if "scratch_numbers" in s] == [str(statement.compile(rt.db))]


def test_select_one_raises_the_drivers_error_as_sqlalchemy_does(rt: Runtime) -> None:
    missing = Table("scratch_missing", MetaData(), Column("n", Integer))
    with rt.db.connect() as conn, pytest.raises(DBAPIError) as caught:
        select_one(conn, select(missing.c.n))
    assert "scratch_missing" in str(caught.value) and not caught.value.connection_invalidated


# --- the models' constructor ------------------------------------------------------------


class _Scratch(DeclarativeBase):
    """Models of these tests alone, built with Huying's constructor (not on `Base`, whose
    metadata is the schema)."""

    registry = registry(constructor=constructor)


class ScratchParent(_Scratch):
    __tablename__ = "scratch_parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    children: Mapped[list[ScratchChild]] = relationship(back_populates="parent")


class ScratchChild(_Scratch):
    __tablename__ = "scratch_children"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("scratch_parents.id"))
    note: Mapped[str]
    parent: Mapped[ScratchParent] = relationship(back_populates="children")

    @validates("note")
    def _stripped(self, _key: str, value: str) -> str:
        return value.strip()


def test_among_takes_the_ids_in_one_parameter(rt: Runtime, instants: Table) -> None:
    """The rows whose column is one of the ids, or none of them; an empty list matches
    nothing. One parameter for all of them: an array on PostgreSQL, a JSON array on SQLite
    (`json_each`), not a placeholder each."""
    dialect = rt.db.dialect.name
    with rt.db.begin() as conn:
        conn.execute(insert(instants), [{"id": i, "at": None, "data": None} for i in range(1, 6)])
    for ids, inside, outside in (
        ([2, 4, 9], [2, 4], [1, 3, 5]),
        ([], [], [1, 2, 3, 4, 5]),
    ):
        within = among(instants.c.id, ids, dialect=dialect, name="ids")
        with rt.db.connect() as conn:
            got = conn.scalars(select(instants.c.id).where(within).order_by(instants.c.id))
            assert got.all() == inside
            got = conn.scalars(select(instants.c.id).where(~within).order_by(instants.c.id))
            assert got.all() == outside
        sql = str(select(instants.c.id).where(within).compile(dialect=rt.db.dialect))
        assert sql.count("?") + sql.count("%(") == 1
        if dialect == "sqlite":
            assert "json_each" in sql


@pytest.fixture
def scratch() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    _Scratch.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_the_constructor_puts_a_columns_value_in_the_dict_and_the_flush_writes_it(
    scratch: Session,
) -> None:
    """A column's value goes straight into the new object's dict, as a loaded row's does
    (no history: unchanged, not added), and the flush of the new object writes it."""
    parent = ScratchParent(name="高新区经发局")
    assert parent.__dict__["name"] == "高新区经发局"
    assert inspect(parent).attrs.name.history.unchanged == ["高新区经发局"]
    scratch.add(parent)
    scratch.commit()
    scratch.expunge_all()
    assert scratch.scalars(select(ScratchParent.name)).all() == ["高新区经发局"]


def test_the_constructor_refuses_what_is_not_an_attribute(scratch: Session) -> None:
    with pytest.raises(TypeError, match="'nmae' is an invalid keyword argument for ScratchParent"):
        ScratchParent(nmae="x")


def test_the_constructor_sets_validated_columns_and_relationships_through_the_orm(
    scratch: Session,
) -> None:
    """A column with a validator gets its value through the validator; a relationship
    through its instrumentation: the backref fills the other side, the cascade takes the
    child along and the flush copies the foreign key."""
    parent = ScratchParent(name="园区社区")
    child = ScratchChild(note="  回访  ", parent=parent)
    assert child.note == "回访"
    assert parent.children == [child]
    scratch.add(parent)
    scratch.commit()
    assert child.parent_id == parent.id is not None


# --- held: several attributes at once ----------------------------------------------------------


def test_held_reads_what_reading_each_attribute_reads(scratch: Session) -> None:
    """From the instance's dict when it holds them all (a change not yet flushed too); when
    one is not held (expired, a collection not loaded, an id not yet given), every one
    through its attribute, which loads what is missing: always what `getattr` gives."""
    read = held("id", "name", "children")
    parent = ScratchParent(name="园区社区", children=[ScratchChild(note="回访")])
    assert read(parent) == (None, "园区社区", parent.children)  # new: no id yet
    scratch.add(parent)
    scratch.commit()
    given = parent.id
    scratch.expunge_all()
    loaded = scratch.get(ScratchParent, given)
    assert loaded is not None and "children" not in loaded.__dict__  # lazy, not yet read
    assert read(loaded) == (given, "园区社区", loaded.children)
    assert [c.note for c in read(loaded)[2]] == ["回访"]
    loaded.name = "经发局"  # pending
    assert read(loaded)[1] == "经发局"
    scratch.commit()  # expires every attribute
    assert "name" not in loaded.__dict__
    assert read(loaded)[:2] == (given, "经发局")
    with pytest.raises(ValueError, match="two attributes or more"):
        held("name")


def test_json_text_takes_and_refuses_what_the_stdlib_does() -> None:
    """SQLite's JSON columns are written by `json_text` (orjson): the same value as
    `json.dumps` writes, int keys as text; an int past 64 bits, which orjson refuses, as
    the stdlib writes it; a datetime or a set refused as the stdlib refuses them."""
    for value in ({"n": {1: True, 2: None}, "by": ["等待"]}, [1, 2.5, "二"], {"big": 2**70}):
        assert json.loads(json_text(value)) == json.loads(json.dumps(value))
    for refused in ({"at": datetime(2026, 12, 5, tzinfo=UTC)}, {"x": {1, 2}}):
        with pytest.raises(TypeError):
            json_text(refused)
