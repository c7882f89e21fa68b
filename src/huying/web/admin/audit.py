"""The admin page 审计日志: the log of admin writes, newest first, filtered by who, what and
when (dates in the calendar's time zone), paged by "更早的记录", each entry's before and after
side by side with the changed fields marked. It reads `huying.audit.service`, as the API."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from huying.api.deps import Rt
from huying.audit import service as audit
from huying.audit.models import AuditEntry
from huying.auth import service as auth
from huying.errors import InvalidInput
from huying.runtime import Runtime
from huying.web import labels, views
from huying.web import session as web
from huying.web.admin.common import admin_page, field_label
from huying.web.pages import Page

router = APIRouter(include_in_schema=False)
PATH = "/admin/audit"
PAGE_SIZE = 50

TARGETS = {
    "department": "部门",
    "chain": "产业链",
    "category": "呼叫清单",
    "enterprise": "企业",
    "routing_rule": "派单规则",
    "user": "用户",
    "key": "API 密钥",
    "webhook": "Webhook",
    "delivery": "投递",
    "calendar": "工作日历",
}
VERBS = {
    "create": "新建",
    "update": "修改",
    "retire": "停用",
    "restore": "恢复",
    "disable": "停用",
    "enable": "启用",
    "password": "重置密码",
    "revoke": "吊销",
    "pause": "暂停",
    "resume": "恢复",
    "redeliver": "重新投递",
    "import": "导入",
    "delete": "删除",
}
# Fields of the entries that the admin forms do not name (common.FIELDS covers those).
FIELDS = {
    "active": "启用",
    "prefix": "前缀",
    "created_at": "创建时间",
    "revoked_at": "吊销时间",
    "updated_at": "修改时间",
    "retired_at": "停用时间",
    "paused_at": "暂停时间",
    "password_reset": "密码已重置",
    "id": "编号",
}
ACTORS = {"cli": "命令行", "system": "系统"}


def target_label(kind: str) -> str:
    return TARGETS.get(kind, kind)


def action_label(action: str) -> str:
    """ "user.disable" → "用户 · 停用"; an action this page does not know is shown as is."""
    kind, _, verb = action.partition(".")
    if kind in TARGETS and verb in VERBS:
        return f"{TARGETS[kind]} · {VERBS[verb]}"
    return action


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: str
    after: str
    changed: bool


@dataclass(frozen=True)
class EntryView:
    id: int
    at: str
    actor: str
    action: str
    action_label: str
    target: str
    changes: list[Change]
    created: bool  # nothing before: the write created it
    unchanged: int  # fields shown as they were, hidden behind the changed ones


def _value(name: str, value: Any, tz: tzinfo) -> str:
    """A stored value as a person reads it."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if name == "role" and isinstance(value, str):
        return labels.ROLES.get(value, value)
    if name.endswith("_at") and isinstance(value, str):
        try:
            return views.when(datetime.fromisoformat(value), tz)
        except ValueError:
            return value
    if isinstance(value, list):
        return "、".join(_value("", v, tz) for v in value) or "（无）"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, tz: tzinfo
) -> list[Change]:
    """Every field of either side, the changed ones first (in the order they are stored)."""
    old, new = before or {}, after or {}
    names = list(dict.fromkeys([*old, *new]))
    rows = [
        Change(
            field=n,
            label=FIELDS.get(n) or field_label(n),
            before=_value(n, old.get(n), tz) if before is not None else "",
            after=_value(n, new.get(n), tz) if after is not None else "",
            changed=before is None or after is None or old.get(n) != new.get(n),
        )
        for n in names
    ]
    return sorted(rows, key=lambda c: not c.changed)


def _actor_names(s: Session) -> dict[str, str]:
    """How each actor the log may name is shown: a user by name, a key by its name."""
    names = {
        f"user:{u.username}": f"{u.display_name}（{u.username}）" for u in auth.users(session=s)
    }
    names |= {f"key:{k.id}": f"API 密钥 {k.name}（{k.prefix}…）" for k in auth.keys(session=s)}
    return names | ACTORS


def _entry(e: AuditEntry, actors: Mapping[str, str], tz: tzinfo) -> EntryView:
    changes = _changes(e.before, e.after, tz)
    return EntryView(
        id=e.id,
        at=views.when(e.at, tz),
        actor=actors.get(e.actor, e.actor),
        action=e.action,
        action_label=action_label(e.action),
        target=f"{target_label(e.target_type)} {e.target_id}",
        changes=changes,
        created=e.before is None,
        unchanged=sum(not c.changed for c in changes),
    )


@dataclass(frozen=True)
class Asked:
    """The page's filters as typed, and as the log's Filters."""

    values: dict[str, str]
    filters: audit.Filters
    after: int | None


def _day(text: str, tz: tzinfo, *, field: str) -> datetime | None:
    """The first instant of a local date (YYYY-MM-DD) in the calendar's time zone."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: not a date", field=field) from None
    return datetime.combine(day, time(), tzinfo=tz)


def _actor(text: str) -> str | None:
    """A username typed alone means that user: "admin" → "user:admin"."""
    if not text:
        return None
    return text if ":" in text or text in ACTORS else f"user:{text}"


def _asked(request: Request, tz: tzinfo) -> Asked:
    q = request.query_params
    values = {
        name: (q.get(name) or "").strip()[:100]
        for name in ("actor", "action", "target_type", "target_id", "from", "to")
    }
    since = _day(values["from"], tz, field="from")
    last = _day(values["to"], tz, field="to")
    until = last + timedelta(days=1) if last is not None else None
    if since is not None and until is not None and since >= until:
        raise InvalidInput("from after to", field="to")
    filters = audit.Filters(
        actor=_actor(values["actor"]),
        action=values["action"] or None,
        target_type=values["target_type"] or None,
        target_id=values["target_id"] or None,
        since=since,
        until=until,
    )
    return Asked(values, filters, audit.after_id(q.get("cursor") or None))


ASKED_WRONG = {
    "from": "起始日期应为 YYYY-MM-DD 格式的日期",
    "to": "截止日期应为 YYYY-MM-DD 格式的日期，且不早于起始日期",
    "cursor": "翻页位置无效，请从第一页重新查看",
}


def _page(s: Session, rt: Runtime, request: Request) -> Page:
    tz = rt.calendar.tz
    actions, kinds = audit.vocabulary(session=s)
    context: dict[str, Any] = {
        "title": "审计日志",
        "section": "audit",
        "action_options": _action_options(actions, kinds),
        "kind_options": [(k, target_label(k)) for k in kinds],
        "entries": [],
        "more_url": "",
        "first_url": PATH,
        "filtered": False,
        "paged": False,
        "errors": {},
    }
    try:
        asked = _asked(request, tz)
    except InvalidInput as exc:
        field = str(exc.extra.get("field", ""))
        context["errors"] = {field: ASKED_WRONG.get(field, "筛选条件有误")}
        context["asked"] = {
            name: (request.query_params.get(name) or "")[:100]
            for name in ("actor", "action", "target_type", "target_id", "from", "to")
        }
        return Page("admin/audit.html", context, status=422)
    rows, next_cursor = audit.entries(
        session=s, filters=asked.filters, after=asked.after, limit=PAGE_SIZE
    )
    actors = _actor_names(s)
    context["asked"] = asked.values
    context["entries"] = [_entry(e, actors, tz) for e in rows]
    query = {k: v for k, v in asked.values.items() if v}
    if next_cursor:
        context["more_url"] = f"{PATH}?{urlencode({**query, 'cursor': next_cursor})}"
    context["first_url"] = f"{PATH}?{urlencode(query)}" if query else PATH
    context["filtered"] = bool(query)
    context["paged"] = asked.after is not None
    return Page("admin/audit.html", context)


def _action_options(actions: Sequence[str], kinds: Sequence[str]) -> list[tuple[str, str]]:
    """Every write of a kind ("user." → 用户 · 全部), then each action the log holds."""
    every = [(f"{k}.", f"{target_label(k)} · 全部") for k in kinds]
    return every + [(a, action_label(a)) for a in actions]


@router.get(PATH)
def audit_page(request: Request, rt: Rt) -> Response:
    def build(s: Session, who: web.Visitor) -> Page:
        return _page(s, rt, request)

    return admin_page(request, rt, build)
