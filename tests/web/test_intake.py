"""来电登记: a dispatcher registers a request taken by phone (GET/POST /intake), the
enterprise picked from a look-up (/fragments/enterprises) or typed as a USCC or a name. The
submit is `requests.service.submit`'s, as the API's; bad input writes nothing and says what
is wrong under each field, in Chinese. The request's page shows the enterprise's contact.

Submitted Wednesday 2026-11-18 10:00 Shanghai: request n is HY-20261118-00000n."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from huying.auth.models import User
from huying.directory.models import Enterprise
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.api.support import nothing_written
from tests.conftest import USCC_A, USCC_B
from tests.web.conftest import csrf_in, login

FIELD_ERROR = re.compile(r'data-field="([a-z_]+)">([^<]*)<')


def signed_in(web: TestClient, username: str) -> TestClient:
    assert login(web, username).status_code == 303
    return web


def form_of(web: TestClient) -> dict[str, str]:
    """The intake page's hidden fields: its CSRF token and its Idempotency-Key."""
    page = web.get("/intake")
    assert page.status_code == 200, page.text
    key = re.search(r'name="idempotency" value="([^"]+)"', page.text)
    assert key is not None
    return {"csrf": csrf_in(page.text), "idempotency": key.group(1)}


def a_call(**fields: str) -> dict[str, str]:
    return {
        "enterprise": "北京示例",
        "enterprise_uscc": USCC_A,
        "category": "POWER",
        "title": "新厂房用电增容",
        "description": "企业来电：二期厂房投产需增容至 2000 kVA。",
        "urgency": "",
        "contact_name": "刘经理",
        "contact_phone": "020-8888 0001",
        "grid_code": "",
        "source": "phone",
        **fields,
    }


def post(web: TestClient, hidden: dict[str, str], **fields: str) -> Any:
    return web.post("/intake", data={**hidden, **a_call(**fields)}, follow_redirects=False)


def field_errors(html: str) -> dict[str, str]:
    return dict(FIELD_ERROR.findall(html))


def stored(rt: Runtime) -> list[Request]:
    with rt.transaction() as s:
        rows = list(s.scalars(select(Request).order_by(Request.id)))
        s.expunge_all()
        return rows


@pytest.fixture
def contacts(rt: Runtime, web: TestClient) -> None:
    """The enterprises' contacts, as the directory holds them."""
    with rt.transaction() as s:
        for uscc, name, phone in ((USCC_A, "张总", "13800000001"), (USCC_B, "李经理", "")):
            e = s.scalar(select(Enterprise).where(Enterprise.uscc == uscc))
            assert e is not None
            e.contact_name, e.contact_phone = name, phone


# --- registering -------------------------------------------------------------------------


def test_a_dispatcher_registers_a_call_and_lands_on_the_new_request(
    rt: Runtime, web: TestClient, contacts: None
) -> None:
    signed_in(web, "dispatcher")
    assert 'href="/intake"' in web.get("/queue").text  # linked from the queue
    response = post(web, form_of(web))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/requests/1?done=intake&n=HY-20261118-000001"
    [req] = stored(rt)
    assert (req.enterprise_uscc, req.category_code, req.title) == (
        USCC_A,
        "POWER",
        "新厂房用电增容",
    )
    assert req.source == "phone" and req.submitted_by == "user:dispatcher"
    assert req.contact == {"name": "刘经理", "phone": "020-8888 0001"}
    assert (req.state, req.lead_department_code) == ("dispatched", "GXJ")  # routed as usual
    assert req.urgency == "normal" and req.grid_code == "440112012001001"  # the defaults

    page = web.get(response.headers["location"]).text
    assert "已登记来电诉求：HY-20261118-000001。" in page
    assert "来电登记" in page
    assert "企业联系人" in page and '<a href="tel:13800000001">13800000001</a>' in page
    assert "本次联系人" in page and "刘经理 020-8888 0001" in page


def test_a_form_posted_twice_registers_one_request(rt: Runtime, web: TestClient) -> None:
    signed_in(web, "dispatcher")
    hidden = form_of(web)
    first = post(web, hidden, source="hotline", urgency="urgent", grid_code="440112013001009")
    again = post(web, hidden, source="hotline", urgency="urgent", grid_code="440112013001009")
    assert first.headers["location"] == again.headers["location"]
    [req] = stored(rt)
    assert (req.source, req.urgency, req.grid_code) == ("hotline", "urgent", "440112013001009")
    post(web, form_of(web))  # a new form: a new call
    assert len(stored(rt)) == 2


def test_without_the_look_up_a_uscc_or_a_whole_name_names_the_enterprise(
    rt: Runtime, web: TestClient
) -> None:
    signed_in(web, "dispatcher")
    assert post(web, form_of(web), enterprise=USCC_B.lower(), enterprise_uscc="").status_code == 303
    by_name = post(
        web, form_of(web), enterprise="乐金显示光电科技(中国)有限公司", enterprise_uscc=""
    )
    assert by_name.status_code == 303
    assert [r.enterprise_uscc for r in stored(rt)] == [USCC_B, USCC_B]


def test_a_name_that_is_not_quite_one_offers_the_enterprises_to_pick(
    rt: Runtime, web: TestClient
) -> None:
    signed_in(web, "dispatcher")
    hidden = form_of(web)
    with nothing_written(rt):
        response = post(web, hidden, enterprise="有限公司", enterprise_uscc="")
    assert response.status_code == 422
    assert field_errors(response.text) == {"enterprise": "请在下面的企业中选择一家。"}
    picks = re.findall(r'name="enterprise_pick" value="([^"]+)"', response.text)
    assert sorted(picks) == sorted([USCC_A, USCC_B])
    assert 'value="新厂房用电增容"' in response.text  # what was typed is kept
    again = {"csrf": hidden["csrf"], "idempotency": hidden["idempotency"]}
    response = post(web, again, enterprise="有限公司", enterprise_uscc="", enterprise_pick=USCC_B)
    assert response.status_code == 303
    assert [r.enterprise_uscc for r in stored(rt)] == [USCC_B]


def test_bad_input_says_what_is_wrong_under_each_field_and_writes_nothing(
    rt: Runtime, web: TestClient
) -> None:
    signed_in(web, "dispatcher")
    hidden = form_of(web)
    with nothing_written(rt):
        response = post(
            web,
            hidden,
            enterprise="",
            enterprise_uscc="",
            category="",
            title=" ",
            description="",
            grid_code="44-01",
        )
    assert response.status_code == 422
    assert field_errors(response.text) == {
        "enterprise": "请填写企业名称或统一社会信用代码。",
        "category": "请选择诉求类别。",
        "title": "请填写诉求标题",
        "description": "请填写诉求内容",
        "grid_code": "网格编码不符合本区的编码规则，请核对或留空（留空则用企业登记的网格）。",
    }
    assert "表单有误，请按提示修改后再提交。没有保存任何内容。" in response.text
    with nothing_written(rt):
        response = post(web, hidden, enterprise="91440101711615159X", enterprise_uscc="")
    assert field_errors(response.text) == {
        "enterprise": "统一社会信用代码格式不正确，请核对或从列表中选择企业。"
    }
    with nothing_written(rt):
        response = post(web, hidden, enterprise="不存在的企业", enterprise_uscc="")
    assert "没有找到与“不存在的企业”相符的在册企业" in field_errors(response.text)["enterprise"]
    with nothing_written(rt):
        response = post(web, hidden, source="api", contact_name="长" * 101)
    assert field_errors(response.text) == {
        "source": "请选择来电渠道。",  # one the page does not offer is sent empty
        "contact_name": "联系人过长，请精简",
    }
    with nothing_written(rt):
        response = post(web, hidden, urgency="whenever")  # refused by the submit itself
    assert field_errors(response.text) == {"urgency": "请选择有效的紧急程度。"}


def test_the_submit_refuses_a_retired_enterprise_or_category_under_its_field(
    rt: Runtime, web: TestClient
) -> None:
    with rt.transaction() as s:
        e = s.scalar(select(Enterprise).where(Enterprise.uscc == USCC_B))
        assert e is not None
        e.active = False
    signed_in(web, "dispatcher")
    hidden = form_of(web)
    assert f'value="{USCC_B}"' not in web.get("/fragments/enterprises?q=乐金").text
    with nothing_written(rt):
        response = post(web, hidden, enterprise="乐金", enterprise_uscc=USCC_B)
    assert response.status_code == 422
    assert field_errors(response.text) == {"enterprise": "该企业未登记或已停用，请重新选择。"}
    with nothing_written(rt):
        response = post(web, hidden, category="NO_SUCH")
    assert field_errors(response.text) == {"category": "该类别不在呼叫清单上或已停用，请重新选择。"}


def test_the_form_needs_its_csrf_token(rt: Runtime, web: TestClient) -> None:
    signed_in(web, "dispatcher")
    hidden = form_of(web)
    for token in ({}, {"csrf": "forged"}):
        with nothing_written(rt):
            response = post(web, {**token, "idempotency": hidden["idempotency"]})
        assert response.status_code == 403 and "操作没有执行" in response.text


def test_only_dispatchers_register_calls(rt: Runtime, web: TestClient) -> None:
    for username in ("gxj", "supervisor"):
        signed_in(web, username)
        assert web.get("/intake").status_code == 403
        csrf = csrf_in(web.get("/inbox").text)
        with nothing_written(rt):
            response = post(web, {"csrf": csrf})
        assert response.status_code == 403 and "无权访问" in response.text
    assert 'href="/intake"' not in web.get("/queue").text  # the supervisor's queue
    signed_in(web, "admin")
    assert web.get("/intake").status_code == 200
    web.cookies.clear()
    response = web.post("/intake", data=a_call(), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_call_routed_beyond_a_bound_dispatchers_subtree_returns_to_the_form(
    rt: Runtime, web: TestClient, password_hash: str
) -> None:
    with rt.transaction() as s:
        s.add(
            User(
                username="street_desk",
                display_name="街道派单员",
                password_hash=password_hash,
                role="dispatcher",
                department_code="STREET",
                active=True,
                created_at=rt.now(),
            )
        )
    signed_in(web, "street_desk")
    response = post(web, form_of(web), category="OUTAGE")  # GXJ leads it, STREET not on it
    assert response.headers["location"] == "/intake?done=intake&n=HY-20261118-000001"
    assert "已登记来电诉求：HY-20261118-000001。" in web.get(response.headers["location"]).text


# --- the enterprise look-up ------------------------------------------------------------------


def test_the_look_up_lists_matching_enterprises_with_their_contact(
    web: TestClient, contacts: None
) -> None:
    assert web.get("/fragments/enterprises?q=乐金").status_code == 401  # signed out
    signed_in(web, "gxj")
    assert web.get("/fragments/enterprises?q=乐金").status_code == 403
    signed_in(web, "dispatcher")
    picks = web.get("/fragments/enterprises", params={"q": "乐金 显示"})
    assert picks.status_code == 200
    assert re.findall(r'data-uscc="([^"]+)"', picks.text) == [USCC_B]
    assert 'data-contact-name="李经理"' in picks.text
    both = web.get("/fragments/enterprises", params={"q": "9111"}).text  # a USCC's start
    assert re.findall(r'data-uscc="([^"]+)"', both) == [USCC_A]
    assert 'data-contact-phone="13800000001"' in both
    assert "没有相符的在册企业" in web.get("/fragments/enterprises?q=停水").text
    assert web.get("/fragments/enterprises?q=").text.strip() == ""
    assert web.get("/fragments/enterprises", params={"q": "长" * 101}).status_code == 422
