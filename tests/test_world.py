"""The tests' `world` fixture: after the first test of a database it is restored from the rows
the loader wrote (tests/conftest.py `_Snapshot`), and must be the same world."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.directory.models import Department
from huying.runtime import Runtime
from tests.conftest import World, _Snapshot, empty_tables


def test_a_restored_world_is_the_loaded_one_ids_sequences_and_keys_included(
    rt: Runtime, client: TestClient
) -> None:
    loaded = World(rt)
    taken = _Snapshot.take(rt, loaded.tokens)
    assert {"departments", "api_keys", "audit_entries", "cache_generations"} <= set(taken.rows)
    empty_tables(rt)

    world = taken.restore(rt)
    again = _Snapshot.take(rt, world.tokens)
    assert again.rows == taken.rows
    assert again.sequences == taken.sequences  # {} on SQLite: ids are the largest plus one

    # every key authenticates with its role, through the caches' generations as restored
    for who, role in (("admin", "admin"), ("integration", "integration"), ("gxj", "department")):
        r = client.get("/api/v1/auth/me", headers=world.h(who))
        assert r.status_code == 200, r.text
        assert r.json()["role"] == role
    # the next row gets the next id (PostgreSQL: the sequences were moved on)
    with rt.transaction() as s:
        top = s.scalar(select(func.max(Department.id)))
        assert top is not None
        s.add(Department(code="NEW", name="新部门", created_at=rt.now()))
        s.flush()
        assert s.scalar(select(Department.id).where(Department.code == "NEW")) == top + 1
