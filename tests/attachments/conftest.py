"""Fixtures for the attachment tests: a runtime whose `attachments` settings a test module
chooses (`attachment_settings`), the console's fixtures, and helpers to upload."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.runtime import Runtime, build_runtime
from tests.conftest import Specs, World, empty_tables, make_settings
from tests.web.conftest import password_hash, staff, web

__all__ = ["password_hash", "staff", "web"]  # the console's fixtures, for test_console

UPLOAD = "/api/v1/attachments"
REQUESTS = "/api/v1/requests"


@pytest.fixture
def attachment_settings() -> dict[str, Any]:
    """`attachments:` of the settings; a module overrides it (the storage, the limits)."""
    return {}


@pytest.fixture
def rt(
    migrated: str, clock: FrozenClock, workflows: Specs, attachment_settings: dict[str, Any]
) -> Iterator[Runtime]:
    runtime = build_runtime(
        make_settings(migrated, attachments=attachment_settings), clock=clock, workflows=workflows
    )
    yield runtime
    empty_tables(runtime)
    runtime.close()


def upload(
    client: TestClient,
    world: World,
    who: str,
    data: bytes,
    *,
    name: str = "整改照片.png",
    visibility: str | None = None,
) -> Any:
    """POST the file; the response."""
    fields = {"visibility": visibility} if visibility is not None else None
    return client.post(
        UPLOAD,
        files={"file": (name, data, "application/octet-stream")},
        data=fields,
        headers=world.h(who),
    )


def uploaded(client: TestClient, world: World, who: str, data: bytes, **kw: Any) -> Any:
    """Upload the file and return the answer's body, asserting a 201."""
    r = upload(client, world, who, data, **kw)
    assert r.status_code == 201, r.text
    return r.json()
