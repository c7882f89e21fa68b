"""Schema migrations, run in code: `huying migrate`, `huying serve`, and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from huying.calendar import BusinessCalendar
from huying.db import unbounded

# The Alembic scripts, shipped in the package (alembic.ini names the same folder).
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(
    engine: Engine, revision: str = "head", *, calendar: BusinessCalendar | None = None
) -> None:
    """Upgrade to `revision`. A migration that derives working time from stored rows uses
    `calendar`, or builds the one of the settings when none is given. A migration's
    statements may run for minutes on a large database: no statement bound applies."""
    cfg = alembic_config()
    with engine.begin() as conn:
        unbounded(conn)
        cfg.attributes["connection"] = conn
        if calendar is not None:
            cfg.attributes["calendar"] = calendar
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        unbounded(conn)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
