"""The console end to end in a real headless Chromium (Debian's /usr/bin/chromium driven by
Playwright), served by uvicorn on loopback against the test runtime and its frozen clock.

Each scenario takes screenshots of the pages it walks through, into a temporary folder; with
HUYING_SCREENSHOTS=docs they replace docs/screenshots/, the pictures the README shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from huying.auth.service import Principal
from huying.clock import FrozenClock
from huying.requests.firing import fire_due
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.conftest import T0, USCC_B
from tests.web.browsing import PHONE, needs_browser, shot, sign_in
from tests.web.conftest import GRID, act, state_of, submit

pytestmark = needs_browser


def number_of(rt: Runtime, request_id: int) -> str:
    with rt.transaction() as s:
        return s.scalars(select(Request.number).where(Request.id == request_id)).one() or ""


def at(clock: FrozenClock, moment: datetime) -> None:
    clock.set(moment)


def busy_department(rt: Runtime, clock: FrozenClock, staff: dict[str, Principal]) -> int:
    """区工信局's desk on Wednesday morning: one overdue, one warned, one in hand, one paused.
    Returns the overdue one."""
    gxj = staff["gxj"]
    at(clock, T0 - timedelta(days=2))  # Monday 10:00
    overdue = submit(
        rt,
        title="配电房改造需临时停电审批",
        description="配电房改造施工，需申请周末临时停电 6 小时。",
    )
    at(clock, T0 - timedelta(days=1, minutes=30))  # Tuesday 09:30
    rid = submit(rt, title="二期厂房增容报装进度查询", enterprise_uscc=USCC_B)
    act(rt, gxj, rid, "sign")
    at(clock, T0 - timedelta(hours=20))  # Tuesday 14:00
    rid = submit(
        rt, title="申请双回路供电", description="生产线对供电可靠性要求高，申请双回路供电。"
    )
    act(rt, gxj, rid, "sign")
    act(
        rt,
        gxj,
        rid,
        "request_suspension",
        reason_code="awaiting_materials",
        reason="等待企业补充用电负荷材料",
        length="5 working days",
    )
    act(rt, staff["supervisor"], rid, "decide_suspension", approved=True)
    at(clock, T0 - timedelta(minutes=50))
    submit(
        rt,
        category="OUTAGE",
        title="园区突发停电请求抢修",
        description="B 栋厂房 9:05 起全部停电，产线停工，请尽快抢修。",
    )
    at(clock, T0)
    fire_due(rt, now=T0)
    return overdue


def month_of_work(rt: Runtime, clock: FrozenClock, staff: dict[str, Principal]) -> None:
    """Requests of the past weeks, closed in various ways, so the rates and the trend show."""
    gxj, street = staff["gxj"], staff["street"]
    plan = [
        (16, "POWER", "ok"),
        (15, "HIRE", "ok"),
        (14, "POWER", "late"),
        (10, "HIRE", "unresolved"),
        (9, "POWER", "ok"),
        (9, "POWER", "open"),
        (8, "HIRE", "dissatisfied"),
        (7, "POWER", "ok"),
        (3, "HIRE", "late"),
        (2, "POWER", "ok"),
    ]
    for days_ago, category, outcome in plan:
        start = T0 - timedelta(days=days_ago)
        at(clock, start)
        rid = submit(rt, category=category, title=f"{category} 诉求（{start:%m月%d日}）")
        who = gxj if category == "POWER" else street
        if outcome == "open":
            continue
        if outcome == "late":
            at(clock, start + timedelta(days=2))
        act(rt, who, rid, "sign")
        act(rt, who, rid, "reply", content="已办理完毕。", resolved=outcome != "unresolved")
        rating = "dissatisfied" if outcome == "dissatisfied" else "satisfied"
        act(rt, GRID, rid, "rate", rating=rating, resolved=True)
    at(clock, T0)


def test_a_clerk_takes_a_new_request_from_the_inbox_to_replied(
    rt: Runtime, clock: FrozenClock, staff: dict[str, Principal], console: str, desktop: Any
) -> None:
    overdue = busy_department(rt, clock, staff)
    page = desktop.new_page()
    page.clock.install()
    sign_in(page, console, "gxj", screenshot="login")
    assert page.url.endswith("/inbox")
    assert page.locator("tr.mark-overdue").count() == 1
    assert page.locator("tr.mark-warning").count() == 1
    page.evaluate("window.__sameDocument = true")

    # A new request arrives while the inbox is open: the list refreshes without a reload.
    rid = submit(rt, title="新厂房用电增容")
    number = number_of(rt, rid)
    row = page.locator(f"tr[data-request='{number}']")
    assert row.count() == 0
    page.clock.fast_forward(16_000)
    row.wait_for()
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("[data-badge=inbox]").inner_text() == "5"
    shot(page, "inbox")

    row.locator("a").click()
    page.wait_for_load_state()
    assert page.locator(".state.big").inner_text() == "待签收"
    page.click("form.act-sign button[type=submit]")
    page.wait_for_load_state()
    assert "已完成“签收”" in page.locator(".alert.ok").inner_text()
    assert page.locator(".state.big").inner_text() == "办理中"
    shot(page, "request")

    page.fill(
        "form.act-reply textarea[name=content]",
        "已协调供电局现场勘查，增容方案已出具，预计 15 个工作日内送电。",
    )
    page.check("form.act-reply input[name=resolved][value=true]")
    page.click("form.act-reply button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".state.big").inner_text() == "已答复"
    assert state_of(rt, rid)[0] == "replied"
    assert "已协调供电局现场勘查" in page.locator("ol.timeline").inner_text()

    phone = desktop.browser.new_context(
        viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True, device_scale_factor=2
    )
    try:
        mobile = phone.new_page()
        sign_in(mobile, console, "gxj")
        for path, name in (("/inbox", "inbox-phone"), (f"/requests/{overdue}", "request-phone")):
            mobile.goto(console + path)
            width = mobile.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} scrolls sideways on a phone ({width}px)"
            shot(mobile, name)
    finally:
        phone.close()


def test_a_dispatcher_dispatches_an_unrouted_request(
    rt: Runtime, clock: FrozenClock, staff: dict[str, Principal], console: str, desktop: Any
) -> None:
    returned = submit(
        rt, title="厂区门口路灯损坏", description="厂区南门外三盏路灯损坏，夜间货车进出有安全隐患。"
    )
    act(rt, staff["gxj"], returned, "return", reason="路灯维护属街道职责，请改派萝岗街道。")
    act(rt, staff["dispatcher"], returned, "accept_return")
    rid = submit(
        rt,
        category="OTHER",
        title="咨询高新技术企业认定政策",
        description="企业计划明年申报高新技术企业，想了解研发费用归集口径和申报时间。",
    )
    number = number_of(rt, rid)
    page = desktop.new_page()
    sign_in(page, console, "dispatcher")
    assert page.url.endswith("/queue")
    card = page.locator(f"article[data-request='{number}']")
    assert card.count() == 1
    back = page.locator(f"article[data-request='{number_of(rt, returned)}']")
    assert "被退回" in back.inner_text()
    assert back.locator("select[name=lead_department]").input_value() == ""  # not 区工信局 again
    shot(page, "queue")

    card.locator("form.act-dispatch select[name=lead_department]").select_option("GXJ")
    card.locator("form.act-dispatch details.picks summary").click()
    card.locator("form.act-dispatch input[name=co_departments][value=STREET]").check()
    card.locator("form.act-dispatch button[type=submit]").click()
    page.wait_for_load_state()
    assert "已完成“派单”" in page.locator(".alert.ok").inner_text()
    assert page.locator(f"article[data-request='{number}']").count() == 0
    with rt.transaction() as s:
        req = s.get(Request, rid)
        assert req is not None
        assert (req.state, req.lead_department_code, req.co_department_codes) == (
            "dispatched",
            "GXJ",
            ["STREET"],
        )


def test_a_supervisor_sees_an_overdue_request_on_the_board_and_supervises_it(
    rt: Runtime, clock: FrozenClock, staff: dict[str, Principal], console: str, desktop: Any
) -> None:
    month_of_work(rt, clock, staff)
    waiting = submit(rt, title="申请延长电力改造工期")
    act(rt, staff["gxj"], waiting, "sign")
    act(
        rt,
        staff["gxj"],
        waiting,
        "request_extension",
        extend_by="3 working days",
        reason="设备到货延迟",
    )
    rid = submit(rt, title="园区道路积水影响货运")
    number = number_of(rt, rid)
    at(clock, T0 + timedelta(days=2))  # Friday 10:00: the sign deadline (Thursday 17:30) passed
    fire_due(rt, now=clock.now())
    assert state_of(rt, rid) == ("dispatched", 1)

    page = desktop.new_page()
    sign_in(page, console, "supervisor")
    assert page.url.endswith("/board")
    row = page.locator(f"tr[data-request='{number}']")
    assert "超期" in row.inner_text()
    assert (
        row.locator("xpath=ancestor::table/preceding-sibling::h3[1]")
        .inner_text()
        .startswith("1 级升级")
    )
    assert page.locator("svg.chart.rates rect.s1").count() >= 2
    assert page.locator(f"article[data-request='{number_of(rt, waiting)}']").count() == 1
    shot(page, "board")
    shot(page, "board-full", full=True)

    row.locator("form.act-supervise button[type=submit]").click()
    page.wait_for_load_state()
    assert "已完成“督办”" in page.locator(".alert.ok").inner_text()
    assert state_of(rt, rid) == ("dispatched", 2)
    moved = page.locator(f"tr[data-request='{number}']")
    assert (
        moved.locator("xpath=ancestor::table/preceding-sibling::h3[1]")
        .inner_text()
        .startswith("2 级升级")
    )


def test_a_clerk_of_another_department_cannot_see_it(
    rt: Runtime, staff: dict[str, Principal], console: str, desktop: Any
) -> None:
    rid = submit(rt, title="新厂房用电增容")
    page = desktop.new_page()
    sign_in(page, console, "rsj")
    assert page.locator(f"tr[data-request='{number_of(rt, rid)}']").count() == 0
    response = page.goto(f"{console}/requests/{rid}")
    assert response is not None and response.status == 404
    assert "找不到该诉求" in page.locator("main").inner_text()

    page.goto(f"{console}/workflows")
    assert page.locator("svg.diagram g.node").count() == sum(  # every version's diagram
        len(compiled.spec.states) for compiled in rt.workflows.workflows.values()
    )
    shot(page, "workflow")
