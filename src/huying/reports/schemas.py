"""The rates report as the API returns it; the same columns, in Chinese, in the exports."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

GroupBy = Literal["department", "category", "chain", "grid", "urgency"]
Format = Literal["json", "csv", "xlsx"]


class RatesRow(BaseModel):
    """One group's figures. Every count is a number of requests received in the period."""

    model_config = ConfigDict(frozen=True)

    key: str | None = Field(
        description="the department, category or chain code, the grid-code prefix, the "
        "urgency; null for requests without one (e.g. not dispatched now)"
    )
    name: str
    received: int = Field(description="受理数: received in the period")
    dispatched: int = Field(description="派单数: assigned to a lead department at least once")
    signed: int = Field(description="签收数: signed for by the lead department")
    signed_on_time: int = Field(description="按时签收数: signed by the sign deadline")
    replied: int = Field(description="答复数: replied to at least once")
    replied_on_time: int = Field(
        description="按期答复数: the first reply came by the first reply deadline"
    )
    closed: int = Field(description="办结数: closed")
    resolved: int = Field(description="解决数: closed as resolved")
    rated: int = Field(description="评价数: rated by the enterprise")
    satisfied: int = Field(description="满意数: last rating in the top three levels")
    reopened: int = Field(description="重办数: reopened at least once")
    returned: int = Field(
        description="退单数: by department, the requests this department returned; by any "
        "other grouping, the requests returned at least once"
    )
    overdue_now: int = Field(description="当前超期数: marked overdue now")
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
    response_rate: float | None = Field(description="响应率 = signed_on_time / dispatched")
    on_time_rate: float | None = Field(description="按期办结率 = replied_on_time / replied")
    resolution_rate: float | None = Field(description="解决率 = resolved / closed")
    satisfaction_rate: float | None = Field(description="满意率 = satisfied / rated")


class RatesReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from", description="start of the period, included")
    to: datetime = Field(description="end of the period, excluded")
    group_by: GroupBy
    grid_len: int | None = None
    escalation_levels: list[int]
    rows: list[RatesRow]
