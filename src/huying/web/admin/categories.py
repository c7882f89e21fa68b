"""The admin page 呼叫清单: the call list by group, a category's create and edit forms, and
retiring (停用) or restoring (恢复) one. Every write goes through `directory.service`'s
create_/update_category, which checks it as the API does and records the audit entry."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from huying.api.deps import Rt
from huying.directory import service as directory
from huying.directory.schemas import CategoryIn, CategoryPatch
from huying.errors import (
    InvalidInput,
)
from huying.runtime import Runtime
from huying.web import labels
from huying.web import session as web
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write, chinese_refusals
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
