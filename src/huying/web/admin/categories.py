"""The admin page 呼叫清单: the call list by group, a category's create and edit forms, and
retiring (停用) or restoring (恢复) one. Every write goes through `directory.service`'s
create_/update_category, which checks it as the API does and records the audit entry."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from huying.api.deps import Rt
from huying.directory import service as directory
from huying.directory.schemas import CategoryIn, CategoryPatch
from huying.errors import (
    Conflict,
    HuyingError,
    InvalidFields,
    InvalidInput,
    UnknownReference,
)
from huying.runtime import Runtime
from huying.web import labels
from huying.web import session as web
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write
from huying.web.forms import Form
from huying.web.pages import Page, PostedForm, problem
from huying.workflow.definition import DEADLINE_KINDS, OPTIONAL_KINDS

router = APIRouter(include_in_schema=False)
BASE = "/admin/categories"
KINDS = (*DEADLINE_KINDS, *OPTIONAL_KINDS)
DONE = {
    "created": "已新增呼叫类别。",
    "updated": "已保存修改。",
    "retired": "已停用该类别：企业和来电登记不能再选它，已有诉求不受影响。",
    "restored": "已恢复该类别。",
}


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


def _flash(request: Request) -> str:
    return DONE.get(request.query_params.get("done", ""), "")


def _fields(form: Form) -> dict[str, Any]:
    """The category's fields as posted (the code aside). An empty time limit is left out:
    the urgency's default applies."""
    limits = {k: v.strip() for k in KINDS if (v := form.get(f"time_limits.{k}") or "").strip()}
    return {
        "name": form.get("name") or "",
        "group": (form.get("group") or "").strip(),
        "urgency": form.get("urgency") or "",
        "lead_department": form.get("lead_department") or None,
        "co_departments": [c for c in form.getlist("co_departments") if c],
        "time_limits": limits,
        "description": (form.get("description") or "").strip(),
    }


def _values(form: Form | None, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the form's inputs show: the posted values after a refusal, else the stored ones."""
    if form is None:
        return dict(stored or {})
    return {"code": (form.get("code") or "").strip(), **_fields(form)}


def _context(
    rt: Runtime, s: Session, *, values: dict[str, Any], errors: FormErrors | None = None
) -> dict[str, Any]:
    return {
        "section": "categories",
        "values": values,
        "errors": errors or {},
        "departments": [(d.code, d.name, d.active) for d in directory.departments(session=s)],
        "urgencies": [(u, labels.URGENCIES.get(u, u)) for u in rt.settings.urgencies],
        "kinds": [(k, labels.DEADLINE_KINDS.get(k, k)) for k in KINDS],
    }


def _list_page(
    request: Request,
    rt: Runtime,
    s: Session,
    *,
    form: Form | None = None,
    errors: FormErrors | None = None,
) -> Page:
    rows = directory.categories(session=s)
    names = {d.code: d.name for d in directory.departments(session=s)}
    groups = [
        (group or "未分组", [directory.category_out(c) for c in items])
        for group, items in groupby(rows, key=lambda c: c.group)
    ]
    blank = {"urgency": rt.settings.urgencies[0] if rt.settings.urgencies else ""}
    return Page(
        "admin/categories.html",
        {
            "title": "呼叫清单",
            "groups": groups,
            "names": names,
            "flash": _flash(request),
            **_context(rt, s, values=_values(form, blank), errors=errors),
        },
    )


def _edit_page(
    rt: Runtime,
    s: Session,
    code: str,
    *,
    form: Form | None = None,
    errors: FormErrors | None = None,
    flash: str = "",
) -> Page:
    found = directory.category(session=s, code=code)
    if found is None:
        return problem(404, "找不到该呼叫类别。")
    out = directory.category_out(found)
    values = _values(form, out.model_dump())
    values["code"] = out.code
    return Page(
        "admin/categories_edit.html",
        {
            "title": f"编辑呼叫类别 {out.name}",
            "category": out,
            "flash": flash,
            **_context(rt, s, values=values, errors=errors),
        },
    )


@router.get(BASE, response_class=HTMLResponse)
def categories_page(request: Request, rt: Rt) -> Response:
    return admin_page(request, rt, lambda s, who: _list_page(request, rt, s))


@router.post(BASE, response_class=HTMLResponse)
def create_category(request: Request, rt: Rt, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        code = (form.get("code") or "").strip()
        if code and directory.category(session=s, code=code) is not None:
            raise InvalidInput(f"编码“{code}”已被其他类别使用，请换一个。", field="code")
        data = CategoryIn.model_validate({"code": code, **_fields(form)})
        with chinese_refusals():
            directory.create_category(
                session=s,
                data=data,
                urgencies=rt.settings.urgencies,
                actor=actor_of(who),
                now=rt.now(),
            )
        return f"{BASE}?done=created"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, rt, s, form=form, errors=errors),
    )


@router.get(BASE + "/{code}", response_class=HTMLResponse)
def category_page(request: Request, rt: Rt, code: str) -> Response:
    return admin_page(request, rt, lambda s, who: _edit_page(rt, s, code, flash=_flash(request)))


@router.post(BASE + "/{code}", response_class=HTMLResponse)
def update_category(request: Request, rt: Rt, code: str, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, code, CategoryPatch.model_validate(_fields(form)))
        return f"{BASE}/{code}?done=updated"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _edit_page(rt, s, code, form=form, errors=errors),
    )


def _update(rt: Runtime, s: Session, who: web.Visitor, code: str, changes: CategoryPatch) -> None:
    with chinese_refusals():
        directory.update_category(
            session=s,
            code=code,
            changes=changes,
            urgencies=rt.settings.urgencies,
            actor=actor_of(who),
            now=rt.now(),
        )


def _set_active(request: Request, rt: Rt, code: str, form: Form, active: bool) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, code, CategoryPatch(active=active))
        return f"{BASE}?done={'restored' if active else 'retired'}#c-{code}"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, rt, s, errors=errors),
    )


@router.post(BASE + "/{code}/retire", response_class=HTMLResponse)
def retire_category(request: Request, rt: Rt, code: str, form: PostedForm) -> Response:
    return _set_active(request, rt, code, form, False)


@router.post(BASE + "/{code}/restore", response_class=HTMLResponse)
def restore_category(request: Request, rt: Rt, code: str, form: PostedForm) -> Response:
    return _set_active(request, rt, code, form, True)


def names_of(codes: Sequence[str], names: dict[str, str]) -> str:
    return "、".join(names.get(c, c) for c in codes)
