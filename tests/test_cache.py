"""`huying.cache`: every way of writing a cached table moves its generation in the writer's
own transaction, and a cache is used only at the generation the transaction reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, text, update

from huying import cache
from huying.auth.models import StaffSession
from huying.directory.models import Chain, Department
from huying.runtime import Runtime, build_runtime
from tests.conftest import World, make_settings


def generations(rt: Runtime) -> dict[str, int | None]:
    with rt.db.connect() as conn:
        rows = conn.execute(select(cache.generations_table)).all()
    return {name: generation for name, generation in rows}


@pytest.fixture
def replica(migrated: str, rt: Runtime) -> Iterator[Runtime]:
    """Another process's runtime on the same database: its own engine, its own caches."""
    other = build_runtime(make_settings(migrated), clock=rt.clock)
    yield other
    other.close()


class Undone(Exception):
    """Rolls a test's transaction back."""


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda s: s.add(Chain(code="NEW", name="新链")), id="orm-insert"),
        pytest.param(
            lambda s: setattr(s.scalar(select(Department).limit(1)), "name", "改名"),
            id="orm-update",
        ),
        pytest.param(
            lambda s: s.execute(update(Department).values(leaders=[])), id="session-update"
        ),
        pytest.param(
            lambda s: s.execute(text("UPDATE departments SET name = name")), id="text-update"
        ),
    ],
)
def test_every_write_to_the_directory_moves_its_generation(
    rt: Runtime, world: World, write: object
) -> None:
    before = generations(rt)
    with rt.transaction() as s:
        write(s)  # type: ignore[operator]
        s.flush()
    after = generations(rt)
    assert after["directory"] != before["directory"]
    assert after["auth"] == before["auth"]


def test_a_logout_moves_the_credentials_generation(rt: Runtime, world: World) -> None:
    before = generations(rt)
    with rt.transaction() as s:
        s.execute(delete(StaffSession).where(StaffSession.id == -1))
    assert generations(rt)["auth"] != before["auth"]


def test_a_write_rolled_back_leaves_the_generation(rt: Runtime, world: World) -> None:
    before = generations(rt)
    with pytest.raises(Undone), rt.transaction() as s:
        s.add(Chain(code="NEW", name="新链"))
        s.flush()
        raise Undone
    assert generations(rt) == before


def test_reads_elsewhere_do_not_move_it(rt: Runtime, world: World) -> None:
    before = generations(rt)
    with rt.transaction() as s:
        s.scalars(select(Department)).all()
        s.execute(text("SELECT 1"))
    assert generations(rt) == before


def test_a_cache_is_used_only_at_the_generation_read(
    rt: Runtime, replica: Runtime, world: World
) -> None:
    with replica.transaction() as s:
        known = cache.entries(s, cache.DIRECTORY)
        assert known is not None
        known["mark"] = 1
    with replica.transaction() as s:
        assert cache.entries(s, cache.DIRECTORY) == {"mark": 1}
    with rt.transaction() as s:  # a write on another replica
        s.add(Chain(code="NEW", name="新链"))
    with replica.transaction() as s:
        assert cache.entries(s, cache.DIRECTORY) == {}


def test_a_transaction_that_wrote_bypasses_the_cache(rt: Runtime, world: World) -> None:
    with rt.transaction() as s:
        assert cache.entries(s, cache.DIRECTORY) is not None
        s.add(Chain(code="NEW", name="新链"))
        s.flush()
        assert cache.entries(s, cache.DIRECTORY) is None
        assert cache.entries(s, cache.AUTH) is None


def test_without_a_generation_row_nothing_is_cached(rt: Runtime, world: World) -> None:
    with rt.db.begin() as conn:  # as a database emptied by hand
        conn.execute(delete(cache.generations_table))
    with rt.transaction() as s:
        assert cache.entries(s, cache.DIRECTORY) is None
    with rt.transaction() as s:
        s.add(Chain(code="NEW", name="新链"))  # the next write makes the row again
    with rt.transaction() as s:
        assert cache.entries(s, cache.DIRECTORY) is not None


def test_loading_the_directory_moves_its_generation(rt: Runtime) -> None:
    before = generations(rt).get("directory")
    World(rt)  # `huying load`'s loader, and keys made by `create_key`
    after = generations(rt)
    assert after["directory"] is not None and after["directory"] != before
    assert after["auth"] is not None
