"""The admin page 派单规则: the routing rules that override a category's lead department for a
grid prefix or a chain, their create and edit forms, retiring and restoring. The most specific
matching rule wins (`directory.service.route`), which the page says in one sentence."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from huying.api.deps import Rt
from huying.directory import service as directory
from huying.directory.schemas import RoutingRuleIn, RoutingRulePatch
from huying.runtime import Runtime
from huying.web import session as web
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write, chinese_refusals
from huying.web.forms import Form
from huying.web.pages import Page, PostedForm, problem

router = APIRouter(include_in_schema=False)
BASE = "/admin/routing-rules"
DONE = {
    "created": "已新增派单规则。",
    "updated": "已保存修改。",
    "retired": "已停用该规则：它不再参与自动分拨。",
    "restored": "已恢复该规则。",
}


def _fields(form: Form) -> dict[str, Any]:
    priority = (form.get("priority") or "").strip()
    return {
        "category": form.get("category") or None,
        "grid_prefix": (form.get("grid_prefix") or "").strip() or None,
        "chain": form.get("chain") or None,
        "department": form.get("department") or "",
        "co_departments": [c for c in form.getlist("co_departments") if c],
        "priority": int(priority) if priority.isdigit() else (priority or 100),
    }


def _context(s: Session, values: dict[str, Any], errors: FormErrors | None) -> dict[str, Any]:
    return {
        "section": "rules",
        "values": values,
        "errors": errors or {},
        "categories": [(c.code, c.name, c.active) for c in directory.categories(session=s)],
        "chains": [(c.code, c.name, c.active) for c in directory.chains(session=s)],
        "departments": [(d.code, d.name, d.active) for d in directory.departments(session=s)],
    }


def _list_page(
    request: Request, s: Session, *, form: Form | None = None, errors: FormErrors | None = None
) -> Page:
    values = _fields(form) if form is not None else {"priority": 100, "co_departments": []}
    context = _context(s, values, errors)
    return Page(
        "admin/rules.html",
        {
            "title": "派单规则",
            "rules": [directory.rule_out(r) for r in directory.routing_rules(session=s)],
            "names": {code: name for code, name, _ in context["departments"]},
            "category_names": {code: name for code, name, _ in context["categories"]},
            "chain_names": {code: name for code, name, _ in context["chains"]},
            "flash": DONE.get(request.query_params.get("done", ""), ""),
            **context,
        },
    )


def _edit_page(
    s: Session,
    rule_id: int,
    *,
    form: Form | None = None,
    errors: FormErrors | None = None,
    flash: str = "",
) -> Page:
    found = directory.rule(session=s, rule_id=rule_id)
    if found is None:
        return problem(404, "找不到该派单规则。")
    out = directory.rule_out(found)
    values = _fields(form) if form is not None else out.model_dump()
    return Page(
        "admin/rules_edit.html",
        {
            "title": f"编辑派单规则 #{out.id}",
            "rule": out,
            "flash": flash,
            **_context(s, values, errors),
        },
    )


@router.get(BASE, response_class=HTMLResponse)
def rules_page(request: Request, rt: Rt) -> Response:
    return admin_page(request, rt, lambda s, who: _list_page(request, s))


@router.post(BASE, response_class=HTMLResponse)
def create_rule(request: Request, rt: Rt, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        data = RoutingRuleIn.model_validate(_fields(form))
        with chinese_refusals():
            directory.create_rule(
                session=s,
                data=data,
                grid_code_pattern=rt.settings.directory.grid_code_pattern,
                actor=actor_of(who),
                now=rt.now(),
            )
        return f"{BASE}?done=created"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, s, form=form, errors=errors),
    )


@router.get(BASE + "/{rule_id}", response_class=HTMLResponse)
def rule_page(request: Request, rt: Rt, rule_id: int) -> Response:
    flash = DONE.get(request.query_params.get("done", ""), "")
    return admin_page(request, rt, lambda s, who: _edit_page(s, rule_id, flash=flash))


def _update(
    rt: Runtime, s: Session, who: web.Visitor, rule_id: int, changes: RoutingRulePatch
) -> None:
    with chinese_refusals():
        directory.update_rule(
            session=s,
            rule_id=rule_id,
            changes=changes,
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=actor_of(who),
            now=rt.now(),
        )


@router.post(BASE + "/{rule_id}", response_class=HTMLResponse)
def update_rule(request: Request, rt: Rt, rule_id: int, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, rule_id, RoutingRulePatch.model_validate(_fields(form)))
        return f"{BASE}/{rule_id}?done=updated"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _edit_page(s, rule_id, form=form, errors=errors),
    )


def _set_active(request: Request, rt: Rt, rule_id: int, form: Form, active: bool) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, rule_id, RoutingRulePatch(active=active))
        return f"{BASE}?done={'restored' if active else 'retired'}#r-{rule_id}"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, s, errors=errors),
    )


@router.post(BASE + "/{rule_id}/retire", response_class=HTMLResponse)
def retire_rule(request: Request, rt: Rt, rule_id: int, form: PostedForm) -> Response:
    return _set_active(request, rt, rule_id, form, False)


@router.post(BASE + "/{rule_id}/restore", response_class=HTMLResponse)
def restore_rule(request: Request, rt: Rt, rule_id: int, form: PostedForm) -> Response:
    return _set_active(request, rt, rule_id, form, True)
