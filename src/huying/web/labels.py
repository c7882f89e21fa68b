"""What the console says, in zh-CN: names of states, actions, roles, deadlines, ratings and
fields, and the services' errors told to a clerk in Chinese.

State and transition labels come from the workflow file first (its `label:`); the names here
cover what a file does not label (the submit row, roles, fields) and the wording of buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from huying import errors
from huying.api.problems import status_of
from huying.durations import parse_duration
from huying.reports import service as reports

STATES = {
    "submitted": "已受理",
    "awaiting_dispatch": "待派单",
    "dispatched": "待签收",
    "in_progress": "办理中",
    "suspended": "已挂起",
    "replied": "已答复",
    "return_review": "退单审核中",
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
    "request_suspension": "申请挂起",
    "decide_suspension": "审批挂起",
    "resume": "恢复办理",
    "reply": "答复",
    "rate": "录入评价",
    "reassign": "改派",
    "accept_return": "同意退单",
    "refuse_return": "不同意退单",
    "delegate": "下派",
    "task_sign": "签收任务",
    "task_reply": "答复任务",
    "cancel_task": "撤销任务",
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
    "request_suspension": "申请挂起",
    "decide_suspension": "审批挂起",
    "resume": "恢复办理",
    "reply": "答复",
    "rate": "评价",
    "reassign": "改派",
    "accept_return": "同意退单",
    "refuse_return": "不同意退单",
    "delegate": "下派",
    "task_sign": "签收任务",
    "task_reply": "答复任务",
    "cancel_task": "撤销任务",
    "task_warn": "任务预警",
    "task_overdue": "任务超期",
    "task_escalate": "任务升级",
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
    "monitor": "监控系统",
    "system": "系统",
    "lead_department": "主办部门",  # a workflow file's name for the lead department's clerks
    "task_department": "任务承办单位",  # … and for the clerks of a task's department
}

DEADLINE_KINDS = {
    "dispatch": "派单时限",
    "sign": "签收时限",
    "reply": "答复时限",
    "feedback": "评价时限",
    "suspension": "挂起期限",
    "review": "退单审核时限",
    "task": "任务时限",
}

TASK_KINDS = {"assist": "协办", "delegate": "下派"}
TASK_STATUSES = {"pending": "待签收", "signed": "办理中", "done": "已答复", "cancelled": "已撤销"}

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

URGENCIES = reports.URGENCY_NAMES  # one list of urgency names, the reports' own

SOURCES = {
    "grid": "网格员上报",
    "hotline": "12345 热线",
    "phone": "来电登记",
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
    "reason_code": "挂起原因",
    "length": "挂起时长",
    "departments": "下派单位",
    "limit": "任务时限",
    "task_id": "任务",
    "attachment_ids": "佐证材料",
    "level": "督办等级",
    "rating": "评价",
    "body": "表单",
}

# Why the workflow refused: the guards of huying.workflow.library, by name.
REFUSALS = {
    "has_lead_department": "未指定主办部门",
    "under_reopen_limit": "已达到重办次数上限",
    "extension_pending": "没有待审批的延期申请",
    "no_extension_pending": "已有一项延期申请在等待审批",
    "rating_satisfied": "评价不在满意等级内",
    "rating_unsatisfied": "评价不在不满意等级内",
    "extension_in_time": "办理时限已过，延期须在时限届满前申请",
    "under_extension_limit": "该时限的延期次数已用完",
    "suspension_in_time": "办理时限已过（或未在计时），超期诉求不能挂起",
    "under_suspension_limit": "该诉求的挂起次数已用完",
    "suspension_pending": "没有待审批的挂起申请",
    "no_suspension_pending": "已有一项挂起申请在等待审批",
    "suspension_without_approval": "挂起须经审批",
    "approved": "审批意见不是同意",
    "refused": "审批意见不是不同意",
    "own_open_task": "该任务不是本单位未完成的任务",
    "task_pending": "该任务已签收",
    "has_task_to_sign": "本单位没有待签收的任务",
    "task_open": "该任务已完成或已撤销",
    "has_open_tasks": "没有未完成的任务",
    "never_replied": "诉求已答复过，不能再退单",
    "returns_reviewed": "退单无需审核",
    "returns_not_reviewed": "退单须经派单员审核",
    "returned_from_dispatched": "该退单不是签收前提出的",
    "returned_from_in_progress": "该退单不是办理中提出的",
}

PYDANTIC = {
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


# How one code is said: from the error, the action tried and the request's state; None to
# leave it to the code of the broader kind.
Say = Callable[[errors.HuyingError, str | None, str | None], str | None]


def explain(
    exc: errors.HuyingError, *, action_name: str | None = None, state_name: str | None = None
) -> Problem:
    """The error in Chinese, with the HTTP status the API gives the same error. The wording
    follows the error's code and its fields, never its English `detail`."""
    status = status_of(exc)[0]
    for code in exc.all_codes:
        said = BY_CODE.get(code)
        message = said(exc, action_name, state_name) if said else None
        if message is not None:
            return Problem(status, message)
    return Problem(status, f"操作未能完成：{exc.detail}")


def _what(act: str | None) -> str:
    return f"“{action(act)}”" if act else "此操作"


def _verb(act: str | None) -> str:
    return action(act) if act else "执行此操作"


def _now(exc: errors.HuyingError) -> str:
    allowed: Sequence[str] = exc.extra.get("allowed") or ()
    return f"现在可以：{actions(allowed)}。" if allowed else "现在您没有可执行的操作。"


def _stale(exc: errors.HuyingError, act: str | None, current: str | None) -> str:
    current_version = exc.extra.get("current_version")
    tail = f"（当前为第 {current_version} 版）" if current_version else ""
    return f"该诉求在您打开页面后已被他人更新{tail}，请查看最新进展后再操作。"


def _not_allowed(exc: errors.HuyingError, act: str | None, current: str | None) -> str:
    where = f"“{state(current)}”" if current else "当前"
    return f"诉求处于{where}状态，不能{_verb(act)}。{_now(exc)}"


def _refused(exc: errors.HuyingError, act: str | None, current: str | None) -> str:
    refusals: Sequence[str] = exc.extra.get("refusals") or ()
    said = "；".join(dict.fromkeys(REFUSALS.get(r, r) for r in refusals)) or "条件不满足"
    return f"无法{_verb(act)}：{said}。{_now(exc)}"


def _missing(exc: errors.HuyingError, act: str | None, current: str | None) -> str:
    names: Sequence[str] = exc.extra.get("fields") or ()
    return "请填写：" + "、".join(field(n) for n in names) + "。"


def _invalid_fields(exc: errors.HuyingError, act: str | None, current: str | None) -> str | None:
    errs: Sequence[Mapping[str, Any]] = exc.extra.get("errors") or ()
    if not errs:
        return None
    said = []
    for e in errs:
        loc = [str(p) for p in e.get("loc", ()) if not str(p).isdigit()]
        name = field(loc[0]) if loc else "表单"
        said.append(PYDANTIC.get(str(e.get("type")), "{f}填写有误").format(f=name))
    return "；".join(dict.fromkeys(said)) + "。"


def _unknown(exc: errors.HuyingError, act: str | None, current: str | None) -> str | None:
    kind = exc.extra.get("kind")
    if kind == "request":
        return "找不到要合并到的诉求，请核对编号。"
    if kind == "attachment":
        return "佐证材料无效或已被使用，请重新上传。"
    if kind == "department":
        return "部门不存在：" + "、".join(str(c) for c in exc.extra.get("codes") or ()) + "。"
    return None


def _fixed(message: str) -> Say:
    return lambda exc, act, current: message


BY_CODE: dict[str, Say] = {
    "not_authenticated": _fixed("登录已过期，请重新登录。"),
    "unknown_action": lambda exc, act, current: f"没有{_what(act)}这项操作。",
    "not_found": _fixed("找不到该诉求，或您无权查看。"),
    "forbidden": lambda exc, act, current: f"您的账号无权执行{_what(act)}。",
    "precondition_failed": _stale,
    "changed_meanwhile": _fixed("该诉求刚被其他人更新，请刷新页面后重试。"),
    "refused": _refused,
    "conflict": _not_allowed,
    "missing_fields": _missing,
    "invalid_fields": _invalid_fields,
    "unknown_reference": _unknown,
    "merge_into_itself": _fixed("不能把诉求合并到它自己。"),
    "merge_target_closed": _fixed("要合并到的诉求已不予受理或已被合并，不能作为合并目标。"),
    "unknown_reason_code": _fixed("请选择有效的挂起原因。"),
    "too_large": _fixed("上传的文件超过大小上限。"),
    "suspension_too_long": lambda exc, act, current: "挂起时长超过上限，请缩短。",
    "duration_not_positive": _fixed("时长必须大于零。"),
    "extension_too_long": _fixed("延期时长超过该时限允许的延期总时长上限，请缩短。"),
    "level_above_ladder": _fixed("督办等级超过了逐级升级的最高级。"),
    "same_lead": _fixed("改派的主办部门与现主办部门相同，请选择其他部门。"),
    "not_below_lead": _fixed("只能下派给主办部门的下级单位。"),
    "task_already_open": _fixed("该单位在本诉求上已有未完成的任务。"),
    "has_active_children": _fixed("该部门下仍有在用的下级部门，请先停用或调整这些下级部门。"),
    "invalid_input": lambda exc, act, current: f"输入有误：{exc.detail}",
    "unavailable": _fixed("系统暂时无法访问数据库，请稍后重试。"),
}


_UNITS = ((86400, "天"), (3600, "小时"), (60, "分钟"), (1, "秒"))


def _amount(seconds: float, units: Sequence[tuple[int, str]] = _UNITS) -> tuple[str, str]:
    """The seconds as a number of the largest unit they are a whole number of: 5400 → 90 分钟."""
    for size, name in units:
        count = seconds / size
        if count and count.is_integer():
            return f"{count:.0f}", name
    return f"{seconds:g}", units[-1][1]


def duration(text: str) -> str:
    """'5 working days' → '5 个工作日', '2 working hours' → '2 个工作小时', '30 minutes' → '30 分钟',
    from what `huying.durations` reads in the text; ISO 8601 ('PT2S') and text it cannot read
    are shown as written."""
    try:
        parsed = parse_duration(text)
    except ValueError:
        return text
    if parsed.kind == "working_days":
        return f"{parsed.days} 个工作日"
    if parsed.kind == "working_hours":
        number, unit = _amount(parsed.seconds, _UNITS[1:])
        return f"{number} 个工作{unit}"
    if parsed.text.upper().startswith("P"):
        return text
    return " ".join(_amount(parsed.seconds))


# 来电登记 (the phone intake): its fields, and what the submit's refusals say under each.
INTAKE_FIELDS = {
    "enterprise": "企业",
    "enterprise_uscc": "企业",
    "category": "诉求类别",
    "title": "诉求标题",
    "description": "诉求内容",
    "urgency": "紧急程度",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "grid_code": "网格编码",
    "source": "来电渠道",
}

INTAKE_REFUSALS = {
    "enterprise_uscc": "该企业未登记或已停用，请重新选择。",
    "category": "该类别不在呼叫清单上或已停用，请重新选择。",
    "urgency": "请选择有效的紧急程度。",
    "grid_code": "网格编码不符合本区的编码规则，请核对或留空（留空则用企业登记的网格）。",
}

# The channels a call comes in by, each a `source` the submit takes (SubmitIn.source).
INTAKE_SOURCES = (("phone", "直接来电"), ("hotline", "12345 热线转来"))
