"""The everyday console in a real headless Chromium: a dispatcher registers a call (来电登记)
picking the enterprise from the look-up as they type, then finds the request with the top
bar's search box; a clerk finds a closed request, by search and by the state filter.

Screenshots go where tests/web/browsing.py says (docs/screenshots/ with HUYING_SCREENSHOTS=docs).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from huying.auth.service import Principal
from huying.directory.models import Enterprise
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.conftest import USCC_B
from tests.web.browsing import PHONE, needs_browser, shot, sign_in
from tests.web.conftest import act, submit

pytestmark = needs_browser


def test_a_dispatcher_registers_a_call_and_finds_it_with_the_search_box(
    rt: Runtime, console: str, desktop: Any
) -> None:
    with rt.transaction() as s:
        e = s.scalar(select(Enterprise).where(Enterprise.uscc == USCC_B))
        assert e is not None
        e.contact_name, e.contact_phone = "李经理", "020-3222 0000"
    submit(rt, title="园区道路积水")  # another request, that the search must leave out
    page = desktop.new_page()
    sign_in(page, console, "dispatcher")
    page.click("main a[href='/intake']")  # from the queue
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "来电登记"

    page.locator("input[name=enterprise]").press_sequentially("乐金")
    pick = page.locator(f"[data-picks] [data-uscc='{USCC_B}']")
    pick.wait_for()
    assert "李经理" in pick.inner_text()
    shot(page, "intake-lookup")
    pick.click()
    assert page.locator("[data-picks]").is_hidden()
    assert page.input_value("input[name=enterprise_uscc]") == USCC_B
    assert page.input_value("input[name=enterprise]") == "乐金显示光电科技(中国)有限公司"
    assert page.input_value("input[name=contact_name]") == "李经理"  # from the directory
    assert page.input_value("input[name=contact_phone]") == "020-3222 0000"
    assert USCC_B in page.locator("[data-chosen]").inner_text()

    page.select_option("select[name=category]", "POWER")
    page.fill("input[name=title]", "三号线扩产需增容")
    page.fill("textarea[name=description]", "企业来电：三号产线扩产，用电负荷增加约 800 kVA。")
    page.select_option("select[name=source]", "hotline")
    shot(page, "intake")
    page.click("form.intake button[type=submit]")
    page.wait_for_load_state()
    with rt.transaction() as s:
        req = s.scalars(select(Request).where(Request.title == "三号线扩产需增容")).one()
        number, rid = req.number or "", req.id
        assert (req.enterprise_uscc, req.source, req.submitted_by) == (
            USCC_B,
            "hotline",
            "user:dispatcher",
        )
        assert req.contact == {"name": "李经理", "phone": "020-3222 0000"}
    assert page.url.endswith(f"/requests/{rid}?done=intake&n={number}")
    assert f"已登记来电诉求：{number}" in page.locator(".alert.ok").inner_text()
    assert "李经理" in page.locator("[data-enterprise-contact]").inner_text()

    box = page.locator("header form.search input[name=q]")
    box.fill("扩产 乐金")
    box.press("Enter")
    page.wait_for_load_state()
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 1
    assert rows.first.get_attribute("data-request") == number
    assert page.input_value("header form.search input[name=q]") == "扩产 乐金"
    shot(page, "search")
    rows.first.locator("a").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "三号线扩产需增容"


def test_a_clerk_finds_a_closed_request(
    rt: Runtime, staff: dict[str, Principal], console: str, desktop: Any
) -> None:
    gxj = staff["gxj"]
    rid = submit(rt, title="配电房改造需临时停电审批")
    act(rt, gxj, rid, "sign")
    act(rt, gxj, rid, "reply", content="已批准周六停电 6 小时。", resolved=True)
    act(rt, staff["dispatcher"], rid, "rate", rating="satisfied")
    submit(rt, title="新厂房用电增容")  # one still waiting
    with rt.transaction() as s:
        number = s.scalars(select(Request.number).where(Request.id == rid)).one() or ""

    page = desktop.new_page()
    sign_in(page, console, "gxj")
    assert page.locator(f"tr[data-request='{number}']").count() == 0  # not in the inbox
    page.fill("header form.search input[name=q]", "停电审批")
    page.click("header form.search button[type=submit]")
    page.wait_for_load_state()
    row = page.locator(f"tr[data-request='{number}']")
    assert row.locator(".state").inner_text() == "已办结"
    row.locator("a").click()
    page.wait_for_load_state()
    assert page.locator(".state.big").inner_text() == "已办结"

    page.goto(f"{console}/inbox")
    page.select_option("select[name=state]", "closed")  # applied at once
    page.wait_for_url("**/inbox?state=closed**")
    assert page.locator("table.list tbody tr").count() == 1
    assert page.locator(f"tr[data-request='{number}']").count() == 1

    phone = desktop.browser.new_context(
        viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2
    )
    try:
        mobile = phone.new_page()
        sign_in(mobile, console, "dispatcher")
        for path in ("/search?q=停电", "/intake"):
            mobile.goto(console + path)
            width = mobile.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways on a phone ({width}px)"
        shot(mobile, "intake-phone")
    finally:
        phone.close()
