"""/docs works offline: the page names no other server, and this one serves every file it names."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from huying.api import docs

JAVASCRIPT = ("text/javascript", "application/javascript")


class _Links(HTMLParser):
    """The scripts, styles and icons a page loads, by the URL it names them with."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.icons: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        rel = (a.get("rel") or "").split()
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"] or "")
        elif tag == "link" and "stylesheet" in rel:
            self.styles.append(a.get("href") or "")
        elif tag == "link" and "icon" in rel:
            self.icons.append(a.get("href") or "")


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect"])
def test_docs_pages_name_no_other_server(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    absolute = re.findall(r"https?://[^\s\"'<>)]+", r.text)
    assert [u for u in absolute if urlsplit(u).netloc != "testserver"] == []
    links = _links(r.text)
    for url in links.scripts + links.styles + links.icons:
        # a path on this server: not absolute, not protocol-relative (//cdn...)
        assert url.startswith("/") and not url.startswith("//"), url


def test_docs_page_files_are_served_with_their_type(client: TestClient) -> None:
    links = _links(client.get("/docs").text)
    assert links.scripts and links.styles and links.icons
    for url in links.scripts:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith(JAVASCRIPT), url
        assert b"SwaggerUIBundle" in r.content
    for url in links.styles:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("text/css"), url
    for url in links.icons:
        r = client.get(url)
        assert r.status_code == 200, url
        assert r.headers["content-type"].startswith("image/"), url


def test_docs_page_loads_the_served_openapi(client: TestClient) -> None:
    spec = re.search(r"url: '([^']+)'", client.get("/docs").text)
    assert spec is not None
    r = client.get(spec.group(1))
    assert r.status_code == 200
    assert r.json()["info"]["title"] == "Huying 呼应"


def test_docs_page_keeps_the_path_prefix_of_a_proxy() -> None:
    app = FastAPI(docs_url=None)
    docs.install(app)
    with TestClient(app, root_path="/huying") as c:
        page = c.get("/docs").text
        links = _links(page)
        for url in [*links.scripts, *links.styles, *links.icons]:
            assert url.startswith("/huying/docs-static/"), url
            assert c.get(url).status_code == 200, url
        assert "url: '/huying/openapi.json'" in page


def test_install_refuses_an_app_that_serves_fastapis_own_page() -> None:
    with pytest.raises(ValueError, match="docs_url=None"):
        docs.install(FastAPI())
