"""The 503 answer while the database is away: a problem document for API clients, a page in
Chinese for the console's browsers (tests/test_outage.py cuts a real database off)."""

from __future__ import annotations

from starlette.requests import Request

from huying.api.problems import _unavailable


def request(method: str, path: str, accept: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": method,
            "path": path,
            "query_string": b"",
            "headers": [(b"accept", accept.encode())],
        }
    )


def test_api_clients_get_a_problem_document() -> None:
    r = _unavailable(request("GET", "/api/v1/requests", "text/html"), "the database is away")
    assert r.status_code == 503 and r.media_type == "application/problem+json"
    assert r.headers["retry-after"] == "5"
    r = _unavailable(request("GET", "/inbox", "application/json"), "the database is away")
    assert r.media_type == "application/problem+json"


def test_a_page_reloads_itself_and_a_posted_form_is_not_sent_again() -> None:
    page = _unavailable(request("GET", "/inbox", "text/html,*/*"), "away")
    body = bytes(page.body).decode()
    assert page.status_code == 503 and page.media_type == "text/html"
    assert 'http-equiv="refresh"' in body and "数据库暂时无法连接" in body
    posted = _unavailable(request("POST", "/requests/7/actions/sign", "text/html"), "away")
    body = bytes(posted.body).decode()
    assert posted.status_code == 503 and "refresh" not in body and "没有保存" in body
