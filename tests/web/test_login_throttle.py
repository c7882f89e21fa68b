"""The console's login is throttled by the same rule as the API's, counted together: after five
failed logins it answers 429 in Chinese, even for the right password."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.web.session import SESSION_COOKIE
from tests.web.conftest import PASSWORD, login


def test_after_five_wrong_passwords_the_console_says_to_wait_in_minutes(
    web: TestClient, clock: FrozenClock
) -> None:
    for _ in range(5):
        assert login(web, "gxj", "not-the-password").status_code == 401
    clock.advance(timedelta(minutes=4, seconds=30))
    response = login(web, "gxj")  # the right password
    assert response.status_code == 429
    assert "尝试次数过多，请 11 分钟后再试" in response.text  # 10 min 30 s, rounded up
    assert response.headers["Retry-After"] == str(10 * 60 + 30)
    assert 'value="gxj"' in response.text
    assert SESSION_COOKIE not in web.cookies

    clock.advance(timedelta(minutes=10, seconds=30))
    assert login(web, "gxj").status_code == 303


def test_the_console_and_the_api_count_the_same_failures(web: TestClient) -> None:
    for _ in range(3):
        r = web.post("/api/v1/auth/login", json={"username": "gxj", "password": "wrong-one"})
        assert r.status_code == 401
    for _ in range(2):
        assert login(web, "gxj", "not-the-password").status_code == 401
    assert login(web, "gxj").status_code == 429
    r = web.post("/api/v1/auth/login", json={"username": "gxj", "password": PASSWORD})
    assert r.status_code == 429
