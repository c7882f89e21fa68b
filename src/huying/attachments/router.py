"""`POST /attachments` (a multipart upload) and `GET /attachments/{id}` (the download).

Built by `build_router(sees_request=...)`: the download asks `huying.requests.service.visible`
whether the caller may see the attachment's request, and the requests import this package
(to bind), so `huying.app` hands that rule in.

The upload's body is capped by `huying.api.body.BodyGuard` at `attachments.max_bytes` plus
`ENVELOPE_BYTES` for the multipart framing (`huying.app` sets the limit for this path): past
it the answer is 413 and nothing more is read. The parts are parsed by python-multipart, as
they arrive, into a temporary file that stays in memory up to 1 MiB and goes to disk beyond.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from huying import roles
from huying.api.deps import Rt
from huying.attachments import service
from huying.attachments.schemas import AttachmentOut, Visibility
from huying.attachments.sniff import ACCEPTED, IMAGES, PDF
from huying.auth.deps import Auth, Credentials
from huying.auth.gate import GatedRoute, allow
from huying.errors import InvalidInput
from huying.runtime import Runtime

# Room for the multipart framing around the file: boundaries, part headers, `visibility`.
ENVELOPE_BYTES = 64 * 1024
UPLOAD_PATH = service.URL_PREFIX
AttachmentId = Annotated[int, Path(ge=1, le=2**62, description="the attachment's id")]
_VISIBILITIES: dict[str, Visibility] = {"public": "public", "internal": "internal"}

_UPLOAD_BODY: dict[str, Any] = {
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
                            "description": "JPEG, PNG, WebP, PDF, OFD, DOCX, XLSX, DOC or XLS, "
                            "as its content says (not its name); at most attachments.max_bytes",
                        },
                        "visibility": {
                            "type": "string",
                            "enum": ["public", "internal"],
                            "description": "default: internal for staff, public for an "
                            "integration (which may not upload internal ones)",
                        },
                    },
                }
            }
        },
    }
}
_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file, with Content-Disposition naming it and ETag its SHA-256",
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in ACCEPTED},
    },
    304: {"description": "If-None-Match named its ETag: unchanged"},
}


def build_router(*, sees_request: service.SeesRequest) -> APIRouter:
    """The attachments' routes; `sees_request` says whether the caller may see a request."""
    router = APIRouter(prefix="/attachments", tags=["attachments"], route_class=GatedRoute)
    workers = allow(*roles.REQUEST_WORKERS, doing="work with attachments")

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        response_model=AttachmentOut,
        dependencies=[workers],
        openapi_extra=_UPLOAD_BODY,
    )
    async def upload(request: Request, rt: Rt, auth: Auth) -> Any:
        """Upload one file (multipart field `file`), to name in `attachment_ids` of a submit
        or an action within `attachments.unbound_hours` (24 by default); unbound after
        that, it is removed. 413 past `attachments.max_bytes`; 422 for a type not accepted."""
        form = await request.form(max_files=1, max_fields=1, max_part_size=64)
        try:
            file, visibility = _fields(form)
            made = await run_in_threadpool(_upload, rt, auth, file, visibility)
        finally:
            await form.close()
        return JSONResponse(
            made.model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            headers={"Location": service.url(made.id)},
        )

    @router.get(
        "/{attachment_id}",
        response_class=Response,
        dependencies=[workers],
        responses=_DOWNLOAD_RESPONSES,
    )
    def download(
        attachment_id: AttachmentId,
        rt: Rt,
        auth: Auth,
        if_none_match: Annotated[str | None, Header(alias="If-None-Match", max_length=200)] = None,
    ) -> Response:
        """The file, to whoever may see its request (an integration: only a public one);
        an attachment not bound yet, to its uploader only. 404 otherwise."""
        with rt.transaction() as s:
            who = auth.principal(s, rt)
            got = service.download(
                session=s,
                settings=rt.settings,
                principal=who,
                attachment_id=attachment_id,
                sees_request=sees_request,
            )
        a = got.attachment
        headers = {
            "ETag": f'"{a.sha256}"',
            "Cache-Control": "private, no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if if_none_match is not None and headers["ETag"] in _tags(if_none_match):
            return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        headers["Content-Disposition"] = disposition(a.name, inline=a.content_type in _INLINE)
        if got.stored.path is not None:
            return FileResponse(got.stored.path, media_type=a.content_type, headers=headers)
        return Response(got.stored.data, media_type=a.content_type, headers=headers)

    return router


# Shown in the browser rather than saved: images (the console's thumbnails) and PDF.
_INLINE = (*IMAGES, PDF)


def _fields(form: FormData) -> tuple[UploadFile, Visibility | None]:
    """The file and the visibility asked for, from the parsed form."""
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise InvalidInput(
            "file: required, as a file part of a multipart/form-data body", field="file"
        )
    asked = form.get("visibility")
    if asked is None or asked == "":
        return file, None
    if not isinstance(asked, str) or asked not in _VISIBILITIES:
        raise InvalidInput("visibility: public or internal", field="visibility")
    return file, _VISIBILITIES[asked]


def _upload(
    rt: Runtime, auth: Credentials, file: UploadFile, visibility: Visibility | None
) -> AttachmentOut:
    with rt.transaction() as s:
        who = auth.principal(s, rt)
        return service.upload(
            session=s,
            settings=rt.settings,
            principal=who,
            name=file.filename,
            source=file.file,
            visibility=visibility,
            now=rt.now(),
        )


def _tags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",")}


def disposition(name: str, *, inline: bool) -> str:
    """Content-Disposition naming the file: an ASCII `filename` for old clients and the
    exact name as `filename*` (RFC 5987, UTF-8), which every current browser prefers."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
