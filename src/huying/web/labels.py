"""What the console says, in zh-CN: names of states, actions, roles, deadlines, ratings and
fields, and the services' errors told to a clerk in Chinese.

State and transition labels come from the workflow file first (its `label:`); the names here
cover what a file does not label (the submit row, roles, fields) and the wording of buttons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from huying import errors
from huying.api.problems import STATUS

STATES = {
    "submitted": "已受理",
    "awaiting_dispatch": "待派单",
    "dispatched": "待签收",
    "in_progress": "办理中",
    "suspended": "已挂起",
    "replied": "已答复",
    "closed": "已办结",
    "rejected": "不予受理",
    "merged": "已合并",
}

# Button wording: what the clerk does. Timeline rows use TIMELINE below.
ACTIONS = {
    "dispatch": "派单",
    "reject": "不予受理",
    "merge": "合并",
    "sign": "签收",
    "return": "退单",
    "request_extension": "申请延期",
    "decide_extension": "审批延期",
    "suspend": "挂起",
    "resume": "恢复办理",
    "reply": "答复",
    "rate": "录入评价",
    "urge": "催办",
    "supervise": "督办",
}

TIMELINE = {
    "submit": "提交诉求",
    "route": "自动分拨",
    "dispatch": "人工派单",
    "reject": "不予受理",
    "merge": "合并",
    "sign": "签收",
    "return": "退单",
    "request_extension": "申请延期",
    "decide_extension": "审批延期",
    "suspend": "挂起",
    "resume": "恢复办理",
    "reply": "答复",
    "rate": "评价",
    "auto_close": "超期自动办结",
    "urge": "催办",
    "supervise": "督办",
    "warn": "时限预警",
    "overdue": "超期",
    "escalate": "逐级升级",
}

ROLES = {
    "admin": "系统管理员",
    "dispatcher": "派单员",
    "supervisor": "督办员",
    "department": "部门办事员",
    "integration": "对接系统",
    "system": "系统",
}

DEADLINE_KINDS = {
    "dispatch": "派单时限",
    "sign": "签收时限",
    "reply": "答复时限",
    "feedback": "评价时限",
}

DEADLINE_STATUSES = {
    "running": "计时中",
    "paused": "已暂停",
    "met": "按时完成",
    "missed": "已超期",
    "cancelled": "已取消",
}

RATINGS = {
    "very_satisfied": "非常满意",
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
    "very_dissatisfied": "非常不满意",
}

URGENCIES = {"normal": "一般", "urgent": "紧急"}

SOURCES = {
    "grid": "网格员上报",
    "hotline": "12345 热线",
    "portal": "企业门户",
    "staff": "工作人员录入",
    "api": "系统接口",
}

FIELDS = {
    "reason": "原因",
    "note": "备注",
    "content": "答复内容",
    "resolved": "是否解决",
    "extend_by": "延期时长",
    "lead_department": "主办部门",
    "co_departments": "协办部门",
    "target_id": "合并到的诉求",
    "approved": "审批意见",
    "level": "督办等级",
    "rating": "评价",
    "body": "表单",
}

# Why the workflow refused (the guards' refusals in huying.workflow.library).
_REFUSALS = {
    "no lead department is named": "未指定主办部门",
    "the reopen limit is reached": "已达到重办次数上限",
    "no extension request is pending": "没有待审批的延期申请",
    "an extension request is already pending a decision": "已有一项延期申请在等待审批",
    "the rating is not in the top three levels": "评价不在满意等级内",
    "the rating is not in the bottom two levels": "评价不在不满意等级内",
}

_PYDANTIC = {
    "missing": "请填写{f}",
    "string_too_short": "请填写{f}",
    "string_too_long": "{f}过长，请精简",
    "bool_parsing": "请选择{f}",
    "bool_type": "请选择{f}",
    "int_parsing": "{f}应为数字",
    "int_type": "{f}应为数字",
    "literal_error": "请选择有效的{f}",
    "value_error": "{f}格式不正确",
    "greater_than_equal": "{f}超出范围",
    "less_than_equal": "{f}超出范围",
    "too_long": "{f}选择过多",
    "list_type": "{f}填写有误",
    "extra_forbidden": "表单含有无法识别的字段（{f}）",
}


def state(name: str, spec_label: str = "") -> str:
    return spec_label or STATES.get(name, name)


def action(name: str) -> str:
    return ACTIONS.get(name) or TIMELINE.get(name, name)


def actions(names: Iterable[str]) -> str:
    return "、".join(action(n) for n in names)


def field(name: str) -> str:
    return FIELDS.get(name, name)


@dataclass(frozen=True)
class Problem:
    """An error of the services as the page shows it."""

    status: int
    message: str


def explain(
    exc: errors.HuyingError, *, action_name: str | None = None, state_name: str | None = None
) -> Problem:
    """The error in Chinese, with the HTTP status the API gives the same error."""
    status = STATUS.get(type(exc), (400, ""))[0]
    return Problem(status, _message(exc, action_name, state_name))


def _message(exc: errors.HuyingError, act: str | None, current: str | None) -> str:
    what = f"“{action(act)}”" if act else "此操作"
    detail = exc.detail
    if isinstance(exc, errors.NotAuthenticated):
        return "登录已过期，请重新登录。"
    if isinstance(exc, errors.NotFound):
        if detail.startswith("unknown action"):
            return f"没有{what}这项操作。"
        return "找不到该诉求，或您无权查看。"
    if isinstance(exc, errors.Forbidden):
        return f"您的账号无权执行{what}。"
    if isinstance(exc, errors.PreconditionFailed):
        current_version = exc.extra.get("current_version")
        tail = f"（当前为第 {current_version} 版）" if current_version else ""
        return f"该诉求在您打开页面后已被他人更新{tail}，请查看最新进展后再操作。"
    if isinstance(exc, errors.Conflict):
        return _conflict(exc, action(act) if act else "执行此操作", current)
    if isinstance(exc, errors.InvalidInput):
        return _invalid(exc)
    if isinstance(exc, errors.Unavailable):
        return "系统暂时无法访问数据库，请稍后重试。"
    return f"操作未能完成：{detail}"


def _conflict(exc: errors.HuyingError, verb: str, current: str | None) -> str:
    detail = exc.detail
    allowed: Sequence[str] = exc.extra.get("allowed") or ()
    now = f"现在可以：{actions(allowed)}。" if allowed else "现在您没有可执行的操作。"
    if "changed meanwhile" in detail:
        return "该诉求刚被其他人更新，请刷新页面后重试。"
    if " refused: " in detail:
        reason = detail.split(" refused: ", 1)[1]
        said = "；".join(_REFUSALS.get(r.strip(), r.strip()) for r in reason.split(";"))
        return f"无法{verb}：{said}。{now}"
    where = f"“{state(current)}”" if current else "当前"
    return f"诉求处于{where}状态，不能{verb}。{now}"


_REQUIRED = re.compile(r"^[a-z_]+: (?P<fields>[a-z_, ]+) required$")
_UNKNOWN_DEPT = re.compile(r"^unknown department\(s\): (?P<codes>.+)$")


def _invalid(exc: errors.HuyingError) -> str:
    detail = exc.detail
    errs: Sequence[Mapping[str, Any]] = exc.extra.get("errors") or ()
    if errs:
        said = []
        for e in errs:
            loc = [str(p) for p in e.get("loc", ()) if not str(p).isdigit()]
            name = field(loc[0]) if loc else "表单"
            said.append(_PYDANTIC.get(str(e.get("type")), "{f}填写有误").format(f=name))
        return "；".join(dict.fromkeys(said)) + "。"
    if m := _REQUIRED.match(detail):
        names = [n.strip() for n in m["fields"].split(",")]
        return "请填写：" + "、".join(field(n) for n in names) + "。"
    if m := _UNKNOWN_DEPT.match(detail):
        return f"部门不存在：{m['codes']}。"
    if "merged into itself" in detail:
        return "不能把诉求合并到它自己。"
    if detail.startswith("target_id: no request"):
        return "找不到要合并到的诉求，请核对编号。"
    if detail.startswith("target_id: request"):
        return "要合并到的诉求已不予受理或已被合并，不能作为合并目标。"
    return f"输入有误：{detail}"


_DURATION = re.compile(
    r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<working>working\s+)?(?P<unit>second|minute|hour|day|week)s?$"
)
_UNITS = {"second": "秒", "minute": "分钟", "hour": "小时", "day": "天", "week": "周"}


def duration(text: str) -> str:
    """'5 working days' → '5 个工作日', '2 working hours' → '2 个工作小时', '30 minutes' → '30 分钟'."""
    m = _DURATION.match(text.strip().lower())
    if m is None:
        return text
    n, unit = m["n"], m["unit"]
    if m["working"]:
        return f"{n} 个工作日" if unit == "day" else f"{n} 个工作{_UNITS[unit]}"
    return f"{n} {_UNITS[unit]}"
