"""Helpers shared by the API tests: row counts, emptying the database, problem checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from huying.db import Base
from huying.runtime import Runtime

PROBLEM = "application/problem+json"


def empty_tables(runtime: Runtime) -> None:
    """Empty every table, as the `rt` fixture does after each test."""
    tables = [t.name for t in Base.metadata.sorted_tables]
    if runtime.db.dialect.name == "postgresql":
        with runtime.db.begin() as conn:
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        return
    raw = runtime.db.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA foreign_keys=OFF")
        for name in reversed(tables):
            cur.execute(f'DELETE FROM "{name}"')
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        raw.close()


def row_counts(runtime: Runtime) -> dict[str, int]:
    """The number of rows in every table."""
    with runtime.db.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in Base.metadata.sorted_tables
        }


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """A problem+json response with this status whose detail names every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status, body
    assert isinstance(body["title"], str) and body["title"], body
    detail = body["detail"]
    assert isinstance(detail, str) and detail.strip(), body
    for fragment in fragments:
        assert fragment.lower() in detail.lower(), f"{fragment!r} not in detail {detail!r}"
    return body
