"""The 503 answer while the database is away: a problem document for API clients, a page in
Chinese for the console's browsers (tests/test_outage.py cuts a real database off)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from huying.api.problems import _unavailable
from huying.web.routes import unavailable_page


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


def unavailable(request: Request, detail: str) -> Response:
    """The 503 of an app that serves the console, as `huying.app` installs it."""
    return _unavailable(request, detail, unavailable_page)


def test_api_clients_get_a_problem_document() -> None:
    r = unavailable(request("GET", "/api/v1/requests", "text/html"), "the database is away")
    assert r.status_code == 503 and r.media_type == "application/problem+json"
    assert r.headers["retry-after"] == "5"
    r = unavailable(request("GET", "/inbox", "application/json"), "the database is away")
    assert r.media_type == "application/problem+json"


def test_a_page_reloads_itself_and_a_posted_form_is_not_sent_again() -> None:
    page = unavailable(request("GET", "/inbox", "text/html,*/*"), "away")
    body = bytes(page.body).decode()
    assert page.status_code == 503 and page.media_type == "text/html"
    assert 'http-equiv="refresh"' in body and "数据库暂时无法连接" in body
    posted = unavailable(request("POST", "/requests/7/actions/sign", "text/html"), "away")
    body = bytes(posted.body).decode()
    assert posted.status_code == 503 and "refresh" not in body and "没有保存" in body
