"""The console's search (the top bar's box, GET /search) and the finished states in the
lists' state filter: a request is found by its number, its enterprise's name or USCC, or
words of its title, whatever its state, and only within what the user's lists show.

Submitted Wednesday 2026-11-18 10:00 Shanghai: request n is HY-20261118-00000n."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from huying.auth.service import Principal
from huying.requests import service
from huying.runtime import Runtime
from huying.web import routes
from tests.conftest import USCC_B
from tests.web.conftest import act, login, submit

ROW = re.compile(r'<tr(?: class="[^"]*")? data-request="([^"]+)"')
SEARCH_BOX = '<form class="search" method="get" action="/search" role="search">'


def signed_in(web: TestClient, username: str) -> TestClient:
    assert login(web, username).status_code == 303
    return web


def numbers(html: str) -> list[str]:
    """The request numbers a list shows, in its order."""
    return ROW.findall(html)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def searched(web: TestClient, q: str, status: int = 200) -> str:
    response = web.get("/search", params={"q": q})
    assert response.status_code == status, response.text
    return str(response.text)


def number(n: int) -> str:
    return f"HY-20261118-{n:06d}"


@pytest.fixture
def finished(rt: Runtime, staff: dict[str, Principal]) -> dict[str, int]:
    """A request of each finished state beside one in progress: closed (GXJ led it),
    rejected and merged (both from the queue), and GXJ's own, signed."""
    gxj, dispatcher = staff["gxj"], staff["dispatcher"]
    closed = submit(rt, title="新厂房用电增容")
    act(rt, gxj, closed, "sign")
    act(rt, gxj, closed, "reply", content="已协调供电局增容", resolved=True)
    act(rt, dispatcher, closed, "rate", rating="satisfied")
    rejected = submit(rt, category="OTHER", title="咨询商标注册")
    act(rt, dispatcher, rejected, "reject", reason="属市场监管局事项")
    merged = submit(rt, category="OTHER", title="厂区道路积水", enterprise_uscc=USCC_B)
    act(rt, dispatcher, merged, "merge", target_id=closed)
    running = submit(rt, title="二期变压器安装")
    act(rt, gxj, running, "sign")
    return {"closed": closed, "rejected": rejected, "merged": merged, "running": running}


def test_every_signed_in_page_has_the_search_box(web: TestClient) -> None:
    assert SEARCH_BOX not in web.get("/login").text
    for username, home in (
        ("gxj", "/inbox"),
        ("dispatcher", "/queue"),
        ("supervisor", "/board"),
        ("admin", "/workflows"),
    ):
        signed_in(web, username)
        assert SEARCH_BOX in web.get(home).text, username
    assert 'value="用电 增容"' in web.get("/search?q=用电++增容").text  # kept in the box


def test_a_request_is_found_by_number_enterprise_uscc_and_title_words(
    web: TestClient, finished: dict[str, int]
) -> None:
    signed_in(web, "dispatcher")
    assert numbers(searched(web, number(3))) == [number(3)]
    assert numbers(searched(web, "hy-20261118-00000")) == [number(n) for n in (4, 3, 2, 1)]
    assert numbers(searched(web, "乐金显示")) == [number(3)]  # the enterprise's name
    assert numbers(searched(web, USCC_B[:8])) == [number(3)]  # the start of its USCC
    assert numbers(searched(web, "示例科技 变压器")) == [number(4)]  # name and title words
    page = searched(web, "用电 增容")
    assert numbers(page) == [number(1)]
    assert "新厂房用电增容" in page and "北京示例科技有限公司" in page
    assert "没有找到与“停水”相符的诉求" in text_of(searched(web, "停水"))


def test_closed_rejected_and_merged_requests_are_found_with_their_state(
    web: TestClient, finished: dict[str, int]
) -> None:
    signed_in(web, "dispatcher")
    page = text_of(searched(web, "HY-2026"))
    for title, state in (
        ("新厂房用电增容", "已办结"),
        ("咨询商标注册", "不予受理"),
        ("厂区道路积水", "已合并"),
        ("二期变压器安装", "办理中"),
    ):
        assert f"{title} " in page and f" {state} " in page, (title, state)
    assert "4" in re.findall(r'class="count"[^>]*>(\d+)<', searched(web, "HY-2026"))


def test_a_department_finds_only_what_its_subtree_handles(
    web: TestClient, finished: dict[str, int]
) -> None:
    signed_in(web, "gxj")
    assert numbers(searched(web, "HY-2026")) == [number(4), number(1)]
    assert "范围：区工信局及其下属单位" in text_of(searched(web, "用电"))
    signed_in(web, "rsj")  # another department: nothing of GXJ's, not even by its number
    assert numbers(searched(web, number(1))) == []
    assert numbers(searched(web, "用电")) == []
    assert numbers(searched(web, "HY-2026")) == []


def test_an_empty_or_too_long_search_is_explained_in_chinese(
    web: TestClient, finished: dict[str, int]
) -> None:
    signed_in(web, "dispatcher")
    page = text_of(searched(web, "   "))
    assert "搜索框中输入诉求编号" in page and numbers(page) == []
    too_many = " ".join(["用电"] * (service.SEARCH_MAX_WORDS + 1))
    assert "搜索内容过长" in text_of(searched(web, too_many, 422))
    assert "搜索内容过长" in text_of(searched(web, "长" * 101, 422))
    response = web.get("/search", params={"q": "用电", "after": "not-a-cursor"})
    assert response.status_code == 422 and "翻页链接无效" in response.text


def test_results_page_on_newest_first(
    web: TestClient, finished: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes, "SEARCH_PAGE", 3)
    signed_in(web, "supervisor")
    first = searched(web, "HY")
    assert numbers(first) == [number(4), number(3), number(2)]
    link = re.search(r'<a href="([^"]+)" rel="next">', first)
    assert link is not None
    second = web.get(link.group(1).replace("&amp;", "&")).text
    assert numbers(second) == [number(1)]
    assert 'rel="next"' not in second


def test_a_visitor_without_a_session_is_sent_to_sign_in(web: TestClient) -> None:
    response = web.get("/search?q=HY", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# --- the lists' state filter: the finished states too ---------------------------------------


def test_the_inbox_lists_finished_requests_when_asked_within_its_scope(
    web: TestClient, finished: dict[str, int]
) -> None:
    signed_in(web, "gxj")
    default = web.get("/inbox").text
    assert numbers(default) == [number(4)]
    assert 'data-count-for="inbox"' in default  # the default list updates the menu's badge
    for state, label in (("closed", "已办结"), ("rejected", "不予受理"), ("merged", "已合并")):
        assert f'<option value="{state}">{label}</option>' in default
    closed = web.get("/inbox?state=closed").text
    assert numbers(closed) == [number(1)]
    assert 'data-count-for=""' in closed  # a filtered list leaves the badge alone
    assert "最新提交的在前" in closed
    assert numbers(web.get("/inbox?state=all").text) == [number(4), number(1)]
    assert numbers(web.get("/inbox?state=rejected").text) == []  # the queue's, not GXJ's

    signed_in(web, "supervisor")
    assert numbers(web.get("/inbox?state=rejected").text) == [number(2)]
    assert numbers(web.get("/inbox?state=merged").text) == [number(3)]
    assert numbers(web.get("/inbox?state=all").text) == [number(n) for n in (4, 3, 2, 1)]
    assert numbers(web.get("/inbox?state=nonsense").text) == [number(4)]  # the default

    signed_in(web, "rsj")
    assert numbers(web.get("/inbox?state=closed").text) == []
