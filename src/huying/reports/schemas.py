"""The rates report as the API returns it; the same columns, in Chinese, in the exports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GroupBy = Literal["department", "category", "chain", "grid", "urgency"]
Format = Literal["json", "csv", "xlsx"]


@dataclass(frozen=True)
class RateDefinition:
    """One rate: which count it divides by which, and its formula in Chinese. The service
    divides `part` by `whole`; the API's descriptions, the exports' headers and notes and
    the supervisor's board all print from here, so no label can say other than the code."""

    label: str  # 响应率
    part: str  # the numerator, a count of `RatesRow`
    whole: str  # the denominator, a count of `RatesRow`
    formula: str  # 响应率 = 按时签收数 ÷ 应签收数（…）, in the count columns' own words

    @property
    def header(self) -> str:
        """The exports' column header: the rate and its division, by the count columns."""
        return f"{self.label}({COUNT_LABELS[self.part]}÷{COUNT_LABELS[self.whole]})"


# The Chinese name of each count: the exports' headers, and the words of the formulas.
COUNT_LABELS: dict[str, str] = {
    "received": "受理数",
    "dispatched": "派单数",
    "sign_due": "应签收数",
    "signed": "签收数",
    "signed_on_time": "按时签收数",
    "replied": "答复数",
    "replied_on_time": "按期答复数",
    "closed": "办结数",
    "resolved": "解决数",
    "resolved_confirmed": "企业确认解决数",
    "resolved_claimed": "部门自报解决数",
    "rated": "评价数",
    "satisfied": "满意数",
    "reopened": "重办数",
    "returned": "退单数",
    "overdue_now": "当前超期数",
    # Tasks (子任务: 协办 and 下派), by the department of the task; see `TASK_COUNTS`.
    "tasks": "任务数",
    "tasks_due": "任务应答复数",
    "tasks_replied": "任务答复数",
    "tasks_on_time": "任务按时答复数",
    "tasks_overdue_open": "任务超期未答复数",
}

# The counts of tasks rather than of requests: the tasks (not cancelled) of the requests
# received in the period, each under the department of the task. Only a grouping by
# department has them; by any other key they are null (a category has no task department,
# and 0 would claim there were no tasks).
TASK_COUNTS = ("tasks", "tasks_due", "tasks_replied", "tasks_on_time", "tasks_overdue_open")

RATES: dict[str, RateDefinition] = {
    "response_rate": RateDefinition(
        "响应率",
        "signed_on_time",
        "sign_due",
        "响应率 = 按时签收数 ÷ 应签收数（已签收或签收已超期）",
    ),
    "on_time_rate": RateDefinition(
        "按期办结率",
        "replied_on_time",
        "replied",
        "按期办结率 = 按期答复数（首次答复在答复时限内）÷ 答复数",
    ),
    "resolution_rate": RateDefinition(
        "解决率",
        "resolved",
        "closed",
        "解决率 = 解决数（企业确认为准，企业未答复时以部门答复为准）÷ 办结数",
    ),
    "satisfaction_rate": RateDefinition(
        "满意率",
        "satisfied",
        "rated",
        "满意率 = 满意数（非常满意、满意、基本满意）÷ 评价数",
    ),
    "task_on_time_rate": RateDefinition(
        "协办按时率",
        "tasks_on_time",
        "tasks_due",
        "协办按时率 = 任务按时答复数 ÷ 任务应答复数（协办、下派任务已答复或答复已超期）",
    ),
}


def _rate_description(name: str) -> str:
    rate = RATES[name]
    when = f"null when {rate.whole} is 0"
    if rate.whole in TASK_COUNTS:
        when += ", and by any grouping but department"
    return f"{rate.formula}; = {rate.part} / {rate.whole}, {when}"


def _task_count(text: str) -> Any:
    """A task count's field: a number by department, null by any other grouping."""
    return Field(description=f"{text}; by department only, null by any other grouping")


class RatesRow(BaseModel):
    """One group's figures. Every count is a number of requests received in the period, but
    the task counts (`TASK_COUNTS`): numbers of those requests' tasks."""

    model_config = ConfigDict(frozen=True)

    key: str | None = Field(
        description="the department, category or chain code, the grid-code prefix, the "
        "urgency; null for requests without one (e.g. not dispatched now)"
    )
    name: str
    received: int = Field(description="受理数: received in the period")
    dispatched: int = Field(description="派单数: assigned to a lead department at least once")
    sign_due: int = Field(
        description="应签收数: signed (on time or late), or still unsigned after its sign "
        "deadline passed; a request whose sign deadline is still ahead is not counted"
    )
    signed: int = Field(description="签收数: signed for by the lead department")
    signed_on_time: int = Field(description="按时签收数: signed by the sign deadline")
    replied: int = Field(description="答复数: replied to at least once")
    replied_on_time: int = Field(
        description="按期答复数: the first reply came by the first reply deadline"
    )
    closed: int = Field(description="办结数: closed")
    resolved: int = Field(
        description="解决数: closed, and resolved by the enterprise's answer (是否解决) where "
        "it gave one, by the department's reply otherwise: resolved_confirmed + resolved_claimed"
    )
    resolved_confirmed: int = Field(
        description="企业确认解决数: closed, and the enterprise answered resolved when it rated"
    )
    resolved_claimed: int = Field(
        description="部门自报解决数: closed, the enterprise gave no answer, and the department's "
        "last reply said resolved"
    )
    rated: int = Field(description="评价数: rated by the enterprise")
    satisfied: int = Field(description="满意数: last rating in the top three levels")
    reopened: int = Field(description="重办数: reopened at least once")
    returned: int = Field(
        description="退单数: by department, the requests this department returned; by any "
        "other grouping, the requests returned at least once"
    )
    overdue_now: int = Field(description="当前超期数: marked overdue now")
    tasks: int | None = _task_count(
        "任务数: the tasks (协办 and 下派) of this department, not cancelled, of the requests "
        "received in the period"
    )
    tasks_due: int | None = _task_count(
        "任务应答复数: those tasks replied to (on time or late), or still open after their task "
        "deadline passed; a task whose deadline is still ahead is not counted: "
        "tasks_replied + tasks_overdue_open"
    )
    tasks_replied: int | None = _task_count("任务答复数: those tasks replied to (done)")
    tasks_on_time: int | None = _task_count(
        "任务按时答复数: those tasks replied to within their task deadline"
    )
    tasks_overdue_open: int | None = _task_count(
        "任务超期未答复数: those tasks still open (pending or signed) after their task "
        "deadline passed"
    )
    escalations: dict[str, int] = Field(
        description="升级数 by level: requests whose escalation level has reached each level"
    )
    sign_hours_mean: float | None = Field(
        description="平均签收用时: mean working hours from the dispatch to the signing"
    )
    sign_hours_p90: float | None = Field(description="签收用时 P90, working hours (nearest rank)")
    reply_hours_mean: float | None = Field(
        description="平均答复用时: mean working hours from the signing to the first reply"
    )
    reply_hours_p90: float | None = Field(description="答复用时 P90, working hours (nearest rank)")
    response_rate: float | None = Field(description=_rate_description("response_rate"))
    on_time_rate: float | None = Field(description=_rate_description("on_time_rate"))
    resolution_rate: float | None = Field(description=_rate_description("resolution_rate"))
    satisfaction_rate: float | None = Field(description=_rate_description("satisfaction_rate"))
    task_on_time_rate: float | None = Field(description=_rate_description("task_on_time_rate"))


class RatesReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="start of the period, included")
    to: datetime = Field(description="end of the period, excluded")
    group_by: GroupBy
    grid_len: int | None = None
    escalation_levels: list[int]
    rows: list[RatesRow]
