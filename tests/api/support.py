"""Helpers shared by the API tests: row counts, emptying the database, problem checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from huying.db import Base
from huying.runtime import Runtime

PROBLEM = "application/problem+json"


def row_counts(runtime: Runtime) -> dict[str, int]:
    """The number of rows in every table, in one statement."""
    tables = Base.metadata.sorted_tables
    query = select(*(select(func.count()).select_from(t).scalar_subquery() for t in tables))
    with runtime.db.connect() as conn:
        row = conn.execute(query).one()
    return {t.name: int(n) for t, n in zip(tables, row, strict=True)}


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """A problem+json response with this status whose detail names every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert isinstance(body["title"], str) and body["title"], body
    detail = body["detail"]
    assert isinstance(detail, str) and detail.strip(), body
    for fragment in fragments:
        assert fragment.lower() in detail.lower(), f"{fragment!r} not in detail {detail!r}"
    return body


@contextmanager
def nothing_written(runtime: Runtime) -> Iterator[None]:
    """Assert that no table gains or loses a row inside the block."""
    before = row_counts(runtime)
    yield
    after = row_counts(runtime)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert not changed, f"rows written despite the error (before, after): {changed}"


def uscc_check_character(first17: str) -> str:
    """GB 32100-2015, written out again here so the tests do not trust the code under test."""
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    total = sum(alphabet.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return alphabet[(31 - total % 31) % 31]
