"""The supervisor's board: suspensions that stay in sight, suspension requests decided from it,
the rates with the formulas they are computed by, and next year's missing holidays.

The clock starts on Wednesday 18 November 2026, 10:00 in Shanghai (tests/conftest.py's T0).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from huying.auth.service import Principal
from huying.calendar import HolidayTable
from huying.clock import FrozenClock
from huying.runtime import Runtime, build_calendar
from huying.web import rates
from tests.conftest import PG_URL
from tests.web.conftest import GRID, act, console_app, csrf_in, login, state_of, submit

NOTICE = (
    "2027 年法定节假日尚未载入：跨年的时限按周一至周五计算，请升级 chinese-calendar "
    "或在配置 calendar.extra_holidays 中填写。"
)


def signed_in(client: TestClient, username: str) -> TestClient:
    response = login(client, username)
    assert response.status_code == 303, response.text
    return client


def section(html: str, heading: str) -> str:
    """The board's panel whose heading begins with `heading`, up to the next panel."""
    match = re.search(rf"<h2>{re.escape(heading)}.*?(?=<section|\Z)", html, flags=re.DOTALL)
    assert match, f"no section {heading!r} on the page"
    return match.group(0)


def text_of(html: str) -> str:
    """The page's text with the tags taken out (what a reader sees, roughly)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def ask_suspension(rt: Runtime, staff: dict[str, Principal], **overrides: str) -> int:
    """A request GXJ signed and asked to suspend for 3 working days."""
    rid = submit(rt)
    act(rt, staff["gxj"], rid, "sign")
    body = {
        "reason_code": "awaiting_materials",
        "reason": "企业正在补充环评报告",
        "length": "3 working days",
        **overrides,
    }
    act(rt, staff["gxj"], rid, "request_suspension", **body)
    return rid


# --- suspensions ---------------------------------------------------------------------------


def test_a_suspension_is_decided_from_the_board_and_stays_on_it(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    rid = ask_suspension(rt, staff)
    signed_in(web, "supervisor")
    board = web.get("/board").text
    asked = text_of(section(board, "待审批的挂起申请"))
    assert "等待企业补充材料：企业正在补充环评报告" in asked
    assert "3 个工作日" in asked
    assert f'action="/requests/{rid}/actions/decide_suspension"' in board
    assert "目前没有挂起中的诉求" in section(board, "挂起中")

    response = web.post(
        f"/requests/{rid}/actions/decide_suspension",
        data={"csrf": csrf_in(board), "approved": "true", "note": "同意", "return_to": "/board"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/board?done=decide_suspension")
    assert state_of(rt, rid)[0] == "suspended"

    board = web.get("/board").text
    assert "目前没有待审批的挂起申请" in board
    suspended = text_of(section(board, "挂起中"))
    assert "新厂房用电增容" in suspended
    assert "等待企业补充材料：企业正在补充环评报告" in suspended
    # since Wednesday 10:00 (local); 3 working days: resumes at the end of Monday 23rd
    assert "2026-11-18 周三 10:00" in suspended
    assert "2026-11-23 周一 17:30" in suspended


def test_a_refused_suspension_leaves_the_board_and_the_request_runs_on(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    rid = ask_suspension(rt, staff, reason_code="other", reason="其他原因")
    signed_in(web, "dispatcher")
    board = web.get("/board").text
    assert "其他：其他原因" in text_of(section(board, "待审批的挂起申请"))
    response = web.post(
        f"/requests/{rid}/actions/decide_suspension",
        data={"csrf": csrf_in(board), "approved": "false", "return_to": "/board"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert state_of(rt, rid)[0] == "in_progress"
    board = web.get("/board").text
    assert "目前没有待审批的挂起申请" in board and "目前没有挂起中的诉求" in board


def test_the_board_fragment_changes_when_a_suspension_is_asked(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    """Neither overdue nor asking for an extension, a request asking to suspend is in none
    of the board's other lists; the fragment still answers anew, in the same minute."""
    rid = submit(rt)
    act(rt, staff["gxj"], rid, "sign")
    signed_in(web, "supervisor")
    etag = web.get("/board").headers["etag"]
    assert web.get("/fragments/board", headers={"If-None-Match": etag}).status_code == 304
    act(
        rt,
        staff["gxj"],
        rid,
        "request_suspension",
        reason_code="site_survey",
        reason="需现场勘查线路",
        length="2 working days",
    )
    fresh = web.get("/fragments/board", headers={"If-None-Match": etag})
    assert fresh.status_code == 200
    assert "需现场勘查：需现场勘查线路" in text_of(fresh.text)


# --- the rates -----------------------------------------------------------------------------


def test_the_rates_table_states_the_formulas_and_where_resolution_comes_from(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    gxj = staff["gxj"]
    for enterprise_says in (True, None):  # the enterprise confirms; a phone follow-up
        rid = submit(rt)
        act(rt, gxj, rid, "sign")
        act(rt, gxj, rid, "reply", content="已协调", resolved=True)
        if enterprise_says is None:
            act(rt, staff["dispatcher"], rid, "rate", rating="satisfied")
        else:
            act(rt, GRID, rid, "rate", rating="satisfied", resolved=enterprise_says)
    submit(rt)  # its sign deadline ahead: in neither part of the response rate (2/2)
    signed_in(web, "supervisor")
    board = text_of(web.get("/board").text)
    assert (
        "响应率 = 按时签收数 ÷ 应签收数（已签收或签收已超期）；"
        "解决率 = 解决数（企业确认为准，企业未答复时以部门答复为准）÷ 办结数；"
        "满意率 = 满意数（非常满意、满意、基本满意）÷ 评价数。"
    ) in board
    # 部门, 诉求数, then each rate with its division; resolution with its two sources
    assert "区工信局 3 100.0% 2/2 100.0% 2/2（企业确认 1，部门自报 1） 100.0% 2/2" in board


@pytest.mark.skipif(not PG_URL, reason="isolation levels: PostgreSQL (SQLite: one snapshot)")
def test_the_board_reads_its_rates_in_one_snapshot_as_the_reports_do(
    rt: Runtime, web: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str | None] = []
    real = rates.department_rates

    def watched(s: Session, **kwargs: Any) -> list[rates.DepartmentRates]:
        seen.append(s.scalar(text("SHOW transaction_isolation")))
        return real(s, **kwargs)

    monkeypatch.setattr(rates, "department_rates", watched)
    submit(rt)
    signed_in(web, "supervisor")
    assert web.get("/board").status_code == 200
    assert seen == ["repeatable read"]


# --- next year's holidays ------------------------------------------------------------------


@pytest.fixture
def knows_2026(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime's calendar from its settings (`holidays: cn`), with a holiday table that
    knows 2026 only, whatever the installed chinese-calendar knows."""
    monkeypatch.setattr("huying.calendar.ChineseHolidays", lambda: HolidayTable(years=[2026]))
    monkeypatch.setattr(rt, "calendar", build_calendar(rt.settings))


def board_on(rt: Runtime, clock: FrozenClock, day: datetime) -> str:
    clock.set(day)
    with TestClient(console_app(rt)) as client:
        page: str = signed_in(client, "supervisor").get("/board").text
    return page


@pytest.mark.usefixtures("knows_2026")
def test_the_board_warns_when_next_year_is_unknown_from_warn_from_on(
    rt: Runtime, clock: FrozenClock, staff: dict[str, Principal]
) -> None:
    assert rt.settings.calendar.warn_from == "11-01"
    october = board_on(rt, clock, datetime.fromisoformat("2026-10-31T23:00:00+08:00"))
    assert "法定节假日尚未载入" not in october
    november = board_on(rt, clock, datetime.fromisoformat("2026-11-01T00:00:00+08:00"))
    assert re.search(r'role="alert"[^>]*>' + re.escape(NOTICE) + "</p>", november)
    assert november.count("法定节假日尚未载入") == 1  # 2026 is known


@pytest.mark.usefixtures("knows_2026")
def test_a_year_the_config_names_is_not_warned_about(
    rt: Runtime, clock: FrozenClock, staff: dict[str, Principal], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = rt.settings.model_copy(
        update={
            "calendar": rt.settings.calendar.model_copy(
                update={"extra_holidays": (datetime(2027, 1, 1).date(),)}
            )
        }
    )
    monkeypatch.setattr(rt, "calendar", build_calendar(settings))
    december = board_on(rt, clock, datetime.fromisoformat("2026-12-02T10:00:00+08:00"))
    assert "法定节假日尚未载入" not in december


# --- the badge ------------------------------------------------------------------------------


def board_badge(html: str) -> int:
    match = re.search(r'data-badge="board">(\d+)<', html)
    assert match, "no board badge on the page"
    return int(match.group(1))


def test_the_board_badge_counts_decisions_waiting_each_request_once(
    rt: Runtime, web: TestClient, staff: dict[str, Principal]
) -> None:
    signed_in(web, "supervisor")
    assert board_badge(web.get("/board").text) == 0
    ask_suspension(rt, staff)  # on time, not escalated: only a decision waits
    extension = submit(rt)
    act(rt, staff["gxj"], extension, "sign")
    act(rt, staff["gxj"], extension, "request_extension", extend_by="2 working days", reason="勘查")
    page = web.get("/board").text
    assert board_badge(page) == 2
    assert 'data-count="2" data-count-for="board"' in page  # the live count says the same
    act(rt, staff["supervisor"], extension, "supervise", note="列入督办")  # escalated too
    assert board_badge(web.get("/board").text) == 2  # still one request, counted once
