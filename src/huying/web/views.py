"""Requests as the console's pages show them: each deadline with its time left (in working
time for working-time limits), a colour mark, and Chinese names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from huying.calendar import BusinessCalendar
from huying.durations import parse_duration
from huying.requests.schemas import DeadlineOut, RequestOut, TimelineOut
from huying.settings import DEFAULT_SUSPENSION_REASONS, DEFAULT_URGENCY
from huying.web import labels
from huying.web.states import StateNames

if TYPE_CHECKING:
    from huying.directory.models import Enterprise

Mark = Literal["overdue", "warning", "ok", "paused", "done", "none"]
MARK_LABELS: dict[str, str] = {
    "overdue": "超期",
    "warning": "预警",
    "ok": "正常",
    "paused": "暂停计时",
    "done": "",
    "none": "",
}
WEEKDAYS = "一二三四五六日"


def when(moment: datetime | None, tz: tzinfo) -> str:
    """2026-11-18 周三 10:00, in the calendar's time zone."""
    if moment is None:
        return ""
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d} 周{WEEKDAYS[local.weekday()]} {local:%H:%M}"


def span(seconds: float, *, days: bool = False) -> str:
    """3小时05分 / 45分钟 / 不足1分钟; with `days` (calendar time), 4天2小时 past three days."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "不足1分钟"
    hours, minutes = divmod(minutes, 60)
    if days and hours >= 24 * 3:
        whole_days, hours = divmod(hours, 24)
        return f"{whole_days}天{hours}小时"
    return f"{hours}小时{minutes:02d}分" if hours else f"{minutes}分钟"


@dataclass(frozen=True)
class DeadlineView:
    kind: str
    kind_label: str
    status: str
    status_label: str
    duration: str
    due_at: datetime
    due_text: str
    mark: Mark
    left: str  # 剩余 3小时05分 / 已超期 1小时 / ""
    working: bool  # whether the limit counts working time only
    escalations: int
    completed_text: str

    @property
    def mark_label(self) -> str:
        return MARK_LABELS[self.mark]

    @property
    def clock_text(self) -> str:
        """How the time left is counted: working time only, or around the clock."""
        if self.mark not in ("ok", "warning", "overdue"):
            return ""
        return "工作时间" if self.working else "自然时间"

    @property
    def due_label(self) -> str:
        return "原定截止" if self.mark == "paused" else "截止"


def deadline_view(d: DeadlineOut, *, now: datetime, calendar: BusinessCalendar) -> DeadlineView:
    try:
        working = parse_duration(d.duration).kind != "calendar"
    except ValueError:
        working = False
    open_ = d.completed_at is None
    mark: Mark = "done"
    left = ""
    if open_ and d.status == "paused":
        mark, left = "paused", "挂起期间暂停计时"
    elif open_:
        ahead = now < d.due_at and d.status != "missed"
        a, b = (now, d.due_at) if ahead else (d.due_at, now)
        seconds = (
            calendar.working_seconds_between(a, b) if working else max(0.0, (b - a).total_seconds())
        )
        if ahead:
            warned = d.warned or (d.warn_at is not None and now >= d.warn_at)
            mark = "warning" if warned else "ok"
            left = f"剩余 {span(seconds, days=not working)}"
        else:
            mark = "overdue"
            left = f"已超期 {span(seconds, days=not working)}"
    tz = calendar.tz
    return DeadlineView(
        kind=d.kind,
        kind_label=labels.DEADLINE_KINDS.get(d.kind, d.kind),
        status=d.status,
        status_label=labels.DEADLINE_STATUSES.get(d.status, d.status),
        duration=d.duration,
        due_at=d.due_at,
        due_text=when(d.due_at, tz),
        mark=mark,
        left=left,
        working=working,
        escalations=d.escalations or 0,
        completed_text=when(d.completed_at, tz),
    )


_MARK_ORDER: dict[str, int] = {"overdue": 0, "warning": 1, "ok": 2, "paused": 3}


@dataclass(frozen=True)
class RequestView:
    """One request on a page: the presented request plus what the console adds."""

    r: RequestOut
    state_label: str
    deadlines: list[DeadlineView]
    current: DeadlineView | None  # the open deadline that matters most now
    co_handled: bool  # the viewer's department co-handles it (does not lead it)
    final: bool  # its state is a final one of its workflow
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def mark(self) -> Mark:
        if self.r.overdue and not self.final and not self.co_handled:  # the lead's lateness
            return "overdue"
        return self.current.mark if self.current else "none"

    @property
    def mark_label(self) -> str:
        return MARK_LABELS[self.mark]

    @property
    def urgent(self) -> bool:
        """Its urgency is not the default one: the lists and the page mark it."""
        return self.r.urgency != DEFAULT_URGENCY

    @property
    def urgency_label(self) -> str:
        return labels.URGENCIES.get(self.r.urgency, self.r.urgency)


def request_view(
    r: RequestOut,
    *,
    now: datetime,
    calendar: BusinessCalendar,
    state_labels: StateNames,
    department: str | None = None,
) -> RequestView:
    deadlines = [deadline_view(d, now=now, calendar=calendar) for d in r.deadlines]
    lead = r.lead_department.code if r.lead_department else None
    # What matters now to the viewer: a task department's own task deadline, not the
    # lead's; the lead's (and everyone else's) are the request's own deadlines.
    mine = {
        t.deadline.task_id
        for t in r.tasks
        if department is not None
        and department != lead
        and t.department.code == department
        and t.deadline is not None
    }
    if mine:
        candidates = [v for v, d in zip(deadlines, r.deadlines, strict=True) if d.task_id in mine]
    else:
        candidates = [v for v, d in zip(deadlines, r.deadlines, strict=True) if d.task_id is None]
    open_ = [d for d in candidates if d.mark in _MARK_ORDER]
    current = min(open_, key=lambda d: (_MARK_ORDER[d.mark], d.due_at), default=None)
    return RequestView(
        r=r,
        state_label=state_labels.get(r.state) or labels.state(r.state),
        deadlines=deadlines,
        current=current,
        co_handled=department is not None and lead != department,
        final=r.state in state_labels.final,
    )


def request_views(
    items: Sequence[RequestOut],
    *,
    now: datetime,
    calendar: BusinessCalendar,
    state_labels: StateNames,
    department: str | None = None,
) -> list[RequestView]:
    return [
        request_view(
            r, now=now, calendar=calendar, state_labels=state_labels, department=department
        )
        for r in items
    ]


def stored_when(stored: Any, tz: tzinfo) -> str:
    """An instant, or one stored as ISO text (in a request's JSON fields), as the console
    writes times; a value that is no instant as it is, and nothing as an empty string."""
    if not stored:
        return ""
    if isinstance(stored, datetime):
        moment = stored
    else:
        try:
            moment = datetime.fromisoformat(str(stored))
        except ValueError:
            return str(stored)
    if moment.tzinfo is None:  # stored without an offset: UTC, as the database keeps them
        moment = moment.replace(tzinfo=UTC)
    return when(moment, tz)


def suspension_facts(
    held: Mapping[str, Any] | None, *, tz: tzinfo, reasons: Mapping[str, str]
) -> dict[str, str]:
    """A suspension, running or asked (as the request stores it), in the console's words:
    the reason's label from config with the department's own text, how long, when it was
    asked and began, and when it resumes by itself. One reading for the request page and
    the board; a v1 suspension (no reason code, no length) shows what there is."""
    held = held or {}
    code = str(held.get("reason_code") or "")
    label = reasons.get(code, code)
    text = str(held.get("reason") or "")
    length = held.get("length")
    return {
        "reason": "：".join(part for part in (label, text) if part),
        "length": labels.duration(str(length)) if length else "",
        "asked": stored_when(held.get("requested_at"), tz),
        "since": stored_when(held.get("since"), tz),
        "resumes": stored_when(held.get("resumes_at"), tz),
    }


def suspension_lines(r: RequestOut, *, tz: tzinfo, reasons: Mapping[str, str]) -> list[str]:
    """The suspension a request is in, or the one it asked and waits for, in a line each."""
    lines: list[str] = []
    for held, prefix in ((r.suspension, "挂起中"), (r.pending_suspension, "挂起申请待审批")):
        if not held:
            continue
        facts = suspension_facts(held, tz=tz, reasons=reasons)
        parts = [prefix]
        if since := facts["since"] or facts["asked"]:
            parts.append(f"自 {since}")
        if facts["reason"]:
            parts.append(f"原因：{facts['reason']}")
        if facts["length"]:
            parts.append(f"时长 {facts['length']}")
        if facts["resumes"]:
            parts.append(f"预计 {facts['resumes']} 自动恢复")
        lines.append("，".join(parts))
    return lines


@dataclass(frozen=True)
class TimelineRow:
    seq: int
    at: str
    at_iso: str
    action: str
    transition: str
    actor: str
    role: str
    note: str
    details: list[str]


def _details(data: Mapping[str, Any], dept_names: Mapping[str, str]) -> list[str]:
    """What a timeline row's data says, in Chinese (departments by name, durations in words)."""
    details: list[str] = []
    if lead := data.get("lead_department"):
        details.append(f"主办：{dept_names.get(lead, lead)}")
    if co := data.get("co_departments"):
        details.append("协办：" + "、".join(dept_names.get(c, c) for c in co))
    if by := data.get("returned_by"):
        details.append(f"退单部门：{dept_names.get(by, by)}")
    if "approved" in data:
        details.append("审批：同意" if data["approved"] else "审批：不同意")
    if extend_by := data.get("extend_by"):
        details.append(f"延期：{labels.duration(str(extend_by))}")
    if "resolved" in data:
        said = "已解决" if data["resolved"] else "未解决"
        details.append(f"企业确认{said}" if "rating" in data else said)
    if code := data.get("reason_code"):
        details.append(f"挂起原因：{DEFAULT_SUSPENSION_REASONS.get(code, code)}")
    if length := data.get("length"):
        details.append(f"挂起时长：{labels.duration(str(length))}")
    if rating := data.get("rating"):
        details.append(f"评价：{labels.RATINGS.get(rating, rating)}")
    if target := data.get("target_id"):
        details.append(f"合并到诉求 #{target}")
    if kind := data.get("deadline"):
        details.append(labels.DEADLINE_KINDS.get(kind, kind))
    if level := data.get("level"):
        details.append(f"升至 {level} 级")
    notified = [
        str(leader.get("name") or "")
        for group in data.get("notify") or ()
        if isinstance(group, dict)
        for leader in group.get("leaders") or ()
        if isinstance(leader, dict)
    ]
    if any(notified):
        details.append("已通知：" + "、".join(n for n in notified if n))
    return details


def timeline_row(
    t: TimelineOut,
    *,
    actors: Mapping[str, str],
    dept_names: Mapping[str, str],
    state_names: Mapping[str, str],
    tz: tzinfo,
) -> TimelineRow:
    def name(state: str) -> str:
        return state_names.get(state) or labels.state(state)

    if t.from_state is None:
        moved = name(t.to_state)
    elif t.from_state != t.to_state:
        moved = f"{name(t.from_state)} → {name(t.to_state)}"
    else:
        moved = ""
    return TimelineRow(
        seq=t.seq,
        at=when(t.at, tz),
        at_iso=t.at.isoformat(),
        action=labels.TIMELINE.get(t.action, labels.action(t.action)),
        transition=moved,
        actor="系统" if t.actor == "system" else actors.get(t.actor, t.actor),
        role=labels.ROLES.get(t.role, t.role),
        note=t.note or "",
        details=_details(t.data or {}, dept_names),
    )


@dataclass(frozen=True)
class EnterprisePick:
    """An enterprise as the console offers it: in the intake's look-up, where picking it
    fills the contact in, and on a request's page, whose enterprise's contact it shows."""

    uscc: str
    name: str
    contact_name: str
    contact_phone: str

    @classmethod
    def of(cls, enterprise: Enterprise) -> EnterprisePick:
        return cls(
            uscc=enterprise.uscc,
            name=enterprise.name,
            contact_name=enterprise.contact_name or "",
            contact_phone=enterprise.contact_phone or "",
        )
