"""The schema is built only by the migrations: they match the models and go down cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from huying import migrate
from huying.db import Base, make_engine
from tests.conftest import _fresh_database


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
