"""`POST /enterprises/import`: the enterprises of an XLSX or CSV file, all or none
(`huying.directory.imports`), for an admin.

The body is a multipart form with one part, `file`. The file may be up to `imports.MAX_BYTES`
(2 MiB), more than `server.max_body`: `huying.app` raises the body cap for `IMPORT_PATH` to
`BODY_LIMIT` (`body_limit`), as it does for attachments.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Scope

from huying import roles
from huying.api.deps import Rt
from huying.attachments.router import ENVELOPE_BYTES
from huying.auth.deps import Auth, Credentials
from huying.auth.gate import GatedRoute, allow
from huying.directory import imports
from huying.errors import InvalidInput
from huying.runtime import Runtime

router = APIRouter(tags=["directory"], route_class=GatedRoute)
ADMIN = allow(*roles.ADMINS)
IMPORT_PATH = "/api/v1/enterprises/import"
BODY_LIMIT = imports.MAX_BYTES + ENVELOPE_BYTES


def body_limit(scope: Scope) -> int | None:
    """For `huying.api.body.BodyGuard`'s `limit_for`: the import's larger body cap."""
    if scope["method"] == "POST" and scope["path"] == IMPORT_PATH:
        return BODY_LIMIT
    return None


_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "XLSX, or CSV in UTF-8 (with or without BOM) or "
                            "GB18030; a header row naming the columns in Chinese or English "
                            "(统一社会信用代码/uscc, 企业名称/name, 产业链/chain, 网格编码/"
                            "grid_code, 地址/address, 联系人/contact_name, 联系电话/"
                            "contact_phone); at most 2 MiB and 5000 lines",
                        }
                    },
                }
            }
        },
    }
}


@router.post("/enterprises/import", dependencies=[ADMIN], openapi_extra=_BODY)
async def import_enterprises(
    request: Request,
    rt: Rt,
    auth: Auth,
    dry_run: bool = Query(False, description="only check: answer the preview, write nothing"),
) -> dict[str, Any]:
    """Import enterprises: each line creates one (by its USCC) or updates the columns the
    file has, non-empty cells only (a missing column or an empty cell keeps the stored
    value). All lines or none: any bad line is 422 with `lines`, each bad line's errors by
    field, and nothing is written. With `dry_run=true`: what each line would do, as
    `lines` with `status` created, updated, unchanged or error, and nothing is written."""
    form = await request.form(max_files=1, max_fields=1, max_part_size=64)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput(
                "file: required, as a file part of a multipart/form-data body", field="file"
            )
        data = await file.read(imports.MAX_BYTES + 1)
        name = file.filename or ""
    finally:
        await form.close()
    return await run_in_threadpool(_run, rt, auth, name, data, dry_run)


def _run(rt: Runtime, auth: Credentials, name: str, data: bytes, dry_run: bool) -> dict[str, Any]:
    pattern = rt.settings.directory.grid_code_pattern
    sheet = imports.parse(name, data)
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        if dry_run:
            checked = imports.preview(session=s, sheet=sheet, grid_code_pattern=pattern)
            return {
                "ok": checked.ok,
                "counts": checked.counts,
                "file": sheet.name,
                "sha256": sheet.sha256,
                "columns": list(sheet.columns),
                "ignored_columns": list(sheet.ignored),
                "lines": [c.as_json() for c in checked.lines],
            }
        summary = imports.commit(
            session=s, sheet=sheet, grid_code_pattern=pattern, actor=who.id, now=rt.now()
        )
        return summary.as_json()
