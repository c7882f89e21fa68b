"""Fixtures for the console: the app with the console mounted, staff users with passwords,
and requests put into known states through the same services the console calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.staticfiles import StaticFiles

from huying.app import create_app
from huying.auth.models import User
from huying.auth.service import Principal
from huying.requests import service
from huying.requests.schemas import SubmitIn
from huying.runtime import Runtime
from huying.web.routes import STATIC_DIR
from huying.web.routes import router as web_router
from tests.conftest import World, submit_body

PASSWORD = "correct-horse-42"
# username, role, department, display name
STAFF = (
    ("gxj", "department", "GXJ", "工信局王办事员"),
    ("rsj", "department", "RSJ", "人社局李办事员"),
    ("street", "department", "STREET", "街道赵办事员"),
    ("dispatcher", "dispatcher", None, "派单员小陈"),
    ("supervisor", "supervisor", None, "督办员老周"),
    ("admin", "admin", None, "系统管理员老吴"),
)
GRID = Principal("key:grid", "integration", None, "网格系统")


def console_app(rt: Runtime) -> FastAPI:
    """The app as `create_app` builds it, with the console wired in as the README says."""
    app = create_app(rt)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD hashed once (argon2id is slow on purpose): the staff rows share it."""
    return PasswordHasher().hash(PASSWORD)


@pytest.fixture
def staff(rt: Runtime, world: World, password_hash: str) -> dict[str, Principal]:
    people = {}
    with rt.transaction() as s:
        for username, role, dept, display in STAFF:
            s.add(
                User(
                    username=username,
                    display_name=display,
                    password_hash=password_hash,
                    role=role,
                    department_code=dept,
                    active=True,
                    created_at=rt.now(),
                )
            )
            people[username] = Principal(f"user:{username}", role, dept, display)
    return people


@pytest.fixture
def web(rt: Runtime, staff: dict[str, Principal]) -> Iterator[TestClient]:
    with TestClient(console_app(rt), raise_server_exceptions=True) as c:
        yield c


def submit(rt: Runtime, **overrides: Any) -> int:
    """A request submitted by the grid system; POWER routes to GXJ, OTHER to the queue."""
    with rt.transaction() as s:
        req, _ = service.submit(
            rt=rt,
            session=s,
            principal=GRID,
            body=SubmitIn.model_validate(submit_body(**overrides)),
            idempotency_key=None,
        )
        return req.id


def act(rt: Runtime, who: Principal, request_id: int, action: str, **body: Any) -> None:
    with rt.transaction() as s:
        service.act(
            rt=rt,
            session=s,
            principal=who,
            request_id=request_id,
            action=action,
            body=body,
            if_match=None,
        )


def state_of(rt: Runtime, request_id: int) -> tuple[str, int]:
    from huying.requests.models import Request

    with rt.transaction() as s:
        req = s.get(Request, request_id)
        assert req is not None
        return req.state, req.escalation_level


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_in(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_in(page.text)},
        follow_redirects=False,
    )


# The browser tests' fixtures (tests/web/browsing.py), for every browser test module here.
from tests.web.browsing import browser, console, desktop  # noqa: E402, F401
