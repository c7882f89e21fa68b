"""Attachment queries. Binding claims rows with a conditional UPDATE (only the uploader's,
only unbound ones), so two requests can never both bind one attachment; the blob and
clean-up queries lock as `huying.attachments.storage` explains."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from huying.attachments.models import Attachment, AttachmentBlob


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- attachments ------------------------------------------------------------------


def add(session: Session, attachment: Attachment) -> None:
    session.add(attachment)
    session.flush()


def get(session: Session, attachment_id: int) -> Attachment | None:
    return session.get(Attachment, attachment_id)


def by_ids(session: Session, ids: Collection[int]) -> Sequence[Attachment]:
    return session.scalars(select(Attachment).where(Attachment.id.in_(ids))).all()


def count_on_request(session: Session, request_id: int) -> int:
    query = select(func.count()).select_from(Attachment).where(Attachment.request_id == request_id)
    return int(session.scalar(query) or 0)


def claim(
    session: Session,
    ids: Collection[int],
    *,
    uploaded_by: str,
    request_id: int,
    timeline_seq: int | None,
    now: datetime,
) -> int:
    """Bind those of `ids` that `uploaded_by` uploaded and that are still unbound; returns
    how many were."""
    result = session.execute(
        update(Attachment)
        .where(
            Attachment.id.in_(ids),
            Attachment.uploaded_by == uploaded_by,
            Attachment.request_id.is_(None),
        )
        .values(request_id=request_id, timeline_seq=timeline_seq, bound_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def of_requests(
    session: Session, request_ids: Collection[int], *, public_only: bool
) -> Sequence[Attachment]:
    """The attachments bound to these requests, by request and in upload order."""
    query = select(Attachment).where(Attachment.request_id.in_(request_ids))
    if public_only:
        query = query.where(Attachment.visibility == "public")
    return session.scalars(query.order_by(Attachment.request_id, Attachment.id)).all()


def delete_unbound(session: Session, *, uploaded_before: datetime, limit: int) -> list[str]:
    """Delete at most `limit` attachments still unbound that were uploaded before the
    instant; returns the SHA-256 of each. Rows another worker (or a binding) holds are left
    for the next run."""
    query = (
        select(Attachment.id, Attachment.sha256)
        .where(Attachment.request_id.is_(None), Attachment.uploaded_at < uploaded_before)
        .order_by(Attachment.id)
        .limit(limit)
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    if not rows:
        return []
    session.execute(
        delete(Attachment)
        .where(Attachment.id.in_([r.id for r in rows]), Attachment.request_id.is_(None))
        .execution_options(synchronize_session=False)
    )
    return [r.sha256 for r in rows]


def named_shas(session: Session, shas: Collection[str]) -> set[str]:
    """Those of `shas` that some attachment names."""
    if not shas:
        return set()
    query = select(Attachment.sha256).where(Attachment.sha256.in_(shas)).distinct()
    return set(session.scalars(query))


# --- blobs (attachments.storage: database) --------------------------------------------


def hold_blob(session: Session, sha256: str) -> bool:
    """Whether the blob is kept; if so it stays locked (FOR SHARE) until the commit, so
    that `delete_unnamed_blobs` cannot remove it under an upload that reuses it."""
    query = select(AttachmentBlob.sha256).where(AttachmentBlob.sha256 == sha256)
    if _postgresql(session):
        query = query.with_for_update(read=True)
    return session.scalar(query) is not None


def add_blob(session: Session, sha256: str, data: bytes) -> None:
    """Keep the bytes; an upload of the same bytes that got there first keeps its own row."""
    insert = pg_insert if _postgresql(session) else sqlite_insert
    session.execute(
        insert(AttachmentBlob)
        .values(sha256=sha256, data=data)
        .on_conflict_do_nothing(index_elements=["sha256"])
    )


def blob_data(session: Session, sha256: str) -> bytes | None:
    query = select(AttachmentBlob.data).where(AttachmentBlob.sha256 == sha256)
    data: bytes | None = session.scalar(query)
    return data


def delete_unnamed_blobs(session: Session, *, limit: int) -> int:
    """Delete at most `limit` blobs no attachment names. The candidates are locked first
    (skipping those an upload holds), then deleted by a second statement that checks again
    with what has been committed since (on PostgreSQL each statement sees the latest)."""
    unnamed = ~exists().where(Attachment.sha256 == AttachmentBlob.sha256)
    query = (
        select(AttachmentBlob.sha256).where(unnamed).order_by(AttachmentBlob.sha256).limit(limit)
    )
    if _postgresql(session):
        query = query.with_for_update(skip_locked=True)
    candidates = list(session.scalars(query))
    if not candidates:
        return 0
    result = session.execute(
        delete(AttachmentBlob)
        .where(AttachmentBlob.sha256.in_(candidates), unnamed)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
