"""The console's parts on their own: time left, Chinese messages, form fields, the rates
stand-in, the charts and the workflow diagram."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from huying import errors
from huying.auth.service import Principal
from huying.calendar import BusinessCalendar
from huying.deadlines.models import SUSPENSION
from huying.reports import service as reports
from huying.requests.schemas import ACTION_BODIES, DeadlineOut
from huying.runtime import Runtime
from huying.web import charts, labels, rates
from huying.web.diagram import layout
from huying.web.forms import WIDGETS, Form, body_from, fields_of
from huying.web.views import deadline_view, span
from huying.workflow.definition import DEADLINE_KINDS, OPTIONAL_KINDS
from huying.workflow.library import REGISTRY
from tests.conftest import T0
from tests.web.conftest import GRID, act, submit

CAL = BusinessCalendar()


def deadline(duration: str, due: datetime, **extra: object) -> DeadlineOut:
    fields: dict[str, object] = {
        "kind": "sign",
        "status": "running",
        "duration": duration,
        "started_at": T0 - timedelta(days=1),
        "due_at": due,
        "warn_at": None,
        "warned": False,
        "completed_at": None,
        "escalations": 0,
    }
    fields.update(extra)
    return DeadlineOut.model_validate(fields)


# --- time left ------------------------------------------------------------------------


def test_time_left_counts_working_time_only() -> None:
    # Wednesday 10:00 → Thursday 17:30: 2 h + 4 h on Wednesday, 7 h on Thursday.
    due = datetime(2026, 11, 19, 9, 30, tzinfo=UTC)
    view = deadline_view(deadline("1 working day", due), now=T0, calendar=CAL)
    assert (view.mark, view.left, view.clock_text) == ("ok", "剩余 13小时00分", "工作时间")
    assert view.due_text == "2026-11-19 周四 17:30"


def test_time_left_of_a_calendar_limit_runs_around_the_clock() -> None:
    view = deadline_view(deadline("1 hour", T0 + timedelta(minutes=10)), now=T0, calendar=CAL)
    assert (view.mark, view.left, view.clock_text) == ("ok", "剩余 10分钟", "自然时间")


def test_warning_and_overdue_marks() -> None:
    due = T0 + timedelta(hours=1)
    warned = deadline("2 working hours", due, warn_at=T0 - timedelta(minutes=1))
    assert deadline_view(warned, now=T0, calendar=CAL).mark == "warning"
    # Overdue since Tuesday 17:30: Wednesday 09:00–10:00 is one working hour.
    late = deadline("1 working day", datetime(2026, 11, 17, 9, 30, tzinfo=UTC), status="missed")
    view = deadline_view(late, now=T0, calendar=CAL)
    assert (view.mark, view.left, view.mark_label) == ("overdue", "已超期 1小时00分", "超期")
    paused = deadline("5 working days", due, status="paused")
    view = deadline_view(paused, now=T0, calendar=CAL)
    assert (view.mark, view.due_label, view.clock_text) == ("paused", "原定截止", "")
    met = deadline("1 working day", due, status="met", completed_at=T0)
    assert deadline_view(met, now=T0, calendar=CAL).left == ""


@pytest.mark.parametrize(
    ("seconds", "days", "text"),
    [
        (30, False, "不足1分钟"),
        (45 * 60, False, "45分钟"),
        (3 * 3600 + 300, False, "3小时05分"),
        (100 * 3600, False, "100小时00分"),
        (100 * 3600, True, "4天4小时"),
    ],
)
def test_spans_read_in_chinese(seconds: float, days: bool, text: str) -> None:
    assert span(seconds, days=days) == text


# --- words --------------------------------------------------------------------------------


def test_every_refusal_of_the_workflow_has_a_chinese_reason() -> None:
    for name, guard in REGISTRY.guards.items():
        exc = errors.GuardRefused(
            f"action 'x' refused: {guard.refusal}", refusals=[name], allowed=[]
        )
        message = labels.explain(exc, action_name="sign").message
        assert guard.refusal not in message, name
        assert name not in message and labels.REFUSALS[name] in message, name


def test_errors_carry_the_status_the_api_gives_them() -> None:
    assert labels.explain(errors.NotFound("no request 3")).status == 404
    assert labels.explain(errors.Forbidden("no"), action_name="dispatch").message == (
        "您的账号无权执行“派单”。"
    )
    stale = errors.StaleVersion("stale", current_version=7)
    assert labels.explain(stale) == labels.Problem(412, labels.explain(stale).message)
    assert "第 7 版" in labels.explain(stale).message
    missing = errors.MissingFields(
        "reply: content, resolved required", fields=["content", "resolved"]
    )
    assert labels.explain(missing).message == "请填写：答复内容、是否解决。"
    unknown = errors.UnknownReference("unknown department(s): X", kind="department", codes=["X"])
    assert labels.explain(unknown).message == "部门不存在：X。"


def test_the_console_words_codes_the_errors_have() -> None:
    assert set(labels.BY_CODE) <= set(errors.CODES)


def test_the_wording_follows_the_code_not_the_detail() -> None:
    def said(exc: errors.HuyingError) -> str:
        return labels.explain(exc, action_name="merge", state_name="in_progress").message

    assert said(errors.UnknownAction("whatever", allowed=[])) == "没有“合并”这项操作。"
    assert said(errors.NotFound("unknown action 'x'")) == "找不到该诉求，或您无权查看。"
    assert said(errors.ChangedMeanwhile("x")) == "该诉求刚被其他人更新，请刷新页面后重试。"
    assert said(errors.Conflict("changed meanwhile", allowed=["sign"])) == (
        "诉求处于“办理中”状态，不能合并。现在可以：签收。"
    )
    refused = errors.GuardRefused("x", refusals=["under_reopen_limit"], allowed=[])
    assert said(refused) == "无法合并：已达到重办次数上限。现在您没有可执行的操作。"
    assert said(errors.InvalidInput("x", code="merge_into_itself")) == "不能把诉求合并到它自己。"
    unknown = errors.UnknownReference("x", kind="request", codes=["HY-1"], field="target_id")
    assert said(unknown) == "找不到要合并到的诉求，请核对编号。"
    two = errors.UnknownReference("x", kind="department", codes=["A", "B"])
    assert said(two) == "部门不存在：A、B。"
    assert said(errors.InvalidInput("reply: content required")) == (
        "输入有误：reply: content required"
    )


@pytest.mark.parametrize(
    ("text", "zh"),
    [
        ("5 working days", "5 个工作日"),
        ("2 working hours", "2 个工作小时"),
        ("30 minutes", "30 分钟"),
        ("1 hour", "1 小时"),
        ("PT2S", "PT2S"),
        ("90 minutes", "90 分钟"),
        ("1.5 working hours", "90 个工作分钟"),
        ("3 Days", "3 天"),
        ("not a duration", "not a duration"),
    ],
)
def test_durations_in_chinese(text: str, zh: str) -> None:
    assert labels.duration(text) == zh


def test_every_deadline_kind_has_a_chinese_label() -> None:
    assert set(labels.DEADLINE_KINDS) == {*DEADLINE_KINDS, *OPTIONAL_KINDS, SUSPENSION}


# --- forms --------------------------------------------------------------------------------


def test_every_field_of_every_action_has_a_widget_and_a_chinese_label() -> None:
    for action, model in ACTION_BODIES.items():
        assert action in labels.ACTIONS, action
        for name in model.model_fields:
            assert name in WIDGETS, f"{action}.{name} has no widget"
            assert labels.field(name) != name, f"{action}.{name} has no label"


def test_form_fields_become_the_action_body() -> None:
    form = Form(
        (
            ("csrf", "t"),
            ("lead_department", "GXJ"),
            ("co_departments", "STREET"),
            ("co_departments", "RSJ"),
            ("co_departments", ""),
            ("note", "  "),
        )
    )
    assert body_from("dispatch", form) == {
        "lead_department": "GXJ",
        "co_departments": ["STREET", "RSJ"],
    }
    reply = Form((("content", "已办结"), ("resolved", "false")))
    assert body_from("reply", reply) == {"content": "已办结", "resolved": False}
    assert body_from("supervise", Form((("level", "3"),))) == {"level": 3}
    assert [f.name for f in fields_of("reply") if f.required] == ["content", "resolved"]


# --- the rates stand-in -------------------------------------------------------------------


def test_the_three_rates_per_department(rt: Runtime, staff: dict[str, Principal]) -> None:
    gxj = staff["gxj"]
    tick = timedelta(minutes=5)  # real actions never share an instant
    on_time = submit(rt)
    for who, action, body in (
        (gxj, "sign", {}),
        (gxj, "reply", {"content": "好", "resolved": True}),
        (GRID, "rate", {"rating": "satisfied", "resolved": True}),
    ):
        rt.clock.advance(tick)  # type: ignore[attr-defined]
        act(rt, who, on_time, action, **body)
    late = submit(rt)
    rt.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    for who, action, body in (
        (gxj, "sign", {}),
        (gxj, "reply", {"content": "未能解决", "resolved": False}),
        (GRID, "rate", {"rating": "very_dissatisfied", "resolved": False}),
    ):
        rt.clock.advance(tick)  # type: ignore[attr-defined]
        act(rt, who, late, action, **body)
    # Received on Saturday, not signed: their sign deadlines (Monday's end) are ahead, so
    # they are in neither part of the response rate.
    submit(rt)
    submit(rt, category="HIRE", enterprise_uscc="91440101711615159C")  # to 区人社局 (RSJ)

    month = reports.month_of(moment=T0, tz=CAL.tz)
    assert (month.start, month.end) == (
        datetime(2026, 10, 31, 16, tzinfo=UTC),
        datetime(2026, 11, 30, 16, tzinfo=UTC),
    )
    with rt.transaction() as s:
        rows = {
            r.code: r for r in rates.department_rates(s, rt=rt, start=month.start, end=month.end)
        }
        gx = rows["GXJ"]
        assert (gx.name, gx.requests) == ("区工信局", 3)
        # the definitions of GET /reports/rates: signed on time / sign due
        assert (gx.response.hits, gx.response.total, gx.response.text) == (1, 2, "50.0%")
        assert (gx.resolution.hits, gx.resolution.total) == (1, 1)  # reopened: resolved unset
        assert (gx.confirmed, gx.claimed) == (1, 0)  # the enterprise answered resolved
        assert (gx.satisfaction.hits, gx.satisfaction.total) == (1, 2)
        assert (rows["RSJ"].response.total, rows["RSJ"].response.text) == (0, "—")
        after = month.end.astimezone(UTC) + timedelta(days=30)
        assert rates.department_rates(s, rt=rt, start=month.end, end=after) == []
        days = [date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 21)]
        assert reports.requests_per_day(session=s, days=days, tz=CAL.tz) == [0, 2, 2]


# --- charts and the diagram ----------------------------------------------------------------


def test_a_department_with_only_returns_is_not_on_the_board(
    rt: Runtime, staff: dict[str, Principal]
) -> None:
    """The report gives RSJ a row for its return; the board, which shows no returns, does not."""
    rid = submit(rt, category="HIRE", enterprise_uscc="91440101711615159C")  # to RSJ
    act(rt, staff["rsj"], rid, "return", reason="非本部门职责")
    act(rt, staff["dispatcher"], rid, "accept_return")
    act(rt, staff["dispatcher"], rid, "dispatch", lead_department="STREET")
    month = reports.month_of(moment=T0, tz=CAL.tz)
    with rt.transaction() as s:
        rows = rates.department_rates(s, rt=rt, start=month.start, end=month.end)
        assert [r.code for r in rows] == ["STREET"]


def test_the_rates_chart_draws_one_bar_per_rate_and_department() -> None:
    rows = [
        rates.DepartmentRates(
            "A", "区工信局", 4, rates.Rate(3, 4), rates.Rate(1, 1), rates.Rate(0, 0)
        ),
        rates.DepartmentRates(
            "B",
            "一个名字非常非常长的区级部门办公室",
            1,
            rates.Rate(0, 1),
            rates.Rate(0, 0),
            rates.Rate(1, 1),
        ),
    ]
    chart = charts.rates_chart(rows)
    bars = [r for r in chart.rects if r.title]
    assert len(bars) == 6
    assert bars[0].width == pytest.approx(420 * 0.75)
    assert "—" in [t.text for t in chart.texts]
    assert any(t.text.endswith("…") and t.title == rows[1].name for t in chart.texts)
    assert charts.nice_ceiling(7) == 10 and charts.nice_ceiling(31) == 50


def test_the_day_chart_marks_days_off() -> None:
    days = [date(2026, 11, 20) + timedelta(days=n) for n in range(3)]  # Fri, Sat, Sun
    chart = charts.day_chart(days, [2, 0, 1], workdays={days[0]})
    bars = [r for r in chart.rects if r.title]
    assert [b.css for b in bars] == ["day", "day off", "day off"]
    assert bars[0].height == pytest.approx(2 * bars[2].height)


@pytest.mark.parametrize("version", [1, 2])
def test_the_diagram_draws_every_state_and_transition_of_the_spec(
    rt: Runtime, version: int
) -> None:
    spec = rt.workflows.spec("service_request", version)
    diagram = layout(spec, current="in_progress")
    assert {n.name for n in diagram.nodes} == set(spec.states)
    assert [n.name for n in diagram.nodes if n.current] == ["in_progress"]
    pairs = {(s, t.dest) for t in spec.transitions if t.dest for s in t.sources if s != t.dest}
    assert {(e.source, e.dest) for e in diagram.edges} == pairs
    back = {(e.source, e.dest) for e in diagram.edges if e.back}
    assert back >= {("suspended", "in_progress"), ("replied", "in_progress")}
    if version == 1:
        assert back - {("suspended", "in_progress"), ("replied", "in_progress")} == {
            ("dispatched", "awaiting_dispatch")
        }
    else:  # a return is reviewed: the edges back to the review and the queue run backwards
        assert ("return_review", "in_progress") in back
    x = {n.name: n.x for n in diagram.nodes}
    assert x["submitted"] < x["awaiting_dispatch"] < x["dispatched"] < x["in_progress"]
    assert x["in_progress"] < x["replied"] < x["closed"]
    assert len(diagram.rows) == len(spec.transitions)
    assert all(0 < n.x + 132 <= diagram.width for n in diagram.nodes)
