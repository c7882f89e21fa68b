"""The gate in front of the JSON API: the console's cookie never authorises an unsafe method,
bodies are capped, credentials and roles are checked before a body is read, 405 and OPTIONS
name every method of a path, and a pool that hands out no connection is a 503."""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import anyio
import fastapi.dependencies.utils
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from huying import errors
from huying.alerts.router import router as alerts_router
from huying.api.deps import IfMatch, Rt, if_match, provide_runtime
from huying.api.problems import answer
from huying.app import create_app
from huying.auth.deps import Auth, bearer, credentials, token_of
from huying.auth.gate import GatedRoute, Roles, allow, rule_of
from huying.auth.service import create_user
from huying.directory.router import router as directory_router
from huying.reports.router import router as reports_router
from huying.requests.router import router as requests_router
from huying.runtime import Runtime, build_runtime
from huying.web.session import SESSION_COOKIE
from tests.api.conftest import API
from tests.api.support import PROBLEM, assert_problem, nothing_written
from tests.conftest import World, make_settings, submit_body

PASSWORD = "correct-horse-42"
RULES = "/api/v1/routing-rules"


# --- driving the app by hand: what the server read of a body ---------------------------


class Sent:
    """One call through the ASGI interface, counting the body chunks the app asked for."""

    def __init__(self, app: FastAPI, chunks: list[bytes]) -> None:
        self.app = app
        self.chunks = chunks
        self.read = 0  # chunks handed to the app
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    async def _receive(self) -> dict[str, Any]:
        if self.read < len(self.chunks):
            self.read += 1
            more = self.read < len(self.chunks)
            return {"type": "http.request", "body": self.chunks[self.read - 1], "more_body": more}
        return {"type": "http.disconnect"}

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def __call__(self, method: str, path: str, headers: dict[str, str]) -> Sent:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        anyio.run(self.app, scope, self._receive, self._send)
        return self


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.fixture
def small(migrated: str, rt: Runtime) -> Iterator[FastAPI]:
    """The app with the least body limit the settings allow, 1024 bytes (on `rt`'s database)."""
    runtime = build_runtime(make_settings(migrated, server={"max_body": 1024}), clock=rt.clock)
    yield create_app(runtime)
    runtime.close()


def rule_body(size: int) -> bytes:
    """A routing rule whose JSON is exactly `size` bytes long (padded with spaces)."""
    text = '{"department": "GXJ", "chain": "display"}'
    return text.encode() + b" " * (size - len(text))


# --- 1. the console's cookie authorises no unsafe method under /api/ -------------------


@pytest.fixture
def supervisor_token(client: TestClient, rt: Runtime, world: World) -> str:
    with rt.transaction() as s:
        create_user(
            session=s,
            username="lao.zhou",
            password=PASSWORD,
            role="supervisor",
            department=None,
            now=rt.now(),
        )
    r = client.post("/api/v1/auth/login", json={"username": "lao.zhou", "password": PASSWORD})
    assert r.status_code == 200, r.text
    token: str = r.json()["token"]
    return token


def test_a_page_of_another_site_cannot_supervise_with_the_cookie(
    client: TestClient, rt: Runtime, dispatched: Any, supervisor_token: str
) -> None:
    """What a cross-site form does: the browser sends the cookie and an empty form body."""
    client.cookies.set(SESSION_COOKIE, supervisor_token)
    with nothing_written(rt):
        r = client.post(
            f"{API}/{dispatched['id']}/actions/supervise",
            content=b"",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert_problem(r, 401, "cookie", "Authorization: Bearer")
        r = client.post("/api/v1/auth/logout")  # nor log the user out, outside the gate too
        assert_problem(r, 401, "cookie")
    assert client.get("/api/v1/auth/me").json()["role"] == "supervisor"  # GET still may


def test_the_same_call_with_the_token_as_bearer_works(
    client: TestClient, dispatched: Any, supervisor_token: str
) -> None:
    client.cookies.set(SESSION_COOKIE, "hys_whatever-the-cookie-says")
    r = client.post(
        f"{API}/{dispatched['id']}/actions/supervise",
        headers={"Authorization": f"Bearer {supervisor_token}"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_may_use_the_cookie(method: str) -> None:
    from starlette.requests import Request

    headers = [(b"cookie", f"{SESSION_COOKIE}=hys_abc".encode())]
    request = Request({"type": "http", "method": method, "headers": headers, "path": "/"})
    assert token_of(request) == "hys_abc"


# --- 2. bodies are capped at server.max_body ---------------------------------------------


def test_a_declared_length_past_the_limit_is_413_before_a_byte_is_read(
    small: FastAPI, world: World
) -> None:
    body = rule_body(2048)
    headers = world.h("admin", **{"Content-Type": "application/json"})
    sent = Sent(small, chunked(body, 256))("POST", RULES, {**headers, "Content-Length": "2048"})
    assert sent.status == 413 and sent.headers["content-type"].startswith(PROBLEM)
    assert sent.read == 0
    assert b"1024 bytes" in sent.body


def test_a_chunked_body_is_read_until_it_passes_the_limit_then_413(
    small: FastAPI, world: World
) -> None:
    headers = world.h("admin", **{"Content-Type": "application/json"})
    sent = Sent(small, chunked(rule_body(4096), 512))("POST", RULES, headers)
    assert sent.status == 413 and sent.headers["content-type"].startswith(PROBLEM)
    assert sent.read == 3  # 512, 1024, then 1536 > 1024: the other five chunks stay unread


def test_a_body_of_exactly_the_limit_is_taken(small: FastAPI, world: World) -> None:
    headers = world.h("admin", **{"Content-Type": "application/json"})
    sent = Sent(small, chunked(rule_body(1024), 300))("POST", RULES, headers)
    assert sent.status == 201, sent.body


def test_the_console_forms_are_capped_too(small: FastAPI) -> None:
    with TestClient(small) as web:
        r = web.post("/login", data={"username": "gxj", "password": "x" * 2000})
    assert_problem(r, 413, "1024 bytes")


def test_the_default_limit_is_one_megabyte(client: TestClient, world: World) -> None:
    body = submit_body(description="长" * 350_000)  # 3 bytes each in UTF-8: past 1 MiB
    r = client.post(API, json=body, headers=world.h("integration"))
    assert_problem(r, 413, "1048576 bytes")


# --- 3. 401 and 403 before the body is read ---------------------------------------------


def test_a_wrong_role_gets_403_not_the_fields_of_a_422(client: TestClient, world: World) -> None:
    r = client.post(RULES, json={"x": 1}, headers=world.h("gxj"))
    assert_problem(r, 403, "role 'department'", "admin")
    assert "errors" not in r.json()
    r = client.post(API, json={"title": 5}, headers=world.h("supervisor"))
    assert_problem(r, 403, "may not submit")


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param(None, 401, id="no-credentials"),
        pytest.param("hyk_not-a-key", 401, id="unknown-key"),
        pytest.param("gxj", 403, id="wrong-role"),
    ],
)
def test_a_refused_caller_s_body_is_not_read(
    client: TestClient, world: World, who: str | None, status: int
) -> None:
    headers = {"Content-Type": "application/json"}
    if who is not None:
        headers["Authorization"] = f"Bearer {world.tokens.get(who, who)}"
    chunks = chunked(rule_body(4000), 100)
    sent = Sent(client.app, chunks)("POST", RULES, headers)  # type: ignore[arg-type]
    assert sent.status == status, sent.body
    assert sent.read == 0


def test_a_nul_from_a_bad_token_is_a_401_not_a_422(client: TestClient) -> None:
    r = client.post(RULES, json={"department": "a\x00b"}, headers={"Authorization": "Bearer x"})
    assert_problem(r, 401)


@contextmanager
def key_lookups(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM api_keys" in statement:
            seen.append(statement)

    event.listen(rt.db, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(rt.db, "before_cursor_execute", count)


def test_the_handler_reuses_the_principal_the_gate_resolved(
    client: TestClient, rt: Runtime, world: World, dispatched: Any
) -> None:
    with key_lookups(rt) as seen:
        r = client.post(f"{API}/{dispatched['id']}/actions/sign", headers=world.h("gxj"))
    assert r.status_code == 200, r.text
    assert len(seen) == 1


def test_dependencies_that_only_declare_are_not_called_per_request(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`allow`'s roles, the bearer scheme and `known_query` are read when the route is built
    (the gate, the OpenAPI document, the route's wrapper), not solved by FastAPI per call."""
    called: list[str] = []

    async def roles(self: Roles) -> None:
        called.append("roles")

    async def scheme(self: Any, request: Request) -> None:
        called.append("bearer")

    monkeypatch.setattr(Roles, "__call__", roles)
    monkeypatch.setattr(type(bearer), "__call__", scheme)
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        r = client.post(API, json=submit_body(), headers=world.h("integration"))
        assert r.status_code == 201, r.text
        unknown = client.post(f"{API}?bogus=1", json=submit_body(), headers=world.h("integration"))
        assert_problem(unknown, 422, "bogus")
        assert client.get(API, headers=world.h("gxj")).status_code == 200
        schemes = client.get("/openapi.json").json()["paths"]["/api/v1/requests"]["post"]
    assert called == []
    assert schemes["security"] == [{"HTTPBearer": []}]


def test_the_gate_hands_the_handler_its_runtime_and_credentials(
    rt: Runtime, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Rt` and `Auth` reach a route's handler from the request, not through FastAPI's
    solving of dependencies; an endpoint that takes the `Request` too still gets it."""
    solved: list[Any] = []
    real = fastapi.dependencies.utils.solve_dependencies

    async def spy(*, dependant: Any, **kwargs: Any) -> Any:
        solved.extend(sub.call for sub in dependant.dependencies)
        return await real(dependant=dependant, **kwargs)

    monkeypatch.setattr("fastapi.routing.solve_dependencies", spy)  # as the handler calls it
    router = APIRouter(route_class=GatedRoute)
    seen: dict[str, Any] = {}

    @router.get("/probe", dependencies=[allow("admin")])
    def probe(request: Request, rt_: Rt, auth: Auth, version: IfMatch) -> dict[str, str]:
        with rt_.transaction() as s:
            who = auth.principal(s, rt_)
        seen.update(request=request, rt=rt_, who=who.role, version=version)
        return {"ok": "yes"}

    app = create_app(rt)
    app.include_router(router, prefix="/api/v1")
    with TestClient(app) as client:
        probed = client.get("/api/v1/probe", headers={**world.h("admin"), "If-Match": '"7"'})
        assert probed.json() == {"ok": "yes"}
        assert client.post(API, json=submit_body(), headers=world.h("integration")).is_success
        assert_problem(client.get("/api/v1/probe", headers=world.h("gxj")), 403, "admin")
    assert seen["rt"] is rt and isinstance(seen["request"], Request)
    assert seen["who"] == "admin" and seen["version"] == 7
    assert if_match in solved  # (FastAPI solves what the gate does not hand over)
    assert provide_runtime not in solved and credentials not in solved


def test_a_blocking_handler_runs_on_the_apis_own_pool_in_the_callers_context(
    rt: Runtime, world: World
) -> None:
    """A plain `def` endpoint runs on `huying.api.threads`' pool, not anyio's, with the
    context variables of the call (as anyio would copy them)."""
    marker: ContextVar[str] = ContextVar("marker", default="unset")
    router = APIRouter(route_class=GatedRoute)

    @router.get("/where", dependencies=[allow("admin")])
    def where() -> dict[str, str]:
        return {"thread": threading.current_thread().name, "marker": marker.get()}

    app = create_app(rt)
    app.include_router(router, prefix="/api/v1")

    @app.middleware("http")
    async def mark(request: Request, call_next: Any) -> Any:
        marker.set("from the loop")
        return await call_next(request)

    with TestClient(app) as client:
        got = client.get("/api/v1/where", headers=world.h("admin")).json()
    assert got["thread"].startswith("huying-api")
    assert got["marker"] == "from the loop"


def test_login_stays_public(client: TestClient) -> None:
    r = client.post("/api/v1/auth/login", json={"username": "nobody"})
    assert_problem(r, 422, "password")


@pytest.mark.parametrize(
    "router", [requests_router, directory_router, alerts_router, reports_router]
)
def test_every_route_of_the_api_routers_is_gated(router: Any) -> None:
    for route in router.routes:
        assert isinstance(route, GatedRoute), route.path
        assert rule_of(route.dependant) is not None, f"{route.path}: public by mistake?"


# --- 4. 405 and OPTIONS name every method of the path ------------------------------------


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        (API, "GET, POST, OPTIONS"),
        (f"{API}/1", "GET, OPTIONS"),
        ("/api/v1/departments", "GET, POST, OPTIONS"),
        ("/api/v1/webhooks/1", "PATCH, DELETE, OPTIONS"),
        ("/login", "GET, POST, OPTIONS"),
    ],
)
def test_options_answers_every_method_of_the_path(
    client: TestClient, path: str, allow: str
) -> None:
    r = client.options(path)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["allow"] == allow


def test_405_names_every_method_of_the_path(client: TestClient, world: World) -> None:
    r = client.delete(API, headers=world.h("admin"))
    assert_problem(r, 405, "DELETE", "GET, POST")
    assert r.headers["allow"] == "GET, POST, OPTIONS"
    r = client.put("/api/v1/webhooks/1", headers=world.h("admin"))
    assert r.headers["allow"] == "PATCH, DELETE, OPTIONS"


def test_options_on_no_path_is_404(client: TestClient) -> None:
    assert_problem(client.options("/api/v1/nowhere"), 404)


# --- 5. a pool that hands out no connection is a 503 like a database that is away ----------


@pytest.fixture
def no_connection(rt: Runtime) -> Iterator[None]:
    @contextmanager
    def transaction() -> Iterator[Session]:
        raise errors.Unavailable("no database connection was free within 5 seconds")
        yield  # pragma: no cover

    rt.transaction = transaction  # type: ignore[method-assign]
    yield
    del rt.transaction


def test_an_unavailable_pool_is_a_503_problem_for_the_api(
    client: TestClient, world: World, no_connection: None
) -> None:
    r = client.get(API, headers=world.h("admin"))
    assert_problem(r, 503, "no database connection")
    assert r.headers["retry-after"] == "5"


def test_an_unavailable_pool_is_the_chinese_page_for_the_console(
    client: TestClient, no_connection: None
) -> None:
    client.cookies.set(SESSION_COOKIE, "hys_someone")
    page = client.get("/inbox", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "数据库暂时无法连接" in page.text and page.headers["retry-after"] == "5"


def test_too_many_requests_keeps_its_retry_after() -> None:
    r = answer(errors.TooManyRequests("slow down", retry_after=42))
    assert r.status_code == 429 and r.headers["retry-after"] == "42"
    assert answer(errors.TooLarge("big")).status_code == 413
