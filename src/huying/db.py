"""Engine and session factories. The schema itself is built only by Alembic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Integer,
    MetaData,
    QueuePool,
    create_engine,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

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
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# Primary keys: BIGINT on PostgreSQL; SQLite needs INTEGER for its rowid alias.
BigID = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(
    url: str, *, pool_size: int = 10, connect_timeout: int = 5, echo: bool = False
) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection: every write begins IMMEDIATE, so writers are serialised anyway, and
        # waiting in the pool's queue is fairer and faster than SQLite's sleeping busy handler.
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
        )
        _sqlite_pragmas(engine)
        return engine
    return create_engine(
        url,
        echo=echo,
        insertmanyvalues_page_size=INSERT_PAGE_ROWS,
        connect_args={
            "connect_timeout": connect_timeout,
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
        pool_timeout=10,
    )


def _sqlite_pragmas(engine: Engine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE so writers queue instead of failing late.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits the
    BEGIN itself (the recipe from SQLAlchemy's SQLite documentation).
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)
