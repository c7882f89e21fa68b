"""Login throttling: after `auth.max_failures` (5) failed logins for a username or from an
address within `auth.failure_window` (15 minutes), logins are refused with 429 and
Retry-After, even with the right password and without checking it; the failures are rows in
the database, so every replica counts them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from huying.app import create_app
from huying.auth import service
from huying.auth.models import LoginFailure
from huying.auth.service import create_user
from huying.clock import FrozenClock
from huying.errors import NotAuthenticated, TooManyRequests
from huying.runtime import Runtime, build_runtime
from tests.api.support import assert_problem, nothing_written
from tests.conftest import T0, empty_tables, make_settings

PASSWORD = "川流不息-Chuan-2026"
LOGIN = "/api/v1/auth/login"
HOME = "198.51.100.7"  # the address the tests log in from unless they say otherwise


@pytest.fixture
def staff(rt: Runtime) -> str:
    with rt.transaction() as s:
        create_user(
            session=s,
            username="zhang.san",
            password=PASSWORD,
            role="dispatcher",
            department=None,
            now=rt.now(),
        )
    return "zhang.san"


@pytest.fixture
def connect(rt: Runtime) -> Iterator[Callable[[str], TestClient]]:
    """A client of the API connecting from a given address."""
    app = create_app(rt)
    clients: list[TestClient] = []

    def at(address: str) -> TestClient:
        client = TestClient(app, raise_server_exceptions=False, client=(address, 50000))
        clients.append(client)
        return client

    yield at
    for client in clients:
        client.close()


@pytest.fixture
def home(connect: Callable[[str], TestClient]) -> TestClient:
    return connect(HOME)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords checked against a hash, in order."""
    checked: list[str] = []
    original = service._password_matches

    def counting(password_hash: str, password: str) -> bool:
        checked.append(password)
        return original(password_hash, password)

    monkeypatch.setattr(service, "_password_matches", counting)
    return checked


def login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post(LOGIN, json={"username": username, "password": password})


def fail(client: TestClient, username: str, times: int = 1) -> None:
    for _ in range(times):
        assert_problem(login(client, username, "wrong password"), 401)


def failures(rt: Runtime) -> int:
    with rt.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(LoginFailure)) or 0)


def test_after_five_wrong_passwords_even_the_right_one_is_429_until_the_first_leaves(
    home: TestClient, rt: Runtime, clock: FrozenClock, staff: str, hashes: list[str]
) -> None:
    for minute in range(5):  # 10:00, 10:01 … 10:04
        clock.set(T0 + timedelta(minutes=minute))
        fail(home, staff)
    clock.set(T0 + timedelta(minutes=5))
    hashes.clear()
    with nothing_written(rt):
        r = login(home, staff)
        assert_problem(r, 429, "try again in 600 seconds")
    assert r.headers["Retry-After"] == "600"  # 10:00's failure leaves the window at 10:15
    assert "token" not in r.json()
    assert hashes == [], "a throttled attempt is not checked against the hash"

    clock.set(T0 + timedelta(minutes=15) - timedelta(seconds=1))
    assert login(home, staff).headers["Retry-After"] == "1"
    clock.set(T0 + timedelta(minutes=15))
    r = login(home, staff)
    assert r.status_code == 200, r.text
    assert r.json()["token"].startswith("hys_")


def test_retry_after_rounds_up_to_whole_seconds(
    home: TestClient, clock: FrozenClock, staff: str
) -> None:
    fail(home, staff, 5)
    clock.advance(timedelta(minutes=3, milliseconds=500))
    assert login(home, staff).headers["Retry-After"] == str(12 * 60)  # 11 min 59.5 s


def test_the_fifth_failure_is_still_checked_and_answered_401(
    home: TestClient, staff: str, hashes: list[str]
) -> None:
    fail(home, staff, 4)
    assert_problem(login(home, staff, "wrong again"), 401, "wrong username or password")
    assert hashes[-1] == "wrong again"
    assert_problem(login(home, staff), 429)


def test_one_address_trying_many_usernames_is_throttled(
    home: TestClient, connect: Callable[[str], TestClient], staff: str
) -> None:
    for name in ("li.si", "wang.wu", "zhao.liu", "admin", "root"):
        fail(home, name)
    assert_problem(login(home, staff), 429)  # a sixth username, with its right password
    r = login(connect("203.0.113.9"), staff)  # from elsewhere the user is not throttled
    assert r.status_code == 200, r.text


def test_one_username_tried_from_many_addresses_is_throttled(
    connect: Callable[[str], TestClient], staff: str
) -> None:
    for i in range(5):
        fail(connect(f"203.0.113.{i + 1}"), staff)
    assert_problem(login(connect("203.0.113.200"), staff), 429)


def test_unknown_usernames_count_like_known_ones(home: TestClient, rt: Runtime) -> None:
    fail(home, "nobody", 5)
    assert failures(rt) == 5
    assert_problem(login(home, "nobody"), 429)


def test_a_success_forgives_that_usernames_failures_from_that_address_only(
    home: TestClient, connect: Callable[[str], TestClient], rt: Runtime, staff: str
) -> None:
    fail(connect("203.0.113.9"), staff, 2)  # guesses from elsewhere
    fail(home, "li.si", 2)  # another username from the user's address
    fail(home, staff, 2)  # the user's own typos
    assert login(home, staff).status_code == 200
    assert failures(rt) == 4  # the typos (and the successful attempt) are gone

    # From here: the address has 2 failures left (li.si's), so 3 more are allowed; the
    # username has 2 (from elsewhere), so it reaches 5 at the same time.
    fail(home, "wang.wu", 3)
    assert_problem(login(home, "wang.wu"), 429)
    fail(connect("203.0.113.10"), staff, 3)
    assert_problem(login(connect("203.0.113.11"), staff), 429)


def test_retry_after_waits_for_both_the_username_and_the_address(
    home: TestClient, connect: Callable[[str], TestClient], clock: FrozenClock, staff: str
) -> None:
    for minute, name in enumerate(("a", "b", "c", "d", "e")):  # from home: 10:00 … 10:04
        clock.set(T0 + timedelta(minutes=minute))
        fail(home, name)
    for minute in range(2, 7):  # zhang.san from elsewhere: 10:02 … 10:06
        clock.set(T0 + timedelta(minutes=minute))
        fail(connect(f"203.0.113.{minute}"), staff)
    clock.set(T0 + timedelta(minutes=7))
    r = login(home, staff)
    assert_problem(r, 429)
    assert r.headers["Retry-After"] == str(10 * 60)  # the username's window: 10:02 + 15 min


def test_failures_older_than_the_window_are_pruned_by_the_next_attempt(
    home: TestClient, rt: Runtime, clock: FrozenClock, staff: str
) -> None:
    fail(home, "li.si", 3)
    clock.advance(timedelta(minutes=14))
    fail(home, "wang.wu")
    clock.advance(timedelta(minutes=1))  # li.si's three are 15 minutes old
    assert failures(rt) == 4
    fail(home, "zhao.liu")
    assert failures(rt) == 2


def test_the_limit_and_window_come_from_the_settings(migrated: str, clock: FrozenClock) -> None:
    settings = make_settings(migrated, auth={"max_failures": 2, "failure_window": "1 hour"})
    rt = build_runtime(settings, clock=clock)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as c:
            fail(c, "li.si", 2)
            clock.advance(timedelta(minutes=30))
            r = login(c, "li.si")
            assert_problem(r, 429)
            assert r.headers["Retry-After"] == str(30 * 60)
    finally:
        empty_tables(rt)
        rt.close()


# --- racing attempts: every replica sees the others' --------------------------------------


def test_an_attempt_racing_the_fifth_sees_it_and_is_refused_unchecked(
    rt: Runtime, staff: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fifth attempt is recorded before its hash is checked: a sixth that arrives in the
    meantime (on another replica) counts five and is refused without reaching the hash."""
    for _ in range(4):
        with pytest.raises(NotAuthenticated):
            service.login(rt=rt, username=staff, password="wrong", address=HOME)
    original = service._password_matches
    checked: list[str] = []
    raced: list[BaseException] = []

    def slow_check(password_hash: str, password: str) -> bool:
        checked.append(password)
        if len(checked) == 1:  # while the fifth is being checked, a sixth arrives
            with pytest.raises(TooManyRequests) as refused:
                service.login(rt=rt, username=staff, password=PASSWORD, address="203.0.113.5")
            raced.append(refused.value)
        return original(password_hash, password)

    monkeypatch.setattr(service, "_password_matches", slow_check)
    with pytest.raises(NotAuthenticated):
        service.login(rt=rt, username=staff, password="fifth guess", address=HOME)
    assert checked == ["fifth guess"], "the racing attempt never reached the hash"
    assert len(raced) == 1
    assert failures(rt) == 5  # the refused attempt left no row


def test_a_success_racing_a_failure_still_logs_in(
    rt: Runtime, staff: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the limit, attempts in flight do not refuse each other."""
    original = service._password_matches
    inner: list[str] = []

    def check(password_hash: str, password: str) -> bool:
        if password == "typo":  # while the typo is being checked, the right password arrives
            inner.append(service.login(rt=rt, username=staff, password=PASSWORD, address=HOME)[0])
        return original(password_hash, password)

    monkeypatch.setattr(service, "_password_matches", check)
    with pytest.raises(NotAuthenticated):
        service.login(rt=rt, username=staff, password="typo", address=HOME)
    assert inner[0].startswith("hys_")
    # the success forgave that username's failures from that address, the one in flight too
    assert failures(rt) == 0
