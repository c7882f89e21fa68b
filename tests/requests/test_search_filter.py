"""The lists' search (`Filters.text`, the API's `?q=`, the console's search box): each word
is the start of the request's number or of its enterprise's USCC, or part of its
enterprise's name or of its title; every word must match; case does not count; LIKE's
wildcards match themselves; every state is searched; the caller's scope still applies.

Submitted Wednesday 2026-11-18 10:00 Shanghai: request n is HY-20261118-00000n."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.auth.service import Principal
from huying.directory.models import Enterprise
from huying.errors import InvalidInput
from huying.requests import repository, service
from huying.requests.schemas import SubmitIn
from huying.runtime import Runtime
from tests.api.support import assert_problem, uscc_check_character
from tests.conftest import USCC_A, USCC_B, World, submit_body

GRID = Principal("key:grid", "integration", None, "网格系统")
DISPATCHER = Principal("user:dispatcher", "dispatcher", None, "派单员")
USCC_C = "91440112MA59C0000" + uscc_check_character("91440112MA59C0000")


def submit(rt: Runtime, **overrides: Any) -> int:
    with rt.transaction() as s:
        req, _ = service.submit(
            rt=rt,
            session=s,
            principal=GRID,
            body=SubmitIn.model_validate(submit_body(**overrides)),
            idempotency_key=None,
        )
        return req.id


def found(rt: Runtime, q: str, *, scope: frozenset[str] | None = None) -> list[int]:
    """The ids a search finds, newest first, as a page of the lists has them."""
    text = service.search_text(q)
    with rt.transaction() as s:
        where = service.Filters(text=text, scope=scope)
        rows = repository.page(s, where, after_id=None, limit=100)[0]
        assert service.count(session=s, filters=where) == len(rows)
        return [r.id for r in rows]


@pytest.fixture
def requests(rt: Runtime, world: World) -> dict[str, int]:
    """Four requests: two of enterprise A (routed to GXJ), one of B (GXJ), one of C, a
    Latin-named enterprise, in the dispatch queue (OTHER has no lead)."""
    with rt.transaction() as s:
        s.add(
            Enterprise(
                uscc=USCC_C,
                name="Acme Photonics 广州有限公司",
                grid_code="440112012001002",
                address="",
                contact_name="",
                contact_phone="",
                created_at=rt.now(),
                active=True,
            )
        )
    return {
        "power": submit(rt),  # 新厂房用电增容
        "hire": submit(rt, category="HIRE", title="招聘 100%到岗 的_专项", enterprise_uscc=USCC_A),
        "b": submit(rt, enterprise_uscc=USCC_B, title="显示面板产线扩产用电"),
        "c": submit(rt, enterprise_uscc=USCC_C, category="OTHER", title="OLED Line 审批咨询"),
    }


def test_a_number_is_found_whole_or_by_its_start_in_any_case(
    rt: Runtime, requests: dict[str, int]
) -> None:
    assert found(rt, "HY-20261118-000003") == [requests["b"]]
    assert found(rt, "hy-20261118-000003") == [requests["b"]]
    assert found(rt, "HY-2026") == [requests[k] for k in ("c", "b", "hire", "power")]
    assert found(rt, "HY-20261117") == []
    assert found(rt, "20261118-000003") == []  # the middle of a number is not its start


def test_an_enterprise_is_found_by_words_of_its_name_or_the_start_of_its_uscc(
    rt: Runtime, requests: dict[str, int]
) -> None:
    assert found(rt, "乐金显示") == [requests["b"]]
    assert found(rt, "示例科技") == [requests["hire"], requests["power"]]
    assert found(rt, "acme PHOTONICS") == [requests["c"]]  # each word, in any case
    assert found(rt, USCC_B) == [requests["b"]]
    assert found(rt, "91440101") == [requests["b"]]
    assert found(rt, "914401") == [requests["c"], requests["b"]]
    assert found(rt, USCC_C.lower()[:10]) == [requests["c"]]
    assert found(rt, USCC_B[4:]) == []  # the middle of a USCC is not its start


def test_words_of_the_title_must_all_match_somewhere(rt: Runtime, requests: dict[str, int]) -> None:
    assert found(rt, "增容") == [requests["power"]]
    assert found(rt, "用电") == [requests["b"], requests["power"]]
    assert found(rt, "用电 乐金") == [requests["b"]]  # one word in the title, one in the name
    assert found(rt, "用电　扩产") == [requests["b"]]  # an ideographic space splits words too
    assert found(rt, "用电 停水") == []
    assert found(rt, "oled line") == [requests["c"]]


def test_like_wildcards_match_only_themselves(rt: Runtime, requests: dict[str, int]) -> None:
    assert found(rt, "%") == [requests["hire"]]
    assert found(rt, "100%到岗") == [requests["hire"]]
    assert found(rt, "_") == [requests["hire"]]
    assert found(rt, "的_专") == [requests["hire"]]
    assert found(rt, "招聘%专项") == []
    assert found(rt, "/") == []  # the escape character is nothing special either


def test_finished_requests_are_found_and_the_scope_still_holds(
    rt: Runtime, requests: dict[str, int], world: World
) -> None:
    with rt.transaction() as s:
        service.act(
            rt=rt,
            session=s,
            principal=DISPATCHER,
            request_id=requests["c"],
            action="reject",
            body={"reason": "不属于受理范围"},
            if_match=None,
        )
    assert found(rt, "OLED") == [requests["c"]]  # rejected, still found
    gxj = frozenset({"GXJ"})
    assert found(rt, "用电", scope=gxj) == [requests["b"], requests["power"]]
    assert found(rt, "OLED", scope=gxj) == []  # never reached GXJ
    assert found(rt, "招聘", scope=gxj) == []  # HIRE in this grid: STREET leads, RSJ co-handles
    assert found(rt, "招聘", scope=frozenset({"RSJ"})) == [requests["hire"]]


def test_search_text_takes_words_and_refuses_too_many() -> None:
    assert service.search_text(None) is None
    assert service.search_text(" \t　") is None
    assert service.search_text("  乐金   用电 ") == "乐金 用电"
    words = " ".join("词" for _ in range(service.SEARCH_MAX_WORDS))
    assert service.search_text(words) == words
    with pytest.raises(InvalidInput):
        service.search_text(words + " 多")
    with pytest.raises(InvalidInput):
        service.search_text("长" * (service.SEARCH_MAX_CHARS + 1))


# --- the API: GET /api/v1/requests?q= -------------------------------------------------------

API = "/api/v1/requests"


def listed(client: TestClient, world: World, who: str, **query: str) -> list[str]:
    r = client.get(API, params=query, headers=world.h(who))
    assert r.status_code == 200, r.text
    return [item["number"] for item in r.json()["items"]]


def test_the_api_lists_what_q_matches_within_the_callers_scope(
    client: TestClient, world: World, requests: dict[str, int]
) -> None:
    assert listed(client, world, "dispatcher", q="用电") == [
        "HY-20261118-000003",
        "HY-20261118-000001",
    ]
    assert listed(client, world, "dispatcher", q="用电", state="dispatched", limit="1") == [
        "HY-20261118-000003"
    ]
    assert listed(client, world, "rsj", q="用电") == []  # GXJ's
    assert listed(client, world, "rsj", q="招聘") == ["HY-20261118-000002"]
    assert listed(client, world, "dispatcher", q="   ") == listed(client, world, "dispatcher")


def test_the_api_refuses_a_q_too_long(
    client: TestClient, world: World, requests: dict[str, int]
) -> None:
    too_many = " ".join(["词"] * (service.SEARCH_MAX_WORDS + 1))
    response = client.get(API, params={"q": too_many}, headers=world.h("dispatcher"))
    assert_problem(response, 422, "q:")
    response = client.get(API, params={"q": "长" * 201}, headers=world.h("dispatcher"))
    assert response.status_code == 422
