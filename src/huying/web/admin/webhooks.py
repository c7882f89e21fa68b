"""The admin page Webhook 与投递: the subscriptions (create, 暂停/恢复, 停用, their event types,
发送测试消息) and the dead deliveries with 重新投递. Every form goes through
`huying.alerts.service`, as the API does, so the same checks hold and each write is audited
with the signed-in admin as its actor. A test message is sent after the form's transaction
has ended: no HTTP call is made inside one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from huying.alerts import catalogue, delivery, robots, service
from huying.alerts.schemas import TestOutcome, WebhookIn, WebhookPatch
from huying.alerts.urls import masked
from huying.api.deps import Rt
from huying.directory import service as directory
from huying.errors import HuyingError, NotFound
from huying.runtime import Runtime
from huying.web import session as web
from huying.web import views
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write, form_errors
from huying.web.pages import Page, PostedForm

router = APIRouter(include_in_schema=False)
PATH = "/admin/webhooks"
Id = Path(ge=1, le=2**62)  # a subscription's (FastAPI ties a Path to one name)
# The client a test message goes out with; tests override `delivery.one_off_client`.
Client = Annotated[httpx.Client, Depends(delivery.one_off_client)]

FORMATS = {
    "standard": "标准 Webhook（JSON，签名）",
    "wecom": "企业微信群机器人",
    "dingtalk": "钉钉群机器人",
    "feishu": "飞书群机器人",
}
VIEWS = {"full": "完整内容", "public": "仅公开信息"}
ALL = "*"

# What the page says after a write (`?done=`), naming the subscription or delivery.
DONE = {
    "webhook.create": "已新建订阅 #{}。",
    "webhook.update": "已保存订阅 #{} 的事件类型。",
    "webhook.pause": "已暂停订阅 #{}：新的提醒会排队保存，恢复后按顺序发出。",
    "webhook.resume": "已恢复订阅 #{}：排队中的提醒将按顺序发出。",
    "webhook.deactivate": "已停用订阅 #{}，其待发送的投递已转为失败。",
    "delivery.redeliver": "已将投递 #{} 重新排入发送队列。",
}


@dataclass(frozen=True)
class SubscriptionRow:
    id: int
    url: str  # masked
    format: str
    format_label: str
    event_types: list[str]
    department_name: str
    view_label: str
    status: str  # on | paused | off
    status_label: str
    description: str
    pending: int
    dead: int


@dataclass(frozen=True)
class DeadRow:
    id: int
    subscription_id: int
    event_type: str
    event_label: str
    request_id: int | None
    number: str
    attempts: int
    last: str  # the last status or error
    at: str


def _in_chinese(exc: HuyingError | ValidationError) -> FormErrors:
    """A refusal under the field it names, in the page's words."""
    if isinstance(exc, ValidationError):
        return form_errors(exc)
    problem = exc.extra.get("problem")
    fmt = str(exc.extra.get("format") or "")
    if problem == "url_refused":
        return {
            "url": "该地址指向本机、链路本地或未指定的地址，不能接收 Webhook；"
            "如确需使用，请在配置 webhooks.allow_hosts 中列出该主机"
        }
    if problem == "robot_url":
        name = robots.NAMES.get(fmt, "")
        return {
            "url": f"这不是{name}群机器人的 Webhook 地址，请从群机器人设置中复制完整地址；"
            f"私有化部署的主机需在配置 webhooks.robot_hosts 中列出"
        }
    if problem == "secret":
        said = {
            "standard": "签名密钥应为 whsec_ 开头的 Base64 密钥；留空则由系统生成",
            "wecom": "企业微信群机器人不使用签名密钥（密钥已包含在地址中），请留空",
            "dingtalk": "钉钉群机器人的加签密钥以 SEC 开头，请从机器人安全设置中完整复制",
        }
        return {"secret": said.get(fmt, "签名密钥格式不正确，不能含空格或中文")}
    if problem == "unknown_event_types":
        unknown = "、".join(str(x) for x in exc.extra.get("unknown") or ())
        return {"event_types": f"以下事件类型不存在：{unknown}"}
    if problem == "deactivated":
        return {"": "该订阅已停用，不能再修改或发送；如需继续接收提醒，请新建订阅。"}
    if problem == "pending":
        return {"": "该投递仍在等待发送，无需重新投递。"}
    if isinstance(exc, NotFound):
        return {"": "找不到该订阅或投递，请刷新页面后重试。"}
    return form_errors(exc)


def outcome_text(outcome: TestOutcome) -> str:
    """What a test message got, for the page."""
    if outcome.ok:
        return f"测试消息已送达，对方已确认接收（HTTP {outcome.status_code}）。"
    error = outcome.error or ""
    if error.startswith("robot error"):
        return f"群机器人拒收了测试消息（{error}）。请核对地址、签名密钥和机器人的安全设置。"
    if outcome.status_code is not None:
        return f"对方返回 HTTP {outcome.status_code}，未接收测试消息。"
    return f"测试消息未能送达：{error}。"


def _page(
    s: Session,
    rt: Runtime,
    who: web.Visitor,
    *,
    errors: FormErrors | None = None,
    failed: str = "",
    posted: Mapping[str, list[str]] | None = None,
    flash: str = "",
    tested: tuple[int, TestOutcome] | None = None,
) -> Page:
    """The page; after a refused form, `failed` names that form ("create", "types:<id>",
    …): its errors show there and it keeps what was typed (but a secret)."""
    tz = rt.calendar.tz
    names = {d.code: d.name for d in directory.departments(session=s)}
    counts = service.counts(session=s)
    labels = catalogue.labels(rt.workflows)
    rows = []
    for w in reversed(service.subscriptions(session=s)):  # the newest first
        status = "off" if not w.active else "paused" if w.paused else "on"
        c = counts.get(w.id)
        rows.append(
            SubscriptionRow(
                id=w.id,
                url=masked(w.url),
                format=w.format,
                format_label=FORMATS[w.format],
                event_types=w.event_types,
                department_name=names.get(w.department or "", w.department or ""),
                view_label=VIEWS[w.view],
                status=status,
                status_label={"on": "启用", "paused": "已暂停", "off": "已停用"}[status],
                description=w.description,
                pending=c.pending if c else 0,
                dead=c.dead if c else 0,
            )
        )
    dead = service.deliveries(session=s, status="dead", limit=100)
    numbers = service.request_numbers(
        session=s, request_ids={d.request_id for d in dead if d.request_id is not None}
    )
    dead_rows = [
        DeadRow(
            id=d.id,
            subscription_id=d.subscription_id,
            event_type=d.event_type,
            event_label=labels.get(d.event_type, ""),
            request_id=d.request_id,
            number=numbers.get(d.request_id, "") if d.request_id is not None else "",
            attempts=d.attempts,
            last=d.last_error or (f"HTTP {d.last_status_code}" if d.last_status_code else ""),
            at=views.when(d.last_attempt_at or d.created_at, tz),
        )
        for d in dead
    ]
    kept = {k: v for k, v in (posted or {}).items() if k not in ("secret", "csrf")}
    return Page(
        "admin/webhooks.html",
        {
            "title": "Webhook 与投递",
            "section": "webhooks",
            "subscriptions": rows,
            "dead": dead_rows,
            "event_types": [(t, labels.get(t, "")) for t in catalogue.event_types(rt.workflows)],
            "formats": list(FORMATS.items()),
            "views": list(VIEWS.items()),
            "departments": sorted(names.items()),
            "errors": errors or {},
            "failed": failed,
            "posted": kept,
            "flash": flash,
            "tested": tested[0] if tested else None,
            "tested_ok": bool(tested and tested[1].ok),
            "tested_text": outcome_text(tested[1]) if tested else "",
        },
    )


def _posted(form: PostedForm) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for k, v in form.pairs:
        found.setdefault(k, []).append(v)
    return found


@router.get(PATH)
def webhooks_page(request: Request, rt: Rt) -> Response:
    done, target = request.query_params.get("done", ""), request.query_params.get("target", "")
    flash = DONE[done].format(target[:20]) if done in DONE and target.isdigit() else ""
    return admin_page(request, rt, lambda s, who: _page(s, rt, who, flash=flash))


def _post(
    request: Request,
    rt: Runtime,
    form: PostedForm,
    *,
    failed: str,
    write: Callable[[Session, web.Visitor], str],
) -> Response:
    """Post one of the page's forms through `admin_write`: refused, the page comes back with
    that form's errors in Chinese, and nothing was written."""
    said: FormErrors = {}

    def guarded(s: Session, who: web.Visitor) -> str:
        try:
            return write(s, who)
        except (HuyingError, ValidationError) as exc:
            said.update(_in_chinese(exc))
            raise

    def again(s: Session, who: web.Visitor, errors: FormErrors) -> Page:
        return _page(s, rt, who, errors=said or errors, failed=failed, posted=_posted(form))

    return admin_write(request, rt, form, write=guarded, again=again)


def _done(action: str, target: int) -> str:
    return f"{PATH}?{urlencode({'done': action, 'target': str(target)})}"


def _text(form: PostedForm, name: str) -> str | None:
    value = (form.get(name) or "").strip()
    return value or None


def _patterns(form: PostedForm) -> list[str]:
    """The ticked event types; 全部 (`*`) stands for all of them."""
    ticked = [v.strip() for v in form.getlist("event_types") if v.strip()]
    return [ALL] if ALL in ticked else ticked


@router.post(PATH)
def create_webhook(request: Request, rt: Rt, form: PostedForm) -> Response:
    """A new subscription; a standard one's generated secret is shown on the next page,
    this once (never cached)."""
    created: list[tuple[int, str | None]] = []

    def write(s: Session, who: web.Visitor) -> str:
        body = WebhookIn.model_validate(
            {
                "url": _text(form, "url") or "",
                "event_types": _patterns(form),
                "format": form.get("format") or "standard",
                "secret": _text(form, "secret"),
                "description": (form.get("description") or "").strip(),
                "department": _text(form, "department"),
                "view": form.get("view") or "full",
            }
        )
        made = service.subscribe(
            rt=rt, session=s, data=body, now=rt.now(), principal=who.principal, actor=actor_of(who)
        )
        generated = body.secret is None and not robots.is_robot(body.format)
        created.append((made.id, made.secret if generated else None))
        return _done("webhook.create", made.id)

    response = _post(request, rt, form, failed="create", write=write)
    if response.status_code != 303 or not created or created[0][1] is None:
        return response
    made_id, secret = created[0]

    def shown(s: Session, who: web.Visitor) -> Page:
        page = _page(s, rt, who, flash=DONE["webhook.create"].format(made_id))
        page.context["secret"] = (made_id, secret)
        page.headers["Cache-Control"] = "no-store"
        return page

    return admin_page(request, rt, shown)


def _update(
    request: Request,
    rt: Runtime,
    form: PostedForm,
    webhook_id: int,
    *,
    failed: str,
    **change: object,
) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        body = WebhookPatch.model_validate(change)
        service.update(
            rt=rt,
            session=s,
            subscription_id=webhook_id,
            data=body,
            actor=actor_of(who),
            now=rt.now(),
        )
        if body.paused is not None:
            return _done("webhook.pause" if body.paused else "webhook.resume", webhook_id)
        return _done("webhook.update", webhook_id)

    return _post(request, rt, form, failed=f"{failed}:{webhook_id}", write=write)


@router.post(PATH + "/{webhook_id}/paused")
def set_paused(request: Request, rt: Rt, form: PostedForm, webhook_id: int = Id) -> Response:
    """暂停 / 恢复: `paused` is "true" or "false" (anything else is refused as unreadable)."""
    return _update(request, rt, form, webhook_id, failed="paused", paused=form.get("paused") or "")


@router.post(PATH + "/{webhook_id}/event-types")
def set_event_types(request: Request, rt: Rt, form: PostedForm, webhook_id: int = Id) -> Response:
    return _update(request, rt, form, webhook_id, failed="types", event_types=_patterns(form))


@router.post(PATH + "/{webhook_id}/deactivate")
def deactivate(request: Request, rt: Rt, form: PostedForm, webhook_id: int = Id) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        service.deactivate(session=s, subscription_id=webhook_id, now=rt.now(), actor=actor_of(who))
        return _done("webhook.deactivate", webhook_id)

    return _post(request, rt, form, failed=f"deactivate:{webhook_id}", write=write)


@router.post(PATH + "/{webhook_id}/test")
def send_test(
    request: Request, rt: Rt, form: PostedForm, client: Client, webhook_id: int = Id
) -> Response:
    """发送测试消息: the form is checked (admin, CSRF, a live subscription) in a transaction;
    the message goes out after it, and the page says what came of it."""
    checked: list[int] = []

    def check(s: Session, who: web.Visitor) -> str:
        service.live(session=s, subscription_id=webhook_id)
        checked.append(webhook_id)
        return PATH

    response = _post(request, rt, form, failed=f"test:{webhook_id}", write=check)
    if response.status_code != 303 or not checked:
        return response
    try:
        outcome = delivery.send_test(rt, client=client, subscription_id=webhook_id)
    except HuyingError as exc:  # deactivated meanwhile
        said = _in_chinese(exc)
        return admin_page(
            request,
            rt,
            lambda s, who: _page(s, rt, who, errors=said, failed=f"test:{webhook_id}"),
        )
    return admin_page(request, rt, lambda s, who: _page(s, rt, who, tested=(webhook_id, outcome)))


@router.post("/admin/deliveries/{delivery_id}/redeliver")
def redeliver(
    request: Request, rt: Rt, form: PostedForm, delivery_id: int = Path(ge=1, le=2**62)
) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        service.redeliver(session=s, delivery_id=delivery_id, now=rt.now(), actor=actor_of(who))
        return _done("delivery.redeliver", delivery_id)

    return _post(request, rt, form, failed=f"redeliver:{delivery_id}", write=write)
