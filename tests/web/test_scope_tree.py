"""Scope follows the department tree in the console: a street clerk's inbox holds its
community's requests too, a sibling street sees nothing of them (the not-found page, for
actions as well), and a dispatcher or supervisor bound to the street sees only its subtree in
the queue, on the board and in the menu's badges."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from huying.auth.models import User
from huying.auth.service import Principal
from huying.runtime import Runtime
from tests.api.tree import Tree, act, plant
from tests.web.conftest import csrf_in, login

LINK = re.compile(r'<a href="/requests/(\d+)">')
# username, role, department: the tree's staff, beside tests/web/conftest.py's
TREE_STAFF = (
    ("luofeng", "department", "LUOFENG"),
    ("xiagang", "department", "XIAGANG"),
    ("street_supervisor", "supervisor", "STREET"),
    ("street_dispatcher", "dispatcher", "STREET"),
)
NOT_FOUND = "找不到该诉求，或您无权查看"


@pytest.fixture
def tree(rt: Runtime, staff: dict[str, Principal], password_hash: str) -> Tree:
    planted = plant(rt)
    with rt.transaction() as s:
        for username, role, department in TREE_STAFF:
            s.add(
                User(
                    username=username,
                    display_name=username,
                    password_hash=password_hash,
                    role=role,
                    department_code=department,
                    active=True,
                    created_at=rt.now(),
                )
            )
            staff[username] = Principal(f"user:{username}", role, department, username)
    return planted


def signed_in(web: TestClient, username: str) -> TestClient:
    response = login(web, username)
    assert response.status_code == 303, response.text
    return web


def links(html: str) -> set[int]:
    return {int(i) for i in LINK.findall(html)}


def badge(html: str, key: str) -> int:
    match = re.search(rf'data-badge="{key}">(\d+)<', html)
    assert match, f"no {key} badge on the page"
    return int(match.group(1))


def refused(web: TestClient, rid: int) -> None:
    """The request's page, its live fragment and its actions: the not-found page."""
    page = web.get(f"/requests/{rid}")
    assert page.status_code == 404 and NOT_FOUND in page.text
    assert web.get(f"/fragments/requests/{rid}").status_code == 404
    csrf = csrf_in(web.get("/workflows").text)
    response = web.post(
        f"/requests/{rid}/actions/urge", data={"csrf": csrf}, follow_redirects=False
    )
    assert response.status_code == 404 and NOT_FOUND in response.text


def test_a_street_clerk_s_inbox_holds_its_community_s_requests(web: TestClient, tree: Tree) -> None:
    page = signed_in(web, "street").get("/inbox").text
    assert links(page) == tree.street_sees
    assert badge(page, "inbox") == 3
    assert "萝峰社区" in page  # the lead department's column: a unit below leads one
    assert "萝岗街道及其下属单位" in page
    assert web.get(f"/requests/{tree.community}").status_code == 200


def test_a_sibling_street_sees_nothing_of_the_street_s_subtree(
    rt: Runtime, web: TestClient, tree: Tree
) -> None:
    page = signed_in(web, "xiagang").get("/inbox").text
    assert links(page) == {tree.sibling}
    assert badge(page, "inbox") == 1
    for rid in tree.street_sees:
        refused(web, rid)


def test_a_community_clerk_does_not_see_the_street_s_own_requests(
    web: TestClient, tree: Tree
) -> None:
    page = signed_in(web, "luofeng").get("/inbox").text
    assert links(page) == {tree.community}
    assert "主办部门" not in page  # its own requests only: no column for it
    for rid in (tree.street_own, tree.co_street):
        refused(web, rid)


def test_a_bound_supervisor_s_board_and_badge_show_its_subtree_only(
    rt: Runtime, web: TestClient, staff: dict[str, Principal], tree: Tree
) -> None:
    for rid in (tree.community, tree.sibling, tree.waiting):
        act(rt, staff["supervisor"], rid, "supervise", note="区督办")
    board = signed_in(web, "street_supervisor").get("/board")
    assert board.status_code == 200
    assert links(board.text) == {tree.community}
    assert badge(board.text, "board") == 1
    assert "督办范围：萝岗街道及其下属单位" in board.text
    fragment = web.get("/fragments/board")
    assert links(fragment.text) == {tree.community}
    refused(web, tree.sibling)
    # its inbox filters by the departments of its subtree only
    inbox = web.get("/inbox").text
    options = set(re.findall(r'<option value="([A-Z]+)"', inbox)) - {"POWER", "HIRE", "OTHER"}
    assert options - {"OUTAGE"} == {"STREET", "LUOFENG"}
    assert links(inbox) == tree.street_sees

    web.cookies.clear()
    everything = signed_in(web, "supervisor").get("/board").text
    assert links(everything) == {tree.community, tree.sibling, tree.waiting}
    assert badge(everything, "board") == 3


def test_a_bound_dispatcher_s_queue_leaves_out_what_has_no_department_yet(
    web: TestClient, tree: Tree
) -> None:
    queue = signed_in(web, "street_dispatcher").get("/queue").text
    assert links(queue) == set()
    assert badge(queue, "queue") == 0
    assert "由区级派单员派单" in queue
    refused(web, tree.waiting)
    refused(web, tree.sibling)

    web.cookies.clear()
    queue = signed_in(web, "dispatcher").get("/queue").text
    assert links(queue) == {tree.waiting}
    assert badge(queue, "queue") == 1


def test_a_bound_dispatcher_acts_inside_its_subtree(web: TestClient, tree: Tree) -> None:
    signed_in(web, "street_dispatcher")
    page = web.get(f"/requests/{tree.community}")
    assert page.status_code == 200
    response = web.post(
        f"/requests/{tree.community}/actions/urge",
        data={"csrf": csrf_in(page.text), "note": "街道催办"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def test_a_bound_supervisor_s_rates_and_trend_count_its_subtree_s_requests(
    web: TestClient, tree: Tree
) -> None:
    """The rates are per lead department, and the trend counts what the subtree leads (the
    reports' rule for a bound caller): the co-handled request is 区工信局's."""
    rows = re.compile(r'<td data-label="部门">([^<]+)</td>')
    board = signed_in(web, "street_supervisor").get("/board").text
    assert set(rows.findall(board)) == {"萝岗街道", "萝峰社区"}
    assert "共 2 件" in board
    web.cookies.clear()
    everything = signed_in(web, "supervisor").get("/board").text
    assert set(rows.findall(everything)) == {"萝岗街道", "萝峰社区", "区工信局", "夏港街道"}
    assert "共 5 件" in everything
