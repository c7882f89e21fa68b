"""The database briefly unreachable (DESIGN.md, "Reliability"): the API answers 503 problems
and writes nothing, the console shows a page in Chinese, `/healthz` says so, the worker skips
its ticks; and all of them recover without a restart once the database is back. No call
waits on a database that does not answer longer than a bound, and none gets a 500.

PostgreSQL only: the app reaches it through a loopback TCP proxy that the test cuts (every
open connection dropped, new ones refused) and restores."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, literal_column, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

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
REPORT = "/api/v1/reports/rates"
T = TypeVar("T")


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
    token, _, _ = login(rt=rt, username="clerk", password="correct-horse-42", address=None)
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
        # a report's snapshot (REPEATABLE READ, READ ONLY) asks for its connection first
        report = client.get(REPORT, headers=world.h("supervisor"))
        assert report.status_code == 503, report.text
        assert report.headers["content-type"].startswith("application/problem+json")
        assert client.get("/healthz").status_code == 503
        page = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "数据库" in page.text and page.headers["retry-after"] == "5"
        clock.set(T0 + timedelta(days=2))  # the first request's sign deadline falls due
        assert worker.tick() == 0  # logged, not raised: the scheduler keeps ticking
        assert "tick failed" in caplog.text

        proxy.restore()
        assert client.get(API, headers=h).status_code == 200
        assert client.get(REPORT, headers=world.h("supervisor")).status_code == 200
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


@pytest.fixture
def tight(rt: Runtime, proxy: TcpProxy, clock: FrozenClock) -> Iterator[Runtime]:
    """As `cut_off`, with a pool of 2 + 2 connections that a call waits 0.5 s for, and a
    statement bound of 1 s."""
    url = make_url(rt.settings.database_url).set(host="127.0.0.1", port=proxy.port)
    text = url.render_as_string(hide_password=False)
    database = {
        "url": text,
        "connect_timeout": 2,
        "pool_size": 2,
        "pool_timeout": 0.5,
        "statement_timeout": 1,
    }
    runtime = build_runtime(make_settings(text, database=database), clock=clock)
    yield runtime
    runtime.close()


def test_concurrent_calls_while_the_database_does_not_answer_get_503_never_500(
    rt: Runtime,
    world: World,
    proxy: TcpProxy,
    tight: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every new connection waits its connect_timeout (2 s) on the black hole; the calls
    queued behind the pool's 4 connections give up after 0.5 s. Both are 503s."""
    caplog.set_level(logging.WARNING)
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        h = world.h("integration")
        assert client.get(API, headers=h).status_code == 200
        proxy.black_hole()
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda _: client.get(API, headers=h), range(16)))
        assert [r.status_code for r in answers] == [503] * 16, [r.text for r in answers]
        assert all(r.headers["retry-after"] == "5" for r in answers)
        assert "database pool:" in caplog.text  # some waited for the pool, not the server
        proxy.restore()
        assert client.get(API, headers=h).status_code == 200


def answered_within(seconds: float, proxy: TcpProxy, call: Callable[[], T]) -> T:
    """`call()`'s result, or its exception, if it comes within `seconds`; else an
    AssertionError. The proxy is restored in any case, so that a call still waiting ends."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except FutureTimeout:
        raise AssertionError(f"no answer within {seconds} s") from None
    finally:
        proxy.restore()
        pool.shutdown(wait=True)


def test_a_database_that_stops_answering_is_a_503_not_a_hang(
    rt: Runtime, world: World, proxy: TcpProxy, tight: Runtime
) -> None:
    """The server hangs with its connections open (the proxy holds every byte): no
    statement_timeout fires and the kernel acknowledges everything. The pool's pre-ping
    gives up after connect_timeout (2 s), the new connection after 2 s more: a 503."""
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        h = world.h("integration")
        assert client.get(API, headers=h).status_code == 200  # a pooled connection exists
        proxy.pause()
        answer = answered_within(30, proxy, lambda: client.get(API, headers=h))
        assert answer.status_code == 503, answer.text
        assert client.get(API, headers=h).status_code == 200


def test_a_statement_whose_answer_never_comes_fails_as_a_lost_connection(
    rt: Runtime, proxy: TcpProxy, tight: Runtime
) -> None:
    """Mid-transaction: the statement bound (1 s) plus connect_timeout (2 s), then the
    connection is hung up and invalidated (what the API answers 503)."""

    def stalled_transaction() -> None:
        with tight.transaction() as s:
            s.execute(select(literal_column("1")))
            proxy.pause()
            s.execute(select(literal_column("2")))

    with pytest.raises(DBAPIError, match="did not answer within 3 s") as caught:
        answered_within(30, proxy, stalled_transaction)
    assert caught.value.connection_invalidated
    with tight.transaction() as s:
        assert s.scalar(select(1)) == 1


def _socket_fails_at_the_first_wait(gen: Any, *_args: Any, **_kwargs: Any) -> Any:
    """psycopg's `Connection.wait` when the socket fails under it: the generator has sent
    its query (libpq is mid-query, ACTIVE), and the poll sees the socket's error before
    libpq reads anything, so psycopg raises without marking the connection broken. A
    command that needs no round trip (setting autocommit on an idle connection) passes."""
    try:
        next(gen)
    except StopIteration as done:
        return done.value
    raise psycopg.OperationalError("connection socket closed")


def test_a_pooled_connection_whose_socket_fails_under_the_pre_ping_is_replaced(
    rt: Runtime, world: World, tight: Runtime
) -> None:
    """The race the concurrent test above met once in CI: the proxy's reset reached the
    pre-ping's poll before libpq. The connection is dropped and a new one made, where the
    pre-ping used to fail as "can't change 'autocommit' now" and the call as a 500."""
    with TestClient(create_app(tight), raise_server_exceptions=False) as client:
        h = world.h("integration")
        with tight.db.connect() as conn:
            pooled = conn.connection.dbapi_connection
        assert isinstance(pooled, psycopg.Connection)
        pooled.wait = _socket_fails_at_the_first_wait
        answer = client.get(API, headers=h)
        assert answer.status_code == 200, answer.text
        assert pooled.closed
        assert client.get(API, headers=h).status_code == 200


def test_a_statement_whose_socket_fails_mid_transaction_is_a_lost_connection(
    tight: Runtime,
) -> None:
    """The same failure under a statement: SQLAlchemy takes it for a disconnect and
    invalidates the connection (what the API answers 503), and the next transaction gets
    a new one."""
    with (
        pytest.raises(DBAPIError, match="connection socket closed") as caught,
        tight.transaction() as s,
    ):
        s.execute(select(literal_column("1")))
        raw = s.connection().connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        raw.wait = _socket_fails_at_the_first_wait
        s.execute(select(literal_column("2")))
    assert caught.value.connection_invalidated
    with tight.transaction() as s:
        assert s.scalar(select(1)) == 1
