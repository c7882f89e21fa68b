"""The database briefly unreachable (DESIGN.md, "Reliability"): the API answers 503 problems
and writes nothing, the console shows a page in Chinese, `/healthz` says so, the worker skips
its ticks; and all of them recover without a restart once the database is back.

PostgreSQL only: the app reaches it through a loopback TCP proxy that the test cuts (every
open connection dropped, new ones refused) and restores."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from huying.app import create_app
from huying.auth.service import create_user, login
from huying.clock import FrozenClock
from huying.requests.models import Request
from huying.runtime import Runtime, build_runtime
from huying.worker import Worker
from tests.conftest import PG_URL, T0, World, make_settings, submit_body
from tests.tcpproxy import TcpProxy

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="needs PostgreSQL: set HUYING_TEST_DATABASE_URL (.ci/run does)"
)
API = "/api/v1/requests"


@pytest.fixture
def proxy(rt: Runtime) -> Iterator[TcpProxy]:
    url = rt.db.url
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as p:
        yield p


@pytest.fixture
def cut_off(rt: Runtime, proxy: TcpProxy, clock: FrozenClock) -> Iterator[Runtime]:
    """A second runtime on the same database, through the proxy."""
    url = make_url(rt.settings.database_url).set(host="127.0.0.1", port=proxy.port)
    settings = make_settings(
        url.render_as_string(hide_password=False),
        database={"url": url.render_as_string(hide_password=False), "connect_timeout": 2},
    )
    runtime = build_runtime(settings, clock=clock)
    yield runtime
    runtime.close()


def count(rt: Runtime) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(Request)) or 0)


def test_503_while_the_database_is_away_then_recovery_without_a_restart(
    rt: Runtime,
    world: World,
    proxy: TcpProxy,
    cut_off: Runtime,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    worker = Worker(cut_off, name="outage-test")
    with rt.transaction() as s:
        create_user(
            session=s,
            username="clerk",
            password="correct-horse-42",
            role="department",
            department="GXJ",
            now=rt.now(),
        )
        token, _, _ = login(
            session=s, username="clerk", password="correct-horse-42", now=rt.now(), hours=1
        )
    with TestClient(create_app(cut_off), raise_server_exceptions=False) as client:
        client.cookies.set("huying_session", token)
        assert client.get("/").status_code == 200  # redirected to the department's inbox
        h = world.h("integration")
        assert client.post(API, json=submit_body(), headers=h).status_code == 201
        assert client.get("/healthz").status_code == 200
        assert worker.tick() == 0

        proxy.cut()
        r = client.post(API, json=submit_body(title="停电期间提交"), headers=h)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["retry-after"] == "5"
        assert "database" in r.json()["detail"]
        assert client.get(API, headers=h).status_code == 503
        assert client.get("/healthz").status_code == 503
        page = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "数据库" in page.text and page.headers["retry-after"] == "5"
        clock.set(T0 + timedelta(days=2))  # the first request's sign deadline falls due
        assert worker.tick() == 0  # logged, not raised: the scheduler keeps ticking
        assert "tick failed" in caplog.text

        proxy.restore()
        assert client.get(API, headers=h).status_code == 200
        assert client.post(API, json=submit_body(), headers=h).status_code == 201
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
        assert worker.tick() >= 2  # what fell due meanwhile: warning, overdue, rung 1 …
    assert count(rt) == 2  # the submit refused during the outage wrote nothing
    with rt.transaction() as s:
        assert s.scalar(select(func.count()).where(Request.overdue.is_(True))) == 1


def test_a_database_that_does_not_answer_is_a_503_after_the_connect_timeout(
    rt: Runtime, world: World, proxy: TcpProxy, cut_off: Runtime
) -> None:
    """Packets dropped rather than refused: a request waits for `database.connect_timeout`
    (2 s here, libpq's least; it may try with and without TLS), not
    the operating system's minutes, then gets its 503."""
    with TestClient(create_app(cut_off), raise_server_exceptions=False) as client:
        h = world.h("integration")
        assert client.get(API, headers=h).status_code == 200
        proxy.black_hole()
        started = time.monotonic()
        assert client.get(API, headers=h).status_code == 503
        assert time.monotonic() - started < 15
        proxy.restore()
        assert client.get(API, headers=h).status_code == 200
