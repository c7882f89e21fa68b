"""Engine and session factories. The schema itself is built only by Alembic.

How long a call may wait on the database (DESIGN.md, "Hardening"): for a free pooled
connection, `pool_timeout`; for a new connection, `connect_timeout`; for one statement,
`statement_timeout`, which PostgreSQL enforces itself. A server that stops answering
altogether (hung, or a proxy in front of a dead one) enforces nothing, and its kernel still
acknowledges every packet, so neither TCP keepalives nor `tcp_user_timeout` notice: a
watchdog (`_Watch`) hangs up a connection that waits longer than the statement bound plus
`connect_timeout` for an answer, or longer than `connect_timeout` for the answer to the
pool's pre-ping. Every such failure reaches the caller as a disconnect: a 503, never a hang.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    QueuePool,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("huying.db")
_R = TypeVar("_R")

# Rows per multi-row INSERT on PostgreSQL (SQLAlchemy's "insertmanyvalues"; its default is
# 1,000). psycopg parses each statement's text to turn its placeholders into $n, and that
# costs more per character the longer the text: when 10,000 deadlines fall due at once, the
# 40,000 timeline and event rows took 2.1 s of parsing in pages of 1,000 rows and 1.0 s in
# pages of 100, for 300 more statements (BENCHMARKS.md, "Deadlines").
INSERT_PAGE_ROWS = 100

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC; SQLite (which forgets the zone) gets them back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # PostgreSQL: each session's zone is UTC
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# Primary keys: BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias.
BigID = BigInteger().with_variant(Integer(), "sqlite")


def among(column: Any, ids: Sequence[int], *, dialect: str, name: str) -> ColumnElement[bool]:
    """`column` is one of `ids` (`~among(...)`: none of them). On PostgreSQL one array
    parameter, `= ANY(%(name)s)`: an IN of hundreds of placeholders is a statement psycopg
    parses anew on every call (it caches only short ones); elsewhere an IN."""
    if dialect == "postgresql":
        found: ColumnElement[bool] = column == any_(
            bindparam(name, list(ids), type_=ARRAY(BigInteger))
        )
        return found
    within: ColumnElement[bool] = column.in_(list(ids))
    return within


def update_versioned(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> int:
    """UPDATE `columns` of `table` for each of `rows` (its values by column key, with `_id`,
    the row's id, and `_read`, the version read), where the id and the version match;
    returns how many rows matched. Each row names every one of `columns`.

    On PostgreSQL one statement for all of them, joined to one array per column
    (`unnest`): planned and executed once, where an executemany is a statement per row, and
    that per-row cost was more than the writes themselves when 10,000 deadlines fell due at
    once (BENCHMARKS.md, "Deadlines"). Elsewhere, and when a column holds JSON, an
    executemany."""
    if not rows:
        return 0
    targets = [table.c[c] for c in columns]
    dialect = connection.dialect
    if dialect.name != "postgresql" or any(isinstance(c.type, JSON) for c in targets):
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_read"))
            .values({c.key: bindparam(c.key) for c in targets})
        )
        return connection.execute(statement, list(rows)).rowcount
    quote = dialect.identifier_preparer.quote
    params: dict[str, list[Any]] = {
        "_id": [r["_id"] for r in rows],
        "_read": [r["_read"] for r in rows],
    }
    # %(name)b: each array in psycopg's binary format, dumped in C; as text, each element
    # is dumped in Python (5 µs a timestamp against 0.3, most of the writer's time)
    arrays = ["%(_id)b::bigint[]", "%(_read)b::integer[]"]
    sets = []
    for k, column in enumerate(targets):
        process = column.type.bind_processor(dialect)
        values = [r[column.key] for r in rows]
        params[f"c{k}"] = [process(v) for v in values] if process else values
        arrays.append(f"%(c{k})b::{column.type.compile(dialect=dialect)}[]")
        sets.append(f"{quote(column.name)} = v.c{k}")
    names = ", ".join(f"c{k}" for k in range(len(targets)))
    sql = (
        f"UPDATE {quote(table.name)} SET {', '.join(sets)} "
        f"FROM unnest({', '.join(arrays)}) AS v(_id, _read, {names}) "
        f"WHERE {quote(table.name)}.id = v._id AND {quote(table.name)}.version = v._read"
    )
    return connection.exec_driver_sql(sql, params).rowcount


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout: int = 5,
    pool_timeout: float = 5.0,
    statement_timeout: float = 30.0,
    echo: bool = False,
) -> Engine:
    """An engine whose every wait is bounded (see the module's docstring).

    SQLite: one connection, and every write begins IMMEDIATE, so writers are serialised
    anyway; waiting in the pool's queue is fairer and faster than SQLite's sleeping busy
    handler. That queue is SQLite's lock wait, so it is bounded by `statement_timeout`, as
    the busy handler is (another process, e.g. `huying load`, may hold the lock), and not by
    `pool_timeout`, which would turn a burst of writers into 503s.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not parsed.query.get("uri"):
            _create_private(Path(path))
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": statement_timeout},
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=statement_timeout,
        )
        _sqlite_pragmas(engine)
        return engine
    options = parsed.query.get("options")
    engine = create_engine(
        url,
        echo=echo,
        insertmanyvalues_page_size=INSERT_PAGE_ROWS,
        connect_args={
            "connect_timeout": connect_timeout,
            # The server cancels a statement that runs longer (its lock waits included).
            "options": " ".join(
                [
                    *([options] if isinstance(options, str) else options or ()),
                    f"-c statement_timeout={round(statement_timeout * 1000)}",
                    # timestamps come back in UTC whatever the server's zone (psycopg then
                    # gives them `datetime.UTC`, which `UTCDateTime` passes through as is)
                    "-c TimeZone=UTC",
                ]
            ),
            # An established connection whose peer vanished (a dropped route, not a closed
            # socket) fails once its unacknowledged data has waited this long, and an idle
            # one is probed, instead of waiting for the kernel's retransmissions (~15 min).
            "tcp_user_timeout": connect_timeout * 2000,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=pool_timeout,
    )
    _watch_answers(
        engine, answer_within=statement_timeout + connect_timeout, ping_within=connect_timeout
    )
    return engine


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only: it holds password hashes and
    webhook secrets. SQLite gives its -wal and -shm files the mode of the database file.
    The folder is made 0700 when it does not exist; what exists is left as it is."""
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)  # an empty file is an empty SQLite database


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so writers queue instead of failing late.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits the
    BEGIN itself (the recipe from SQLAlchemy's SQLite documentation). The busy timeout
    is the `timeout` connect argument.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def snapshot_options(engine: Engine) -> dict[str, Any] | None:
    """The connection's execution options for a transaction that only reads and sees one
    snapshot (`Runtime.snapshot`): REPEATABLE READ, READ ONLY on PostgreSQL. None on SQLite,
    where every transaction is one already: its one connection begins IMMEDIATE, so nothing
    else writes until it ends."""
    if engine.dialect.name == "postgresql":
        return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    return None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


def unbounded(conn: Connection) -> None:
    """No statement bound for the rest of `conn`'s transaction: for migrations and backfills,
    whose statements may rightly run for minutes on a large database. PostgreSQL only; on
    SQLite there is nothing to lift."""
    if conn.dialect.name != "postgresql":
        return
    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
    raw = conn.connection.dbapi_connection
    if isinstance(raw, _WatchedConnection):
        raw.unbounded = True  # until the connection goes back to the pool


# --- the watchdog (PostgreSQL) -----------------------------------------------------------


class _WatchedConnection(psycopg.Connection[Any]):
    """A psycopg connection whose every wait for the server is watched by `_WATCH`."""

    answer_within: float | None = None  # seconds a checked-out connection waits for answers
    ping_within: float | None = None  # seconds the pool's pre-ping waits
    idle = False  # in the pool: the next call is the pre-ping
    unbounded = False
    hung_up = False

    def limit(self) -> float | None:
        if self.idle:
            return self.ping_within
        return None if self.unbounded else self.answer_within

    def commit(self) -> None:
        _WATCH.call(self, super().commit)

    def rollback(self) -> None:
        _WATCH.call(self, super().rollback)

    def hang_up(self) -> None:
        """Shut the socket down under libpq's feet: its wait ends at once with "server closed
        the connection unexpectedly", and SQLAlchemy invalidates the connection."""
        self.hung_up = True
        with contextlib.suppress(psycopg.Error, OSError):
            sock = socket.socket(fileno=os.dup(self.pgconn.socket))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()


class _WatchedCursor(psycopg.Cursor[Any]):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _WATCH.call(self.connection, super().execute, *args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        _WATCH.call(self.connection, super().executemany, *args, **kwargs)


class _Watch:
    """One thread per process, started with the first watched call, that hangs up the
    connections whose answer is overdue. A call registers its deadline and removes it when
    it returns, both under one lock, so a call that returned is never hung up. About 2 µs
    of Python per round trip."""

    PERIOD = 0.25  # seconds between looks; the bounds are seconds long

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[_WatchedConnection, tuple[float, float]] = {}
        self._thread: threading.Thread | None = None

    def call(self, conn: object, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
        """`fn(*args, **kwargs)`, a round trip on `conn`, hung up if overdue."""
        if not isinstance(conn, _WatchedConnection) or (limit := conn.limit()) is None:
            return fn(*args, **kwargs)
        with self._lock:
            self._waiting[conn] = (time.monotonic() + limit, limit)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="huying-db-watch")
                self._thread.daemon = True
                self._thread.start()
        try:
            return fn(*args, **kwargs)
        except psycopg.OperationalError as exc:
            if conn.hung_up:
                raise psycopg.OperationalError(
                    f"the database did not answer within {limit:g} s"
                ) from exc
            raise
        finally:
            with self._lock:
                self._waiting.pop(conn, None)

    def _run(self) -> None:
        while True:
            time.sleep(self.PERIOD)
            now = time.monotonic()
            with self._lock:
                late = [(c, limit) for c, (at, limit) in self._waiting.items() if at <= now]
                for conn, limit in late:
                    del self._waiting[conn]
                    log.warning("the database did not answer within %g s: hanging up", limit)
                    conn.hang_up()


_WATCH = _Watch()


def _watch_answers(engine: Engine, *, answer_within: float, ping_within: float) -> None:
    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        conn = _WatchedConnection.connect(*cargs, **{**cparams, "cursor_factory": _WatchedCursor})
        conn.answer_within, conn.ping_within = answer_within, ping_within
        return conn

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, _WatchedConnection):
            dbapi_connection.idle, dbapi_connection.unbounded = True, False

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if isinstance(dbapi_connection, _WatchedConnection):
            dbapi_connection.idle = False
