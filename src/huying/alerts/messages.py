"""What a group robot says, in Chinese, pure: one notice per event, one digest for many.

A leader reads it on a phone between meetings, so the first line says what happened and how
serious (预警 / 超期 / 升级 and the level), then the request's number and title, the
enterprise, the lead department, the deadline and how late, the leaders it concerns and the
link to the request in the console. Warnings, overdue marks, escalations and supervisions
(the events that carry a deadline or the leaders told) get that full form; every other event
a short line with the step's label.

The request's title, enterprise and department are read when the message is made (`Facts`),
the deadline and the leaders from the event itself, as they were when it fired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

WEEKDAYS = "一二三四五六日"
DEADLINES = {
    "dispatch": "派单时限",
    "sign": "签收时限",
    "reply": "答复时限",
    "feedback": "评价时限",
    "review": "退单审核时限",
    "task": "任务时限",
}
# The kind of each timer event (the task's own ladder reads the same, marked 任务).
WARNINGS = frozenset({"request.warning", "request.task_warning"})
OVERDUES = frozenset({"request.overdue", "request.task_overdue"})
ESCALATIONS = frozenset({"request.escalated", "request.task_escalated", "request.supervised"})
RICH = WARNINGS | OVERDUES | ESCALATIONS


@dataclass(frozen=True)
class Facts:
    """The request as it stands: what the event's own data does not say."""

    number: str
    title: str
    enterprise: str  # its name, else its USCC
    department: str  # the lead department's name, else its code; "" while undispatched


@dataclass(frozen=True)
class Leader:
    name: str
    title: str
    department: str
    mobile: str  # "" when the directory has none

    @property
    def called(self) -> str:
        """张三（局长）"""
        return f"{self.name}（{self.title}）" if self.title else self.name


@dataclass(frozen=True)
class Notice:
    """One message's content, before a platform shapes it."""

    title: str  # the first line, also the markdown title
    lines: tuple[str, ...]  # the body, line by line
    link: str  # the request's page in the console; "" for none
    leaders: tuple[Leader, ...]  # to mention (by mobile where the platform can)
    summary: str  # the one line a digest lists it by


def when(moment: datetime, tz: tzinfo) -> str:
    """11月18日 周三 10:00, in the calendar's time zone."""
    local = moment.astimezone(tz)
    return f"{local.month}月{local.day}日 周{WEEKDAYS[local.weekday()]} {local:%H:%M}"


def span(seconds: float) -> str:
    """2天3小时 / 3小时05分 / 45分钟 / 不足1分钟: clock time, as a leader counts lateness."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return "不足1分钟"
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        days, hours = divmod(hours, 24)
        return f"{days}天{hours}小时"
    return f"{hours}小时{minutes:02d}分" if hours else f"{minutes}分钟"


def leaders(notify: Any) -> tuple[Leader, ...]:
    """The leaders an escalation's `notify` names (`huying.directory.notify.resolve`), each
    once, in the rung's order."""
    found: dict[tuple[str, str], Leader] = {}
    for group in notify if isinstance(notify, list) else ():
        for x in group.get("leaders") or () if isinstance(group, Mapping) else ():
            if not isinstance(x, Mapping) or not x.get("name"):
                continue
            leader = Leader(
                name=str(x["name"]),
                title=str(x.get("title") or ""),
                department=str(x.get("department_name") or x.get("department") or ""),
                mobile=str(x.get("phone") or ""),
            )
            found.setdefault((leader.name, leader.mobile), leader)
    return tuple(found.values())


def _due(data: Mapping[str, Any]) -> datetime | None:
    raw = data.get("due_at")
    try:
        return datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def notice(
    *,
    event_type: str,
    data: Mapping[str, Any],
    occurred_at: datetime,
    facts: Facts | None,
    label: str,
    link: str,
    tz: tzinfo,
) -> Notice:
    """The notice of one event. `label` is the step's name in the workflow (预警, 派单 …)."""
    summary = data.get("request")
    number = facts.number if facts else ""
    if not number and isinstance(summary, Mapping):
        number = str(summary.get("number") or "")
    title = facts.title if facts else ""
    named = f"{number}「{title}」" if title else number or "（无关联诉求）"
    if event_type not in RICH:
        dept = f"（{facts.department}）" if facts and facts.department else ""
        line = f"【{label or event_type}】{named}{dept}"
        return Notice(line, (), link, (), line)

    level = data.get("level")
    if event_type in WARNINGS:
        head = "预警"
    elif event_type in OVERDUES:
        head = "超期"
    elif event_type == "request.supervised":
        head = f"督办·{level}级" if level else "督办"
    else:
        head = f"升级·{level}级" if level else "升级"
    if event_type.startswith("request.task_"):
        head = f"任务{head}"
    body: list[str] = []
    if facts is not None:
        body.append(f"企业：{facts.enterprise}")
        if facts.department:
            body.append(f"主办部门：{facts.department}")
    if data.get("department") and event_type.startswith("request.task_"):
        body.append(f"任务承办单位：{data['department']}")
    due = _due(data)
    late = ""
    if due is not None:
        kind = DEADLINES.get(str(data.get("deadline") or ""), "办理时限")
        body.append(f"{kind}：{when(due, tz)}")
        gap = (occurred_at - due).total_seconds()
        late = f"已超期 {span(gap)}" if gap >= 0 else f"剩余 {span(-gap)}"
        body.append(late)
    told = leaders(data.get("notify"))
    if told:
        body.append("请关注：" + "、".join(leader.called for leader in told))
    first = f"【{head}】{named}"
    short = f"{first}{'，' + late if late else ''}"
    return Notice(first, tuple(body), link, told, short)


def digest(notices: Sequence[Notice], *, limit_note: str) -> Notice:
    """Many notices folded into one message: a robot takes about 20 a minute, so past that
    the due ones go together, in order, each on its line; every leader they name is
    mentioned once."""
    told: dict[tuple[str, str], Leader] = {}
    for n in notices:
        for leader in n.leaders:
            told.setdefault((leader.name, leader.mobile), leader)
    lines = tuple(f"{i}. {n.summary}" for i, n in enumerate(notices, start=1))
    title = f"【呼应提醒汇总】共 {len(notices)} 条"
    return Notice(title, (limit_note, *lines), "", tuple(told.values()), title)


def connection_notice(*, description: str, now: datetime, tz: tzinfo, link: str) -> Notice:
    """What 发送测试消息 sends: that the robot is reached, when, and for which subscription."""
    title = "【呼应测试消息】群机器人已接通"
    lines = (
        f"发送时间：{when(now, tz)}",
        *((f"订阅说明：{description}",) if description else ()),
        "此后本群将收到所订阅的预警、超期、升级等提醒。",
    )
    return Notice(title, lines, link, (), title)
