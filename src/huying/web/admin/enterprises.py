"""The admin page 企业: search (name or USCC, chain, grid prefix, retired too) with cursor
paging, the create and edit forms, retiring and restoring, and the import of an XLSX or CSV
file through a line-by-line preview (`directory.imports`).

The preview and the confirmation are two posts of the same file, kept without any state on
the server: the preview page carries the file back as a hidden base64 field of its 确认导入
form. A file is at most `imports.MAX_BYTES` (2 MiB, so the field at most 2.7 MB), the
confirmation commits exactly the bytes that were previewed (its SHA-256 is shown), any
replica can take it, and nothing is left behind when the person walks away. The commit
parses and checks the file again, so a field changed in between can do no more than an
upload could."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from huying.api.deps import Rt
from huying.directory import imports
from huying.directory import service as directory
from huying.directory.schemas import EnterpriseIn, EnterprisePatch
from huying.errors import HuyingError, InvalidInput
from huying.runtime import Runtime
from huying.web import session as web
from huying.web.admin.common import FormErrors, actor_of, admin_page, admin_write, chinese_refusals
from huying.web.forms import Form, form_with_files
from huying.web.pages import Page, PostedForm, csrf_refused, problem

router = APIRouter(include_in_schema=False)
BASE = "/admin/enterprises"
IMPORT = BASE + "/import"
# the posts that carry a file: their body cap is the import's (huying.app)
IMPORT_PATHS = frozenset({IMPORT + "/preview", IMPORT})
PAGE_SIZE = 50
FIELDS = ("name", "chain", "grid_code", "address", "contact_name", "contact_phone")
OPTIONAL_CODES = ("chain", "grid_code")  # empty: none
DONE = {
    "created": "已新增企业。",
    "updated": "已保存修改。",
    "retired": "已停用该企业：它不能再提交新的诉求，已有诉求不受影响。",
    "restored": "已恢复该企业。",
}
# The confirmation's hidden copy of the file: base64 of at most MAX_BYTES, and its framing.
CONFIRM_PART_BYTES = imports.MAX_BYTES * 4 // 3 + 4096


def _fields(form: Form) -> dict[str, Any]:
    said: dict[str, Any] = {f: (form.get(f) or "").strip() for f in FIELDS}
    for f in OPTIONAL_CODES:
        said[f] = said[f] or None
    return said


def _values(form: Form | None, stored: dict[str, Any]) -> dict[str, Any]:
    if form is None:
        return stored
    return {"uscc": (form.get("uscc") or "").strip(), **_fields(form)}


def _context(s: Session, values: dict[str, Any], errors: FormErrors | None) -> dict[str, Any]:
    return {
        "section": "enterprises",
        "values": values,
        "errors": errors or {},
        "chains": [(c.code, c.name, c.active) for c in directory.chains(session=s)],
    }


def _search(request: Request) -> dict[str, str]:
    q = request.query_params
    return {k: (q.get(k) or "").strip()[:100] for k in ("q", "chain", "grid_prefix", "retired")}


def _list_page(
    request: Request, s: Session, *, form: Form | None = None, errors: FormErrors | None = None
) -> Page:
    asked = _search(request)
    try:
        after = directory.enterprises_after(request.query_params.get("after") or None)
    except HuyingError:
        after = None  # a cursor this page never gave: the first page
    rows, cursor = directory.find_enterprises(
        session=s,
        q=asked["q"] or None,
        chain=asked["chain"] or None,
        grid_prefix=asked["grid_prefix"] or None,
        active=None if asked["retired"] else True,
        after=after,
        limit=PAGE_SIZE,
    )
    kept = {k: v for k, v in asked.items() if v}
    return Page(
        "admin/enterprises.html",
        {
            "title": "企业",
            "asked": asked,
            "rows": [directory.enterprise_out(e) for e in rows],
            "next_url": f"{BASE}?{urlencode({**kept, 'after': cursor})}" if cursor else "",
            "first_url": f"{BASE}?{urlencode(kept)}" if after is not None else "",
            "chain_names": {c.code: c.name for c in directory.chains(session=s)},
            "flash": DONE.get(request.query_params.get("done", ""), ""),
            **_context(s, _values(form, {}), errors),
        },
    )


def _edit_page(
    s: Session,
    uscc: str,
    *,
    form: Form | None = None,
    errors: FormErrors | None = None,
    flash: str = "",
) -> Page:
    found = directory.enterprise(session=s, uscc=uscc.strip().upper())
    if found is None:
        return problem(404, "找不到该企业。")
    out = directory.enterprise_out(found)
    values = _values(form, out.model_dump())
    values["uscc"] = out.uscc
    return Page(
        "admin/enterprises_edit.html",
        {
            "title": f"编辑企业 {out.name}",
            "ent": out,
            "flash": flash,
            **_context(s, values, errors),
        },
    )


@router.get(BASE, response_class=HTMLResponse)
def enterprises_page(request: Request, rt: Rt) -> Response:
    return admin_page(request, rt, lambda s, who: _list_page(request, s))


@router.post(BASE, response_class=HTMLResponse)
def create_enterprise(request: Request, rt: Rt, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        data = EnterpriseIn.model_validate({"uscc": form.get("uscc") or "", **_fields(form)})
        if directory.enterprise(session=s, uscc=data.uscc) is not None:
            raise InvalidInput(f"统一社会信用代码 {data.uscc} 的企业已存在。", field="uscc")
        with chinese_refusals():
            directory.create_enterprise(
                session=s,
                data=data,
                grid_code_pattern=rt.settings.directory.grid_code_pattern,
                actor=actor_of(who),
                now=rt.now(),
            )
        return f"{BASE}/{data.uscc}?done=created"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _list_page(request, s, form=form, errors=errors),
    )


# --- import ------------------------------------------------------------------------


def _import_page(
    s: Session,
    *,
    sheet: imports.Sheet | None = None,
    data: bytes = b"",
    errors: FormErrors | None = None,
    pattern: str = "",
) -> Page:
    checked = imports.preview(session=s, sheet=sheet, grid_code_pattern=pattern) if sheet else None
    return Page(
        "admin/enterprises_import.html",
        {
            "title": "导入企业",
            "section": "enterprises",
            "errors": errors or {},
            "sheet": sheet,
            "preview": checked,
            "content": base64.b64encode(data).decode() if checked and checked.ok else "",
            "labels": imports.LABELS,
            "max_mb": imports.MAX_BYTES // (1024 * 1024),
            "max_rows": imports.MAX_ROWS,
        },
    )


def _refused_file(exc: imports.FileRefused) -> FormErrors:
    return {"file": exc.message}


@router.get(IMPORT, response_class=HTMLResponse)
def import_page(request: Request, rt: Rt) -> Response:
    return admin_page(request, rt, lambda s, who: _import_page(s))


@router.post(IMPORT + "/preview", response_class=HTMLResponse)
async def import_preview(request: Request, rt: Rt) -> Response:
    """The uploaded file's preview: what each line would do. Writes nothing."""
    async with form_with_files(request) as form:
        upload = form.files[0] if form.files else None
        data = upload.file.read(imports.MAX_BYTES + 1) if upload else b""
        name = upload.filename if upload else ""
    return await run_in_threadpool(_preview, request, rt, form, name, data)


def _preview(request: Request, rt: Runtime, form: Form, name: str, data: bytes) -> Response:
    def build(s: Session, who: web.Visitor) -> Page | Response:
        if not web.same(who.csrf, form.get(web.CSRF_FIELD)):
            return csrf_refused(s, rt, who)
        if not data:
            return _refused(_import_page(s, errors={"file": "请选择要导入的 .xlsx 或 .csv 文件。"}))
        try:
            sheet = imports.parse(name, data)
        except imports.FileRefused as exc:
            return _refused(_import_page(s, errors=_refused_file(exc)))
        pattern = rt.settings.directory.grid_code_pattern
        return _import_page(s, sheet=sheet, data=data, pattern=pattern)

    return admin_page(request, rt, build)


def _refused(page: Page) -> Page:
    page.status = 422
    return page


@router.post(IMPORT, response_class=HTMLResponse)
async def import_commit(request: Request, rt: Rt) -> Response:
    """确认导入: the previewed file, carried back in base64, committed all or nothing."""
    parsed = await request.form(max_files=0, max_fields=10, max_part_size=CONFIRM_PART_BYTES)
    try:
        form = Form(tuple((k, v) for k, v in parsed.multi_items() if isinstance(v, str)))
    finally:
        await parsed.close()
    return await run_in_threadpool(_commit, request, rt, form)


def _commit(request: Request, rt: Runtime, form: Form) -> Response:
    name = (form.get("name") or "")[:200]
    try:
        data = base64.b64decode(form.get("content") or "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    pattern = rt.settings.directory.grid_code_pattern

    def write(s: Session, who: web.Visitor) -> str:
        if not data:
            raise InvalidInput("没有收到要导入的文件，请重新上传。", field="file")
        sheet = imports.parse(name, data)
        summary = imports.commit(
            session=s, sheet=sheet, grid_code_pattern=pattern, actor=actor_of(who), now=rt.now()
        )
        done = {"created": summary.created, "updated": summary.updated}
        return f"{IMPORT}/done?{urlencode({**done, 'unchanged': summary.unchanged})}"

    def again(s: Session, who: web.Visitor, errors: FormErrors) -> Page:
        try:
            sheet = imports.parse(name, data) if data else None
        except imports.FileRefused as exc:
            return _import_page(s, errors=_refused_file(exc))
        if sheet is None:
            return _import_page(s, errors=errors)
        said = {"": "导入未执行：文件中有错误的行，没有导入任何企业。请修改后重新上传。"}
        return _import_page(s, sheet=sheet, data=data, errors=said, pattern=pattern)

    return admin_write(request, rt, form, write=write, again=again)


@router.get(IMPORT + "/done", response_class=HTMLResponse)
def import_done(request: Request, rt: Rt) -> Response:
    q = request.query_params
    counts = {k: int(v) if (v := q.get(k, "0")).isdigit() else 0 for k in imports.OUTCOMES}
    flash = "导入完成：新增 {created} 家，更新 {updated} 家，无变化 {unchanged} 家。".format(
        **counts
    )

    def build(s: Session, who: web.Visitor) -> Page:
        page = _import_page(s)
        page.context["flash"] = flash
        return page

    return admin_page(request, rt, build)


# --- one enterprise ------------------------------------------------------------------


@router.get(BASE + "/{uscc}", response_class=HTMLResponse)
def enterprise_page(request: Request, rt: Rt, uscc: str) -> Response:
    flash = DONE.get(request.query_params.get("done", ""), "")
    return admin_page(request, rt, lambda s, who: _edit_page(s, uscc, flash=flash))


def _update(rt: Runtime, s: Session, who: web.Visitor, uscc: str, changes: EnterprisePatch) -> None:
    with chinese_refusals():
        directory.update_enterprise(
            session=s,
            uscc=uscc.strip().upper(),
            changes=changes,
            grid_code_pattern=rt.settings.directory.grid_code_pattern,
            actor=actor_of(who),
            now=rt.now(),
        )


@router.post(BASE + "/{uscc}", response_class=HTMLResponse)
def update_enterprise(request: Request, rt: Rt, uscc: str, form: PostedForm) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, uscc, EnterprisePatch.model_validate(_fields(form)))
        return f"{BASE}/{uscc}?done=updated"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _edit_page(s, uscc, form=form, errors=errors),
    )


def _set_active(request: Request, rt: Rt, uscc: str, form: Form, active: bool) -> Response:
    def write(s: Session, who: web.Visitor) -> str:
        _update(rt, s, who, uscc, EnterprisePatch(active=active))
        return f"{BASE}/{uscc}?done={'restored' if active else 'retired'}"

    return admin_write(
        request,
        rt,
        form,
        write=write,
        again=lambda s, who, errors: _edit_page(s, uscc, errors=errors),
    )


@router.post(BASE + "/{uscc}/retire", response_class=HTMLResponse)
def retire_enterprise(request: Request, rt: Rt, uscc: str, form: PostedForm) -> Response:
    return _set_active(request, rt, uscc, form, False)


@router.post(BASE + "/{uscc}/restore", response_class=HTMLResponse)
def restore_enterprise(request: Request, rt: Rt, uscc: str, form: PostedForm) -> Response:
    return _set_active(request, rt, uscc, form, True)
