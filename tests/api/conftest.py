"""Fixtures for the API tests: the conftest world, plus requests in known states."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, submit_body

API = "/api/v1/requests"


def submit(client: TestClient, world: World, who: str = "integration", **overrides: Any) -> Any:
    r = client.post(API, json=submit_body(**overrides), headers=world.h(who))
    assert r.status_code == 201, r.text
    return r.json()


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> Any:
    r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def dispatched(client: TestClient, world: World) -> Any:
    """A POWER request: lead department GXJ, co-department STREET, state dispatched."""
    return submit(client, world)


@pytest.fixture
def in_progress(client: TestClient, world: World, dispatched: Any) -> Any:
    """The same request signed for by GXJ."""
    return act(client, world, "gxj", dispatched["id"], "sign")
