"""Attachment use cases: upload, bind to a request, list, download, clean up.

An attachment is uploaded on its own (`upload`) and bound to a request later, by naming its
id in `attachment_ids` of the submit or of an action (`bind`, called by
`huying.requests.service` in the same transaction as the step it comes with). One left
unbound `attachments.unbound_hours` after its upload is removed by the worker
(`remove_unbound`), and bytes that no attachment names any more go with it
(`forget_unnamed`).

Who may see an attachment is who may see its request. That rule lives in
`huying.requests.service.visible`, and the requests import this package to bind, so the
router hands it in (`SeesRequest`) rather than this package importing it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Protocol

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from huying import roles
from huying.attachments import repository, storage
from huying.attachments.models import Attachment
from huying.attachments.schemas import AttachmentOnRequest, AttachmentOut, Visibility
from huying.attachments.sniff import ACCEPTED_NAMES, sniff
from huying.auth.service import Principal
from huying.errors import Forbidden, InvalidInput, NotFound, TooLarge, UnknownReference
from huying.settings import Settings

if TYPE_CHECKING:
    from huying.requests.models import Request

log = logging.getLogger("huying.attachments")

PUBLIC, INTERNAL = "public", "internal"
# Where an attachment is downloaded (and where it is uploaded, without the id).
URL_PREFIX = "/api/v1/attachments"
_CHUNK_BYTES = 1 << 20
_MAX_NAME = 255


class SeesRequest(Protocol):
    """`huying.requests.service.visible`: returns when the caller may see the request,
    raises NotFound when not."""

    def __call__(self, *, session: Session, principal: Principal, request_id: int) -> object: ...


def url(attachment_id: int) -> str:
    return f"{URL_PREFIX}/{attachment_id}"


def out(attachment: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=attachment.id,
        name=attachment.name,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        visibility=_visibility_of(attachment),
    )


def _visibility_of(attachment: Attachment) -> Visibility:
    return "public" if attachment.visibility == PUBLIC else "internal"


# --- upload --------------------------------------------------------------------------


def upload(
    *,
    session: Session,
    settings: Settings,
    principal: Principal,
    name: str | None,
    source: IO[bytes],
    visibility: Visibility | None,
    now: datetime,
) -> AttachmentOut:
    """Keep an uploaded file, unbound. `source` is seekable (a spooled upload). TooLarge
    past `attachments.max_bytes`; InvalidInput for a type not accepted, read from the bytes."""
    if principal.role not in roles.REQUEST_WORKERS:
        raise Forbidden(f"role {principal.role!r} may not upload attachments")
    chosen = _visibility(principal, visibility)
    sha256, size = _measure(source, settings.attachments.max_bytes)
    if size == 0:
        raise InvalidInput("file: the file is empty", field="file")
    content_type = sniff(source)
    if content_type is None:
        raise InvalidInput(
            f"file: its content is none of the accepted types ({ACCEPTED_NAMES}), "
            "whatever its name says",
            field="file",
        )
    storage.for_settings(settings).put(session, sha256, source)
    attachment = Attachment(
        sha256=sha256,
        name=clean_name(name),
        content_type=content_type,
        size=size,
        visibility=chosen,
        uploaded_by=principal.id,
        uploaded_at=now,
    )
    repository.add(session, attachment)
    return out(attachment)


def _visibility(principal: Principal, asked: Visibility | None) -> str:
    """Staff upload internal attachments unless they say public; an integration's are what
    the enterprise may see, public, and never internal."""
    if principal.role == roles.INTEGRATION:
        if asked == INTERNAL:
            raise Forbidden("an integration uploads public attachments only")
        return PUBLIC
    return asked or INTERNAL


def _measure(source: IO[bytes], max_bytes: int) -> tuple[str, int]:
    """The SHA-256 and size of the file; TooLarge as soon as it passes `max_bytes`."""
    digest = hashlib.sha256()
    size = 0
    source.seek(0)
    while chunk := source.read(_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"file: larger than the limit of {max_bytes} bytes")
        digest.update(chunk)
    source.seek(0)
    return digest.hexdigest(), size


def clean_name(name: str | None) -> str:
    """The name to download it by: without folders (some browsers send a whole path) or
    control characters, at most 255 characters with its extension kept; "file" if none."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    if len(base) > _MAX_NAME:
        _, dot, extension = base.rpartition(".")
        tail = f"{dot}{extension}" if dot and len(extension) <= 16 else ""
        base = base[: _MAX_NAME - len(tail)] + tail
    return base or "file"


# --- binding -------------------------------------------------------------------------


def bind(
    *,
    session: Session,
    settings: Settings,
    principal: Principal,
    request: Request,
    ids: Sequence[int],
    timeline_seq: int | None,
    now: datetime,
) -> None:
    """Bind the caller's unbound attachments `ids` to the request and its timeline entry
    `timeline_seq`. InvalidInput naming `attachment_ids` for an id named twice, one that
    does not exist, another caller's, one already bound (to any request), or more than
    `attachments.max_per_request` on the request."""
    if not ids:
        return
    wanted = list(dict.fromkeys(ids))
    if len(wanted) != len(ids):
        raise InvalidInput("attachment_ids: an attachment is named twice", field="attachment_ids")
    found = {a.id: a for a in repository.by_ids(session, wanted)}
    unusable = [
        i
        for i in wanted
        if (a := found.get(i)) is None or a.uploaded_by != principal.id or a.request_id is not None
    ]
    if unusable:
        raise _unusable(unusable)
    limit = settings.attachments.max_per_request
    total = repository.count_on_request(session, request.id) + len(wanted)
    if total > limit:
        raise InvalidInput(
            f"attachment_ids: a request holds at most {limit} attachments; "
            f"with these it would hold {total}",
            field="attachment_ids",
        )
    if inspect(request).pending:
        # A request being submitted: its row first, since the attachments refer to it. An
        # existing one is not flushed here: its version check belongs to the caller's flush.
        session.flush()
    claimed = repository.claim(
        session,
        wanted,
        uploaded_by=principal.id,
        request_id=request.id,
        timeline_seq=timeline_seq,
        now=now,
    )
    if claimed != len(wanted):  # a concurrent binding or clean-up took some meanwhile
        raise _unusable(wanted)


def _unusable(ids: Sequence[int]) -> UnknownReference:
    named = ", ".join(map(str, ids))
    return UnknownReference(
        f"attachment_ids: {named}: no attachment you uploaded that is not bound yet",
        kind="attachment",
        codes=[str(i) for i in ids],
        field="attachment_ids",
    )


# --- listing and downloading -----------------------------------------------------------


def of_requests(
    *, session: Session, request_ids: Collection[int], public_only: bool
) -> dict[int, list[AttachmentOnRequest]]:
    """The attachments of each request (every id of `request_ids` is a key), in upload
    order; only the public ones with `public_only` (the public view)."""
    found: dict[int, list[AttachmentOnRequest]] = {rid: [] for rid in request_ids}
    if not request_ids:
        return found
    for a in repository.of_requests(session, request_ids, public_only=public_only):
        if a.request_id is not None:
            found[a.request_id].append(
                AttachmentOnRequest(
                    **out(a).model_dump(), timeline_seq=a.timeline_seq, url=url(a.id)
                )
            )
    return found


@dataclass(frozen=True)
class Download:
    attachment: AttachmentOut
    stored: storage.Stored


def download(
    *,
    session: Session,
    settings: Settings,
    principal: Principal,
    attachment_id: int,
    sees_request: SeesRequest,
) -> Download:
    """The attachment and its bytes, for whoever may see its request: an integration only
    a public one; an unbound one only its uploader. NotFound otherwise, the same as for
    one that does not exist."""
    missing = NotFound(f"no attachment {attachment_id}")
    attachment = repository.get(session, attachment_id)
    if attachment is None:
        raise missing
    if attachment.request_id is None:
        if attachment.uploaded_by != principal.id:
            raise missing
    else:
        if principal.role == roles.INTEGRATION and attachment.visibility != PUBLIC:
            raise missing
        try:
            sees_request(session=session, principal=principal, request_id=attachment.request_id)
        except NotFound:
            raise missing from None
    stored = storage.for_settings(settings).get(session, attachment.sha256)
    if stored is None:
        log.error("attachment %d: no bytes stored under %s", attachment.id, attachment.sha256)
        raise NotFound(f"attachment {attachment_id}: its content is missing from the storage")
    return Download(out(attachment), stored)


# --- clean-up (the worker) --------------------------------------------------------------


def remove_unbound(*, session: Session, settings: Settings, now: datetime, limit: int) -> list[str]:
    """Remove up to `limit` attachments still unbound `attachments.unbound_hours` after
    their upload; returns the SHA-256 of each, for `forget_unnamed`."""
    before = now - timedelta(hours=settings.attachments.unbound_hours)
    return repository.delete_unbound(session, uploaded_before=before, limit=limit)


def forget_unnamed(
    *, session: Session, settings: Settings, candidates: Sequence[str], limit: int
) -> int:
    """Remove the bytes no attachment names any more: of `candidates` (in a directory), or
    any (in the database). Run after `remove_unbound` has committed."""
    return storage.for_settings(settings).forget(session, candidates, limit=limit)
