"""What every admin page shares: the admin role, the section menu, and one way to post a form.

A form's write runs in one transaction with its audit entry (`huying.audit.service.record`,
called by the service). When the service refuses (a HuyingError) or the input does not
validate (pydantic's ValidationError), the transaction rolls back, so nothing is written,
and the page is rendered again with each field's error in Chinese, status 422."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from huying import roles
from huying.errors import (
    Conflict,
    HuyingError,
    InvalidFields,
    InvalidInput,
    NotAuthenticated,
    Unavailable,
    UnknownReference,
)
from huying.runtime import Runtime
from huying.web import labels
from huying.web import session as web
from huying.web.forms import Form
from huying.web.pages import Page, csrf_refused, problem, serve, to_login

ADMIN_ROLES = roles.ADMINS

# (key, label, path): the admin section's own menu, in this order on every admin page.
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("categories", "呼叫清单", "/admin/categories"),
    ("departments", "部门与领导", "/admin/departments"),
    ("enterprises", "企业", "/admin/enterprises"),
    ("rules", "派单规则", "/admin/routing-rules"),
    ("users", "用户与密钥", "/admin/users"),
    ("webhooks", "Webhook 与投递", "/admin/webhooks"),
    ("audit", "审计日志", "/admin/audit"),
    ("calendar", "工作日历", "/admin/calendar"),
)

# The admin forms' fields as a person reads them; a field not named here is shown as is.
FIELDS: dict[str, str] = {
    "code": "编码",
    "name": "名称",
    "parent_code": "上级部门",
    "leaders": "领导",
    "group": "分组",
    "urgency": "紧急程度",
    "lead_department": "主办部门",
    "co_departments": "协办部门",
    "time_limits": "办理时限",
    "description": "说明",
    "active": "状态",
    "uscc": "统一社会信用代码",
    "chain": "产业链",
    "grid_code": "网格编码",
    "address": "地址",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "leader_uscc": "链主企业",
    "liaison_department": "联络部门",
    "category": "诉求类别",
    "grid_prefix": "网格编码前缀",
    "department": "部门",
    "priority": "优先级",
    "username": "用户名",
    "display_name": "姓名",
    "password": "密码",
    "role": "角色",
    "url": "地址（URL）",
    "event_types": "事件类型",
    "format": "消息格式",
    "secret": "签名密钥",
    "file": "文件",
    "title": "标题",
    "content": "内容",
    "enterprise": "企业",
    "phone": "电话",
}

FormErrors = dict[str, str]  # field -> message; "" for the form as a whole


def field_label(name: str) -> str:
    return FIELDS.get(name) or labels.FIELDS.get(name) or name


def _pydantic_errors(errors: Sequence[Mapping[str, Any]]) -> FormErrors:
    said: FormErrors = {}
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if not str(p).isdigit() and p != "body"]
        name = loc[0] if loc else ""
        template = labels.PYDANTIC.get(str(e.get("type")), "{f}填写有误")
        said.setdefault(name, template.format(f=field_label(name) if name else "表单"))
    return said


def form_errors(exc: HuyingError | ValidationError) -> FormErrors:
    """The refusal as the form shows it: under the field it names, else above the form."""
    if isinstance(exc, ValidationError):
        return _pydantic_errors(exc.errors())
    errors = exc.extra.get("errors")
    if errors:
        return _pydantic_errors(errors)
    message = labels.explain(exc).message
    name = exc.extra.get("field")
    return {str(name) if isinstance(name, str) else "": message}


def admin_page(
    request: Request, rt: Runtime, build: Callable[[Session, web.Visitor], Page | Response]
) -> Response:
    """An admin page: the admin role only, with the section menu (its template extends
    admin/_base.html and sets `section` in its context)."""

    def with_sections(s: Session, who: web.Visitor) -> Page | Response:
        page = build(s, who)
        if isinstance(page, Page):
            page.context.setdefault("sections", SECTIONS)
            page.context.setdefault("nav", "admin")
        return page

    return serve(request, rt, with_sections, roles=ADMIN_ROLES)


def admin_write(
    request: Request,
    rt: Runtime,
    form: Form,
    *,
    write: Callable[[Session, web.Visitor], str],
    again: Callable[[Session, web.Visitor, FormErrors], Page],
) -> Response:
    """Post an admin form: the CSRF token first, then `write` (which returns where to go
    next, a local path) in one transaction. A refusal writes nothing and shows `again`, the
    form with its errors, as 422."""
    try:
        with rt.transaction() as s:
            who = web.visitor(request, s, rt)
            target: str | None = None  # None: the 403 page, once this transaction has ended
            if who.role in ADMIN_ROLES:
                if not web.same(who.csrf, form.get(web.CSRF_FIELD)):
                    return csrf_refused(s, rt, who)
                target = write(s, who)
    except NotAuthenticated:
        return to_login(request, expired=True)
    except Unavailable:
        raise  # the 503 page
    except (HuyingError, ValidationError) as exc:
        errors = form_errors(exc)

        def refused(s: Session, who: web.Visitor) -> Page:
            page = again(s, who, errors)
            page.status = 422
            page.context.setdefault("errors", errors)
            return page

        return admin_page(request, rt, refused)
    if target is None:  # `serve` finds the same visitor, and its role check says 403
        return admin_page(request, rt, lambda s, who: problem(403, "您的账号无权访问此页面。"))
    return RedirectResponse(web.local_path(target, "/admin"), status_code=303)


def actor_of(who: web.Visitor) -> str:
    """Who the audit log names for a console write: the signed-in user."""
    return who.principal.id


# --- the directory services' refusals, as the admin forms say them -------------------

KINDS_ZH = {"department": "部门", "chain": "产业链", "category": "呼叫类别"}
FIELD_PROBLEMS = {
    "parent_code": "不能把部门放在它自己或它的下级部门之下",
    "grid_code": "网格编码不符合本区网格编码规则",
    "grid_prefix": "网格编码前缀不符合本区网格编码规则",
    "urgency": "请选择有效的紧急程度",
}


def in_chinese(exc: HuyingError) -> HuyingError:
    """A directory service's refusal as the admin forms say it, under the field it names:
    the services speak English to the API, and the console's generic wording of a conflict
    speaks of a request's state. An error it does not know is returned as it is."""
    if isinstance(exc, InvalidFields):
        return exc
    field = exc.extra.get("field")
    if isinstance(exc, UnknownReference):
        kind = KINDS_ZH.get(str(exc.extra.get("kind")), "")
        codes = "、".join(str(c) for c in exc.extra.get("codes") or ())
        return InvalidInput(f"{kind}“{codes}”不存在或已停用，请另选。", field=field)
    if exc.code == "has_active_children":
        children = "、".join(str(c) for c in exc.extra.get("children") or ())
        return InvalidInput(f"该部门下还有未停用的下级部门（{children}），请先停用或移走它们。")
    if isinstance(exc, Conflict) and "rule_id" in exc.extra:
        return InvalidInput(
            f"已有条件相同（呼叫类别、网格编码前缀、产业链）的派单规则 #{exc.extra['rule_id']}，"
            "请修改那条规则。"
        )
    if isinstance(exc, Conflict):
        return InvalidInput("该编码已被使用，请换一个。", field=field or "code")
    if isinstance(exc, InvalidInput):
        name = field if isinstance(field, str) else exc.detail.partition(":")[0]
        if name in FIELD_PROBLEMS:
            return InvalidInput(FIELD_PROBLEMS[name], field=name)
    return exc


@contextmanager
def chinese_refusals() -> Iterator[None]:
    """Within: a directory service's refusal is raised again as `in_chinese` says it."""
    try:
        yield
    except HuyingError as exc:
        said = in_chinese(exc)
        if said is exc:
            raise
        raise said from None
