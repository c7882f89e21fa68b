"""The admin page 部门与领导: the department tree with each department's leaders, the forms
that add a department (under a parent) and edit one (name, parent, leaders: rows to add, a
box to remove one), retiring and restoring. The escalation ladder's gaps (a rung that would
alert nobody) are shown above the tree, so that adding a leader is seen to close one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from huying.api.deps import Rt
from huying.directory import service as directory
from huying.directory.models import Department
from huying.directory.schemas import DepartmentIn, DepartmentOut, DepartmentPatch
from huying.errors import InvalidInput
from huying.runtime import Runtime
from huying.settings import NotifyDepartment
from huying.web import session as web
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write, chinese_refusals
from huying.web.forms import Form
from huying.web.pages import Page, PostedForm, problem

router = APIRouter(include_in_schema=False)
BASE = "/admin/departments"
LEADER_FIELDS = ("name", "title", "role", "phone")
MAX_LEADERS = 20
BLANK_ROWS = 2  # empty leader rows offered to add
ROLE_LABELS = {
    "department_head": "部门负责人",
    "street_leadership": "街道领导",
    "district_supervision": "区级督查",
}
DONE = {
    "created": "已新增部门。",
    "updated": "已保存修改。",
    "retired": "已停用该部门：它不再能被选为主办或协办部门，已有诉求不受影响。",
    "restored": "已恢复该部门。",
}


@dataclass(frozen=True)
class Node:
    """A department of the tree, and how deep it sits (0 for a top-level one)."""

    dept: DepartmentOut
    depth: int


def tree(departments: list[Department]) -> list[Node]:
    """The departments in tree order: each followed by its sub-departments, by code. A
    department whose parent is missing is shown at the top level."""
    codes = {d.code for d in departments}
    children: dict[str | None, list[Department]] = {}
    for d in departments:
        parent = d.parent_code if d.parent_code in codes else None
        children.setdefault(parent, []).append(d)
    nodes: list[Node] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for d in sorted(children.get(parent, []), key=lambda x: x.code):
            if d.code not in seen:
                seen.add(d.code)
                nodes.append(Node(directory.department_out(d), depth))
                walk(d.code, depth + 1)

    walk(None, 0)
    for d in departments:  # a cycle the loader let through: still listed
        if d.code not in seen:
            nodes.append(Node(directory.department_out(d), 0))
    return nodes


def leader_roles(rt: Runtime) -> list[tuple[str, str]]:
    """The leader roles the escalation ladder notifies (department_head first): a leader
    with another role is never alerted."""
    names = ["department_head"]
    for rung in rt.settings.escalation:
        for entry in rung.notify:
            names.append(entry.role if isinstance(entry, NotifyDepartment) else entry)
    return [(r, ROLE_LABELS.get(r, r)) for r in dict.fromkeys(names)]


def _leaders(form: Form) -> list[dict[str, str]]:
    """The leader rows as posted: a row left empty, or ticked 删除, is left out."""
    rows = []
    for i in range(MAX_LEADERS + BLANK_ROWS):
        row = {f: (form.get(f"leaders.{i}.{f}") or "").strip() for f in LEADER_FIELDS}
        if form.get(f"leaders.{i}.remove") or not any(row[f] for f in ("name", "title", "phone")):
            continue
        rows.append({k: v for k, v in row.items() if v or k == "name"})
    return rows


def _fields(form: Form) -> dict[str, Any]:
    return {
        "name": form.get("name") or "",
        "parent_code": form.get("parent_code") or None,
        "leaders": _leaders(form),
    }


def _values(form: Form | None, stored: dict[str, Any]) -> dict[str, Any]:
    if form is None:
        return stored
    return {"code": (form.get("code") or "").strip(), **_fields(form)}


def _gaps(rt: Runtime, s: Session, names: dict[str, str]) -> list[str]:
    said = []
    for gap in directory.escalation_gaps(session=s, settings=rt.settings):
        if gap.department is None:
            center = rt.settings.dispatch_center
            who = f"没有主办部门的诉求（派单中心{'：' + names.get(center, center) if center else '未设置'}）"
        else:
            who = names.get(gap.department, gap.department)
        said.append(f"{who}：第 {gap.level} 级督办找不到任何领导")
    return said


def _context(rt: Runtime, s: Session, values: dict[str, Any], errors: FormErrors | None) -> Any:
    rows = list(directory.departments(session=s))
    names = {d.code: d.name for d in rows}
    return {
        "section": "departments",
        "values": values,
        "errors": errors or {},
        "names": names,
        "nodes": tree(rows),
        "roles": leader_roles(rt),
        "role_labels": dict(leader_roles(rt)),
        "gaps": _gaps(rt, s, names),
        "blank_rows": BLANK_ROWS,
    }


def _flash(request: Request) -> str:
    return DONE.get(request.query_params.get("done", ""), "")


def _list_page(
    request: Request,
    rt: Runtime,
    s: Session,
    *,
    form: Form | None = None,
    errors: FormErrors | None = None,
) -> Page:
    parent = request.query_params.get("parent", "")
    values = _values(form, {"parent_code": parent, "leaders": []})
    return Page(
        "admin/departments.html",
        {"title": "部门与领导", "flash": _flash(request), **_context(rt, s, values, errors)},
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
    found = directory.department(session=s, code=code)
    if found is None:
        return problem(404, "找不到该部门。")
    out = directory.department_out(found)
    values = _values(form, out.model_dump())
    values["code"] = out.code
    context = _context(rt, s, values, errors)
    below = directory.subtree(session=s, code=code)
    return Page(
        "admin/departments_edit.html",
        {
            "title": f"编辑部门 {out.name}",
            "dept": out,
            "flash": flash,
            # A department moves under none of its own sub-departments, nor itself.
            "parents": [n for n in context["nodes"] if n.dept.code not in below],
            **context,
        },
    )


@router.get(BASE, response_class=HTMLResponse)
def departments_page(request: Request, rt: Rt) -> Response:
    return admin_page(request, rt, lambda s, who: _list_page(request, rt, s))


@router.post(BASE, response_class=HTMLResponse)
def create_department(request: Request, rt: Rt, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        code = (form.get("code") or "").strip()
        if code and directory.department(session=s, code=code) is not None:
            raise InvalidInput(f"编码“{code}”已被其他部门使用，请换一个。", field="code")
        data = DepartmentIn.model_validate({"code": code, **_fields(form)})
        with chinese_refusals():
            directory.create_department(session=s, data=data, actor=actor_of(who), now=rt.now())
        return f"{BASE}?done=created#d-{code}"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, rt, s, form=form, errors=errors),
    )


@router.get(BASE + "/{code}", response_class=HTMLResponse)
def department_page(request: Request, rt: Rt, code: str) -> Response:
    return admin_page(request, rt, lambda s, who: _edit_page(rt, s, code, flash=_flash(request)))


def _update(rt: Runtime, s: Session, who: web.Visitor, code: str, changes: DepartmentPatch) -> None:
    with chinese_refusals():
        directory.update_department(
            session=s, code=code, changes=changes, actor=actor_of(who), now=rt.now()
        )


@router.post(BASE + "/{code}", response_class=HTMLResponse)
def update_department(request: Request, rt: Rt, code: str, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, code, DepartmentPatch.model_validate(_fields(form)))
        return f"{BASE}/{code}?done=updated"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _edit_page(rt, s, code, form=form, errors=errors),
    )


def _set_active(request: Request, rt: Rt, code: str, form: Form, active: bool) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, code, DepartmentPatch(active=active))
        return f"{BASE}?done={'restored' if active else 'retired'}#d-{code}"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, rt, s, errors=errors),
    )


@router.post(BASE + "/{code}/retire", response_class=HTMLResponse)
def retire_department(request: Request, rt: Rt, code: str, form: PostedForm) -> Response:
    return _set_active(request, rt, code, form, False)


@router.post(BASE + "/{code}/restore", response_class=HTMLResponse)
def restore_department(request: Request, rt: Rt, code: str, form: PostedForm) -> Response:
    return _set_active(request, rt, code, form, True)
