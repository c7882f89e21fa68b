"""Fixtures for the Open311 facade: the runtime with the test's `open311` settings, the
world's integration key, requests submitted through the facade, a live server for the
real Open311 client (georeport, which speaks HTTP through `requests`), and helpers that
move a request on through the JSON API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.app import create_app
from huying.clock import FrozenClock
from huying.requests import service as requests
from huying.runtime import Runtime, build_runtime
from tests.conftest import USCC_A, Specs, World, empty_tables, make_settings
from tests.web.live import serving

BASE = "/open311/v2"
API = "/api/v1/requests"


@pytest.fixture
def open311() -> dict[str, object]:
    """The test's `open311` settings: parametrize this name to change them."""
    return {}


@pytest.fixture
def rt(
    migrated: str, clock: FrozenClock, workflows: Specs, open311: dict[str, object]
) -> Iterator[Runtime]:
    """The runtime of tests/conftest.py with this test's `open311` settings."""
    runtime = build_runtime(
        make_settings(migrated, open311=open311), clock=clock, workflows=workflows
    )
    yield runtime
    empty_tables(runtime)
    runtime.close()


@pytest.fixture
def key(world: World) -> str:
    """The world's integration key: what Open311 calls `api_key`."""
    return world.tokens["integration"]


@pytest.fixture
def live(rt: Runtime) -> Iterator[str]:
    """The app served by uvicorn on loopback; yields the Open311 endpoint's URL."""
    with serving(create_app(rt)) as url:
        yield url + BASE


def form(key: str | None, **fields: str) -> dict[str, str]:
    """A POST requests form for the world's enterprise A, category POWER, by coordinates;
    `fields` add to it or replace its fields (an empty value leaves one out)."""
    data = {
        "service_code": "POWER",
        "attribute[enterprise_uscc]": USCC_A,
        "description": "新厂房用电增容\n二期厂房投产需要增容至 2000 kVA，请协调供电方案。",
        "lat": "23.1688",
        "long": "113.4512",
        "first_name": "三",
        "last_name": "张",
        "phone": "13800000000",
        "email": "zhangsan@example.com",
        "media_url": "https://grid.example.com/photos/1.jpg",
    }
    if key is not None:
        data["api_key"] = key
    data.update(fields)
    return {name: value for name, value in data.items() if value}


def post(client: TestClient, key: str, fmt: str = "json", **fields: str) -> str:
    """Submit through the facade; the new request's service_request_id (its number)."""
    r = client.post(f"{BASE}/requests.{fmt}", data=form(key, **fields))
    assert r.status_code == 200, r.text
    number: str = r.json()[0]["service_request_id"]
    return number


def request_id(rt: Runtime, number: str) -> int:
    """The request's id in the JSON API, from its number."""
    with rt.transaction() as s:
        found = requests.find_id(session=s, text=number)
    assert found is not None, number
    return found


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> None:
    r = client.post(f"{API}/{rid}/actions/{action}", json=body, headers=world.h(who))
    assert r.status_code == 200, r.text
