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
import copy
import json
import logging
import operator
import os
import socket
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson
import psycopg
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    QueuePool,
    Select,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, StatementError
from sqlalchemy.orm import ColumnProperty, DeclarativeBase, Session, registry, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger("huying.db")
_R = TypeVar("_R")

# Rows per multi-row INSERT on PostgreSQL (SQLAlchemy's "insertmanyvalues"; its default is
# 1,000). psycopg parses each statement's text to turn its placeholders into $n, and that
# costs more per character the longer the text: when 10,000 deadlines fall due at once, the
# 40,000 timeline and event rows took 2.1 s of parsing in pages of 1,000 rows and 1.0 s in
# pages of 100, for 300 more statements (BENCHMARKS.md, "Deadlines").
INSERT_PAGE_ROWS = 100

# Most parameters of one `insert_together` statement: a submit's has about 150. Past it, one
# statement per part, as an executemany pays no more per row; this bounds too the statements
# compiled and kept (one per count of rows in each part) and stays far under PostgreSQL's
# 65,535 parameters per statement.
TOGETHER_MOST_PARAMS = 1000

# What `json.dumps` takes, as `json.dumps` takes it: int keys become text; a datetime or a
# dataclass fails (orjson would write it).
_AS_JSON_DUMPS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_text(value: Any) -> str:
    """`value` as JSON text: SQLite's JSON columns (the engine's `json_serializer`) and
    PostgreSQL's COPY of the firing's rows. orjson takes a tenth of the stdlib's time per
    value (the stdlib builds an encoder for every call); its text differs in spacing and
    writes non-ASCII as is, which no reader sees (each parses it; no query reads into the
    JSON). What orjson refuses (an int past 64 bits) the stdlib writes, or refuses as it
    always did."""
    try:
        return orjson.dumps(value, option=_AS_JSON_DUMPS).decode()
    except TypeError:
        return json.dumps(value)


# A table and rows for it, each its values by column key (`insert_together`).
Part = tuple[Table, Sequence[Mapping[str, Any]]]

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

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """On SQLite, which keeps an instant as text, the text read straight into an aware
        datetime: SQLAlchemy's composition (its `DATETIME` parser, then the method above)
        takes three calls a value, and a claim of 500 due deadlines reads 12,000 of them.

        The text as SQLAlchemy writes it (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) is parsed with
        its offset appended: one C call, 0.1 µs, where parsing it naive and then `replace`
        took 0.9 µs. Any other spelling (another length, an offset of its own) is parsed
        as it is, a naive one taken as UTC."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            if len(value) == 26:
                try:
                    return parse(value + "+00:00")
                except ValueError:  # 26 characters with an offset of its own
                    pass
            found = parse(value)
            return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)

        return process


JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# Primary keys: BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias.
BigID = BigInteger().with_variant(Integer(), "sqlite")


def held(*names: str) -> Callable[[object], tuple[Any, ...]]:
    """A reader of several mapped attributes of an object at once, each as reading the
    attribute gives it.

    SQLAlchemy keeps an instance's loaded (or set) values in its `__dict__`, and reading one
    through the mapped attribute is a Python call of its instrumented descriptor that looks
    it up there: the firing of 10,000 deadlines read 1.5 M attributes that way, more
    instructions than anything else of its Python work. Here the values the instance holds
    come from its dict in one C call (`operator.itemgetter`). When one is not held
    (deferred, expired, never loaded), every one is read through its descriptor, which
    loads what is missing: the same values either way. (A closure, not an object with
    `__call__`: calling one of those cost more than the three reads it saves.)"""
    if len(names) < 2:
        raise ValueError("held reads two attributes or more; read one as an attribute")
    get = operator.itemgetter(*names)

    def read(obj: object) -> tuple[Any, ...]:
        try:
            return cast(tuple[Any, ...], get(obj.__dict__))
        except KeyError:
            return tuple(getattr(obj, name) for name in names)

    return read


def among(column: Any, ids: Sequence[int], *, dialect: str, name: str) -> ColumnElement[bool]:
    """`column` is one of `ids` (`~among(...)`: none of them), the ids in one parameter.

    On PostgreSQL an array, `= ANY(%(name)s)`: an IN of hundreds of placeholders is a
    statement psycopg parses anew on every call (it caches only short ones). On SQLite a
    JSON array, `IN (SELECT value FROM json_each(?))` (its JSON functions are built in from
    3.38): SQLAlchemy builds and renders an IN of hundreds of placeholders one value at a
    time, and the worker's batch sent three such a claim (2% of a burst). Elsewhere an IN."""
    if dialect == "postgresql":
        found: ColumnElement[bool] = column == any_(
            bindparam(name, list(ids), type_=ARRAY(BigInteger))
        )
        return found
    if dialect == "sqlite" and sqlite3.sqlite_version_info >= (3, 38):
        each = func.json_each(bindparam(name, json_text(list(ids)))).table_valued("value")
        listed: ColumnElement[bool] = column.in_(select(each.c.value))
        return listed
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
    once (BENCHMARKS.md, "Deadlines"). On SQLite one executemany on the driver's cursor,
    each distinct datetime of a column converted once (`_Prepared.many`), unless anything
    watches the engine's statements (see `insert_rows`); elsewhere, and when a column holds
    JSON, SQLAlchemy's executemany."""
    if not rows:
        return 0
    targets = [table.c[c] for c in columns]
    dialect = connection.dialect
    if dialect.name == "sqlite" and not _observed(connection):
        prepared = _prepared_update(table, dialect, tuple(columns))
        each = prepared.many(rows)
        with _DriverCursor(connection, prepared.sql, each) as cursor:
            cursor.executemany(prepared.sql, each)
            return int(cursor.rowcount)
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


def insert_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: str | None = None,
) -> list[Any]:
    """INSERT `rows` into `table`, each row its values by column key, every row with the
    same keys; with `returning`, that column of each new row, in the order of `rows`.

    SQLAlchemy compiles the statement, once per table, dialect and set of keys, and gives
    the values' bind processors; the driver's cursor runs it (an executemany for several
    rows). SQLAlchemy's execution around a statement (its context, the parameters, the
    result) costs more than the driver's own work for the submit's few short rows: its six
    INSERTs written here take 14% fewer instructions per submit (BENCHMARKS.md, the
    eleventh session's part two targets).
    Errors arrive as `Connection.execute` raises them: SQLAlchemy's (IntegrityError for a
    unique key), a lost connection invalidated. When anything watches the engine's
    statements (echo, a `before_cursor_execute`, `after_cursor_execute` or `handle_error`
    listener), or the rows lack a column that has a default on the Python side, they go
    through `Connection.execute` instead, so that the listeners see every statement and the
    defaults are filled in."""
    if not rows:
        return []
    dialect = connection.dialect
    prepared = (
        None if _observed(connection) else _prepared(table, dialect, tuple(rows[0]), returning)
    )
    if prepared is None:
        statement = insert(table)
        if returning is None:
            connection.execute(statement, list(rows))
            return []
        ordered = statement.returning(table.c[returning], sort_by_parameter_order=True)
        return list(connection.execute(ordered, list(rows)).scalars())
    params: list[Any] = prepared.many(rows)
    many = len(params) > 1
    with _DriverCursor(connection, prepared.sql, params if many else params[0]) as cursor:
        if returning is not None:  # one at a time: sqlite3's executemany returns no rows
            found = []
            for one in params:
                cursor.execute(prepared.sql, one)
                found.append(cast(Sequence[Any], cursor.fetchone())[0])
            return found
        if many:
            cursor.executemany(prepared.sql, params)
        else:
            cursor.execute(prepared.sql, params[0])
        return []


def insert_together(
    connection: Connection,
    parts: Sequence[Part],
    *,
    returning: str | None = None,
) -> list[Any]:
    """INSERT each part's rows into its table (each row its values by column key, every row
    of a part with the same keys), the parts in the order given, a parent's before its
    children's; with `returning`, that column of each new row of the last part, in the
    order of its rows.

    On PostgreSQL, one statement: each part but the last an INSERT in its WITH clause, the
    last the statement's own. A round trip to the server cost the client more CPU than the
    INSERT it carried (its kernel time most: BENCHMARKS.md, the fourteenth session's part
    two targets), and a foreign key is checked at the end of the statement, so a row may
    name a parent written in the same statement. The text has `$n` placeholders, run on
    psycopg's raw cursor: psycopg turns named placeholders into those anew, in Python, for
    every call of a statement this long, which cost as much as the round trips saved.
    When the last part returns more than one row (PostgreSQL does not promise RETURNING's
    order across rows), the parts before it are one statement and it is its own. Elsewhere
    (SQLite has no round trip to save; a driver other than psycopg), when anything watches
    the engine's statements, or past `TOGETHER_MOST_PARAMS` parameters, one `insert_rows`
    per part."""
    parts = [(table, rows) for table, rows in parts if rows]
    if not parts:
        return []
    if returning is not None and len(parts[-1][1]) > 1:
        insert_together(connection, parts[:-1])
        table, rows = parts[-1]
        return insert_rows(connection, table, rows, returning=returning)
    dialect = connection.dialect
    together = (
        None
        if dialect.driver != "psycopg"
        or len(parts) == 1
        or sum(len(rows) * len(rows[0]) for _, rows in parts) > TOGETHER_MOST_PARAMS
        or _observed(connection)
        else _prepared_together(
            tuple((table, tuple(rows[0]), len(rows)) for table, rows in parts), dialect, returning
        )
    )
    if together is None:
        for table, rows in parts[:-1]:
            insert_rows(connection, table, rows)
        table, rows = parts[-1]
        return insert_rows(connection, table, rows, returning=returning)
    params = tuple(
        p(parts[i][1][r][k]) if p else parts[i][1][r][k] for i, r, k, p in together.binds
    )
    with _DriverCursor(connection, together.sql, params, raw=True) as cursor:
        cursor.execute(together.sql, params)
        return [row[0] for row in cursor.fetchall()] if returning is not None else []


@dataclass(frozen=True)
class _Together:
    """The one statement of `insert_together` for a shape of parts: its text, and for each
    `$n` in turn the part, row and column key of its value and the bind processor."""

    sql: str
    binds: tuple[tuple[int, int, str, Callable[[Any], Any] | None], ...]


@lru_cache(maxsize=256)
def _prepared_together(
    shape: tuple[tuple[Table, tuple[str, ...], int], ...], dialect: Dialect, returning: str | None
) -> _Together | None:
    """`shape`: each part's table, keys and number of rows. None when a column left out has
    a default on the Python side (SQLAlchemy's execution evaluates it)."""
    named: dict[str, tuple[int, int, str]] = {}
    inserts = []
    for i, (table, keys, count) in enumerate(shape):
        rows = []
        for r in range(count):
            row = {}
            for k in keys:
                named[name := f"p{i}_{r}_{k}"] = (i, r, k)
                row[k] = bindparam(name, type_=table.c[k].type)
            rows.append(row)
        inserts.append(insert(table).values(rows))
    last = shape[-1][0]
    statement = inserts[-1].returning(last.c[returning]) if returning else inserts[-1]
    statement = statement.add_cte(*(s.cte(f"w{i}") for i, s in enumerate(inserts[:-1])))
    compiled: Any = statement.compile(dialect=_dollar(dialect))
    if compiled.insert_prefetch or set(compiled.binds) != set(named):
        return None
    processors = compiled._bind_processors
    return _Together(
        compiled.string, tuple((*named[n], processors.get(n)) for n in compiled.positiontup)
    )


@lru_cache(maxsize=16)
def _dollar(dialect: Dialect) -> Dialect:
    """`dialect` writing PostgreSQL's own `$n` placeholders, for psycopg's raw cursor."""
    dollar = copy.copy(dialect)
    dollar.paramstyle, dollar.positional = "numeric_dollar", True
    # its own quoting of names, which doubles no % (psycopg's raw cursor reads none), and
    # its own types' processors, which are given the dialect they serve
    dollar.identifier_preparer = dollar.preparer(dollar)
    dollar._type_memos = weakref.WeakKeyDictionary()
    return dollar


def select_one(connection: Connection, statement: Select[Any]) -> Sequence[Any]:
    """The one row of `statement`, as `connection.execute(statement).one()` gives it, run on
    the driver's cursor like `insert_rows`' INSERTs: the submit's first statement (the
    generations of the caches and the new request's id, `huying.cache.current`) spent more
    in SQLAlchemy's execution around it than in the driver. The statement is compiled once
    per dialect, its literal parameters with it; errors are raised as SQLAlchemy raises
    them, NoResultFound and MultipleResultsFound included. When anything watches the
    engine's statements, or a column's value needs converting on its way back (a result
    processor), it goes through `Connection.execute`."""
    prepared = None if _observed(connection) else _prepared_select(statement, connection.dialect)
    if prepared is None:
        return connection.execute(statement).one()
    sql, params = prepared
    with _DriverCursor(connection, sql, params) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchmany(2)
    if not rows:
        raise NoResultFound("No row was found when one was required")
    if len(rows) > 1:
        raise MultipleResultsFound("Multiple rows were found when exactly one was required")
    return tuple(rows[0])


@lru_cache(maxsize=64)
def _prepared_select(statement: Select[Any], dialect: Dialect) -> tuple[str, Any] | None:
    """`statement`'s text for `dialect` and its parameters, as the driver takes them; None
    when it needs more than that (a parameter given at execution, expanded or rendered
    then, or a result column to convert)."""
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None
    if any(
        c.type._cached_result_processor(dialect, None) is not None for c in compiled._result_columns
    ):
        return None
    if any(b.required for b in compiled.binds.values()):
        return None
    values = compiled.construct_params()
    processors = compiled._bind_processors
    escaped = compiled.escaped_bind_names or {}

    def value(name: str) -> Any:
        process = processors.get(name)
        return process(values[name]) if process else values[name]

    if compiled.positional:
        return compiled.string, tuple(value(n) for n in compiled.positiontup)
    return compiled.string, {escaped.get(n, n): value(n) for n in compiled.bind_names.values()}


class _DriverCursor:
    """A cursor of `connection`'s driver, for `insert_rows`, `insert_together` and
    `select_one` (with `raw`, psycopg's raw cursor, whose statements have `$n` placeholders):
    closed at the end, and a driver's error raised as SQLAlchemy's execution raises it
    (`_as_raised`), the statement and its parameters named, a lost connection invalidated."""

    __slots__ = ("connection", "cursor", "params", "raw", "sql")

    def __init__(self, connection: Connection, sql: str, params: Any, *, raw: bool = False) -> None:
        self.connection, self.sql, self.params, self.raw = connection, sql, params, raw
        self.cursor: Any = None

    def __enter__(self) -> Any:
        try:
            if self.raw:  # psycopg's, for `$n` placeholders
                dbapi: Any = self.connection.connection.dbapi_connection
                watched = isinstance(dbapi, _WatchedConnection)
                self.cursor = (_WatchedRawCursor if watched else psycopg.RawCursor)(dbapi)
            else:
                self.cursor = self.connection.connection.cursor()
        except self.connection.dialect.loaded_dbapi.Error as exc:
            raise _as_raised(self.connection, exc, self.sql, self.params) from exc
        return self.cursor

    def __exit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> None:
        raised = None
        if isinstance(exc, self.connection.dialect.loaded_dbapi.Error):
            raised = _as_raised(self.connection, exc, self.sql, self.params, self.cursor)
        with contextlib.suppress(Exception):  # a connection just lost may refuse even this
            self.cursor.close()
        if raised is not None:
            raise raised from exc


def _as_raised(
    connection: Connection, exc: Any, sql: str, params: Any, cursor: Any = None
) -> StatementError:
    """The driver's `exc` as SQLAlchemy's execution raises it: wrapped in its exception class
    (IntegrityError, OperationalError, ...), the connection invalidated if it is lost."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(exc)
    raised: StatementError = DBAPIError.instance(
        sql,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=connection.engine.hide_parameters,
        connection_invalidated=lost,
        dialect=dialect,
        ismulti=isinstance(params, list),
    )
    return raised


def _observed(connection: Connection) -> bool:
    dispatch = connection.dispatch
    return bool(
        connection.engine.echo
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or connection.dialect.dispatch.handle_error
    )


# Rows from which `_Prepared.many` builds the parameters column by column.
_COLUMNWISE_FROM = 8

# A statement's parameter: the driver's name for it, the column key, the bind processor,
# and whether its values repeat across rows (an instant: converted once per value).
_Bind = tuple[str, str, Callable[[Any], Any] | None, bool]


@dataclass(frozen=True)
class _Prepared:
    """A statement compiled for one dialect and set of keys (`insert_rows`,
    `update_versioned`): its text and its parameters (`_Bind`)."""

    sql: str
    binds: tuple[_Bind, ...]
    positional: bool

    def params(self, row: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self.positional:
            return tuple(p(row[k]) if p else row[k] for _, k, p, _ in self.binds)
        return {name: p(row[k]) if p else row[k] for name, k, p, _ in self.binds}

    def many(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Each row's parameters, as `params` gives them. From `_COLUMNWISE_FROM` rows (and
        positional parameters), column by column, a column of instants converted once per
        distinct value: a batch's rows share a handful of instants (10,000 deadlines
        falling due at once write 60,000 datetimes of a few instants)."""
        if not self.positional or len(rows) < _COLUMNWISE_FROM:
            return [self.params(row) for row in rows]
        columns = []
        for _, key, process, repeats in self.binds:
            values = [row[key] for row in rows]
            if process is None:
                columns.append(values)
            elif repeats:
                seen = {v: process(v) for v in set(values)}
                columns.append([seen[v] for v in values])
            else:
                columns.append([process(v) for v in values])
        return list(zip(*columns, strict=True))


def _bind(compiled: Any, table: Table, name: str, key: str, driver_name: str) -> _Bind:
    """Parameter `name` of `compiled` (for column `key`, or for no column)."""
    column = table.c.get(key)
    repeats = column is not None and isinstance(column.type, UTCDateTime | DateTime)
    return (driver_name, key, compiled._bind_processors.get(name), repeats)


@lru_cache(maxsize=256)
def _prepared(
    table: Table, dialect: Dialect, keys: tuple[str, ...], returning: str | None
) -> _Prepared | None:
    """None when the statement would fill a column from a Python-side default (the keys
    lack one) or a row needs more than its text and parameters: those go through
    SQLAlchemy's execution, which evaluates them."""
    statement = insert(table)
    if returning is not None:
        statement = statement.returning(table.c[returning])
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.insert_prefetch or compiled.literal_execute_params or compiled.post_compile_params:
        return None
    names = compiled.positiontup if compiled.positional else list(compiled.bind_names.values())
    escaped = compiled.escaped_bind_names or {}
    binds = []
    for name in names:  # each with what SQLAlchemy's own execution applies
        key = compiled.binds[name].key
        if key not in keys:
            return None
        binds.append(_bind(compiled, table, name, key, escaped.get(name, name)))
    return _Prepared(compiled.string, tuple(binds), bool(compiled.positional))


@lru_cache(maxsize=64)
def _prepared_update(table: Table, dialect: Dialect, columns: tuple[str, ...]) -> _Prepared:
    """`update_versioned`'s statement for one set of columns, compiled once."""
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"), table.c.version == bindparam("_read"))
        .values({c: bindparam(c) for c in columns})
    )
    compiled: Any = statement.compile(dialect=dialect)
    binds = tuple(
        _bind(compiled, table, name, compiled.binds[name].key, name)
        for name in compiled.positiontup
    )
    return _Prepared(compiled.string, binds, bool(compiled.positional))


def constructor(self: Any, **kwargs: Any) -> None:
    """Every model's constructor: SQLAlchemy's declarative one (each keyword sets the
    attribute of its name; an unknown one is a TypeError), except that a plain column's value
    goes straight into the new object's dict, as a row loaded from the database does,
    instead of through the attribute's instrumentation, which records each value as a
    change: a new `Request` cost 30 µs that way and 3.5 µs this way, and a submit makes
    half a dozen objects (BENCHMARKS.md, "Part two targets (issue 16), 2026-12-04, twelfth
    session").

    What that leaves out, for a column given here: its history (it reads as unchanged rather
    than added; the flush of a new object writes what the dict holds either way) and its
    `set` listeners. A column with a `set` listener or a validator when the class is first
    constructed (`@validates`, `event.listen(Model.column, "set", ...)`) and every
    relationship still go through the instrumentation: a relationship's backref, cascade and
    foreign key need it."""
    cls: type = type(self)
    plain = _plain_columns(cls)
    values = self.__dict__
    for key, value in kwargs.items():
        if key in plain:
            values[key] = value
        elif hasattr(cls, key):
            setattr(self, key, value)
        else:
            raise TypeError(f"{key!r} is an invalid keyword argument for {cls.__name__}")


@cache
def _plain_columns(cls: type) -> frozenset[str]:
    """The attributes `constructor` may write into the dict: the class's column attributes
    without a validator or a `set` listener."""
    mapper = cls.__mapper__  # type: ignore[attr-defined]
    return frozenset(
        prop.key
        for prop in mapper.column_attrs
        if type(prop) is ColumnProperty
        and isinstance(prop.columns[0], Column)
        and prop.key not in mapper.validators
        and not getattr(cls, prop.key).dispatch.set
    )


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION), constructor=constructor
    )


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
            json_serializer=json_text,
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
    def _begin(conn: Connection) -> None:
        if _observed(conn):  # the listeners see it (the tests count it as a statement)
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        # on the driver's connection: SQLAlchemy's execution around it cost more than it
        try:
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
        except conn.dialect.loaded_dbapi.Error as exc:  # locked past the busy timeout
            raise _as_raised(conn, exc, "BEGIN IMMEDIATE", ()) from exc


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

    def drop_if_stranded(self) -> None:
        """After a failed round trip: close the connection if libpq still waits for the answer
        to a query it sent. That happens when the socket fails under the wait (psycopg's
        "connection socket closed", e.g. a reset that the poll sees before libpq reads it):
        psycopg then marks the connection neither closed nor broken, nothing more can be sent
        on it, and the next command fails as a ProgrammingError ("connection in transaction
        status ACTIVE"), which SQLAlchemy does not take for a disconnect (a 500). Closed, it
        is one: the pool's pre-ping replaces it, a statement invalidates it (a 503)."""
        if self.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
            self.close()

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


class _Watched:
    """A psycopg cursor's round trips, watched by `_WATCH` (mixed into a cursor class)."""

    connection: Any

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        return _WATCH.call(self.connection, super().execute, *args, **kwargs)  # type: ignore[misc]

    def executemany(self, *args: Any, **kwargs: Any) -> None:
        _WATCH.call(self.connection, super().executemany, *args, **kwargs)  # type: ignore[misc]


class _WatchedCursor(_Watched, psycopg.Cursor[Any]):
    pass


class _WatchedRawCursor(_Watched, psycopg.RawCursor[Any]):
    pass


class _Watch:
    """One thread per process, started with the first watched call, that hangs up the
    connections whose answer is overdue. A call registers its deadline and removes it when
    it returns, both under one lock, so a call that returned is never hung up. About 2 µs
    of Python per round trip. A round trip that fails leaving libpq mid-query closes its
    connection (`drop_if_stranded`)."""

    PERIOD = 0.25  # seconds between looks; the bounds are seconds long

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[_WatchedConnection, tuple[float, float]] = {}
        self._thread: threading.Thread | None = None

    def call(self, conn: object, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
        """`fn(*args, **kwargs)`, a round trip on `conn`, hung up if overdue."""
        if not isinstance(conn, _WatchedConnection):
            return fn(*args, **kwargs)
        if (limit := conn.limit()) is not None:  # None: a migration's, unbounded
            with self._lock:
                self._waiting[conn] = (time.monotonic() + limit, limit)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="huying-db-watch")
                    self._thread.daemon = True
                    self._thread.start()
        try:
            return fn(*args, **kwargs)
        except psycopg.OperationalError as exc:
            conn.drop_if_stranded()
            if conn.hung_up and limit is not None:
                raise psycopg.OperationalError(
                    f"the database did not answer within {limit:g} s"
                ) from exc
            raise
        finally:
            if limit is not None:
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
