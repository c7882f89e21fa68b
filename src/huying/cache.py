"""Process-local caches of what rarely changes (the directory, credentials), exact across
replicas.

Each cache has a generation: a row of `cache_generations` that every write to what it caches
replaces, in the write's own transaction, with a new random number. A transaction that uses a
cache first reads the generations (`current`, one small statement, or a column of a statement
it makes anyway) and gets the entries stored under exactly that generation; when the row has
moved since, the entries are dropped and read again. So an entry retired or a key revoked on
any replica is seen by the very next transaction that starts after its commit, on every
replica, with no time-to-live. A random number rather than a counter: a write that rolls
back leaves a value nobody will ever read again, so nothing read inside it can be mistaken
for committed state.

Entries are filled from reads made after the generation was read, so they are never older
than it. A transaction that has itself written to a cached table bypasses the cache for the
rest of its life (it would see, or store, its own uncommitted rows); so does one that finds no
generation row (a database emptied by hand: the next write makes the row again).

Who bumps: every writer, without having to remember. SQLAlchemy session events watch the
cached tables (`WATCHED`): a flush that inserts, changes or deletes one of their rows, and any
INSERT/UPDATE/DELETE statement run through a session on one of them (`session.execute(
delete(StaffSession)...)`, even as text), bump its generation first. The directory's API,
console, loader and imports, the admin's users and keys, logins and logouts, and the tests'
fixtures writing rows with the ORM all go through a session. A write on a bare `Connection`
is not seen: the migrations do that, and `cache_generations` is written by the last one.
"""

from __future__ import annotations

import re
import secrets
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Select, String, Table, event, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql.elements import ColumnElement, TextClause

from huying.db import Base, select_one

DIRECTORY = "directory"
AUTH = "auth"
NAMES = (DIRECTORY, AUTH)

# The tables each cache is made of: a write to one of them bumps that cache's generation.
WATCHED: Mapping[str, str] = {
    "departments": DIRECTORY,
    "chains": DIRECTORY,
    "categories": DIRECTORY,
    "enterprises": DIRECTORY,
    "routing_rules": DIRECTORY,
    "api_keys": AUTH,
    "users": AUTH,
    "staff_sessions": AUTH,
}
# The most entries one cache keeps per generation: beyond it starts afresh (a caller naming
# a new enterprise each time must not grow the process without bound).
MAX_ENTRIES = 20_000

generations_table = Table(
    "cache_generations",
    Base.metadata,
    Column("name", String(32), primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

_BUMP = sql_text(
    "INSERT INTO cache_generations (name, generation) VALUES (:name, :generation) "
    "ON CONFLICT (name) DO UPDATE SET generation = excluded.generation"
)
# A text statement writing to a cached table (rare: tests and hand-written SQL).
_TEXT_WRITE = re.compile(
    r"\b(?:insert\s+into|update|delete\s+from)\s+\"?(" + "|".join(WATCHED) + r")\b",
    re.IGNORECASE,
)
# session.info keys: the generations this transaction read; the caches it has bumped.
_READ = "huying.cache.read"
_BUMPED = "huying.cache.bumped"
_WROTE = "huying.cache.wrote"

Generations = Mapping[str, int | None]


class _Store:
    """One engine's caches: name -> (generation, entries)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[int, dict[Any, Any]]] = {}


_stores: weakref.WeakKeyDictionary[Engine, _Store] = weakref.WeakKeyDictionary()
_stores_lock = threading.Lock()


def _store(engine: Engine) -> _Store:
    found = _stores.get(engine)
    if found is None:
        with _stores_lock:
            found = _stores.setdefault(engine, _Store())
    return found


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def current(session: Session, *, also: ColumnElement[Any] | None = None) -> tuple[Generations, Any]:
    """The generations as this transaction sees them, and the value of `also` read in the
    same statement (a statement the caller would make anyway, e.g. the next request id).
    Read once per transaction unless `also` is given."""
    read: Generations | None = session.info.get(_READ)
    if read is not None and also is None:
        return read, None
    row = select_one(session.connection(), _statement(also))
    read = {name: row[i] for i, name in enumerate(NAMES)}
    session.info[_READ] = read
    return read, row[len(NAMES)] if also is not None else None


_statements: dict[int, tuple[object, Select[Any]]] = {}


def _statement(also: ColumnElement[Any] | None) -> Select[Any]:
    """The generations, and `also`, as one statement (built once for each `also`)."""
    found = _statements.get(id(also))
    if found is None or found[0] is not also:
        columns = [
            select(generations_table.c.generation)
            .where(generations_table.c.name == name)
            .scalar_subquery()
            .label(name)
            for name in NAMES
        ]
        found = _statements[id(also)] = (
            also,
            select(*columns, *([also] if also is not None else [])),
        )
    return found[1]


def entries(session: Session, name: str) -> dict[Any, Any] | None:
    """The cache `name` as of the generation this transaction read (reading it if not yet),
    to read and fill; None when this transaction must go to the database instead."""
    if session.info.get(_WROTE):
        return None
    generation = current(session)[0].get(name)
    if generation is None:
        return None
    return _at(_store(_engine(session)), name, generation)


def _at(store: _Store, name: str, generation: int) -> dict[Any, Any]:
    found = store.entries.get(name)
    if found is not None and found[0] == generation and len(found[1]) < MAX_ENTRIES:
        return found[1]
    with store.lock:
        found = store.entries.get(name)
        if found is None or found[0] != generation or len(found[1]) >= MAX_ENTRIES:
            found = (generation, {})
            store.entries[name] = found
    return found[1]


def peek(engine: Engine, name: str) -> tuple[int, dict[Any, Any]] | None:
    """The latest entries of cache `name` this process holds and their generation, without
    asking the database: what was true at that generation, to be confirmed with `current`
    in the transaction that relies on it."""
    return _store(engine).entries.get(name)


def forget(engine: Engine, names: Iterable[str] = NAMES) -> None:
    """Drop this process's entries (they would be dropped at the next generation anyway)."""
    store = _store(engine)
    with store.lock:
        for name in names:
            store.entries.pop(name, None)


def bump(session: Session, names: Iterable[str]) -> None:
    """Give these caches a new generation in the session's transaction, once per transaction
    (again after a savepoint ends, which may have rolled the first one back)."""
    bumped: set[str] = session.info.setdefault(_BUMPED, set())
    session.info[_WROTE] = True
    for name in sorted(set(names) - bumped):
        session.connection().execute(_BUMP, {"name": name, "generation": secrets.randbits(62) + 1})
        bumped.add(name)


def _watched(table: object) -> str | None:
    """The cache a table (or an ORM class's table) is part of, if any."""
    name = getattr(table, "name", None)
    return WATCHED.get(name) if isinstance(name, str) else None


def _written_tables(objects: Iterable[object]) -> set[str]:
    return {name for obj in objects if (name := _watched(getattr(type(obj), "__table__", None)))}


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    names = _written_tables([*session.new, *session.dirty, *session.deleted])
    if names:
        bump(session, names)


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state: ORMExecuteState) -> None:
    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        if name := _watched(getattr(statement, "table", None)):
            bump(state.session, [name])
    elif isinstance(statement, TextClause) and (found := _TEXT_WRITE.search(statement.text)):
        bump(state.session, [WATCHED[found.group(1).lower()]])


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    bumped = session.info.get(_BUMPED)
    if bumped:
        forget(_engine(session), bumped)  # this replica needs no statement to know
    _reset(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    _reset(session)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.pop(_BUMPED, None)  # a rolled-back savepoint took its bumps with it
    elif transaction.parent is None:
        _reset(session)


def _reset(session: Session) -> None:
    for key in (_READ, _BUMPED, _WROTE):
        session.info.pop(key, None)
