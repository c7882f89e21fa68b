"""An attachment and, when stored in the database, its bytes.

Files are content-addressed: the bytes of one SHA-256 are kept once (`attachment_blobs`,
or a file named by it in `attachments.storage.directory`), however many attachments name
them. An attachment is uploaded unbound; naming it in `attachment_ids` of a submit or an
action binds it to that request (and that timeline entry); one still unbound 24 hours after
its upload is removed by the worker.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from huying.db import Base, BigID, UTCDateTime


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_request_id_id", "request_id", "id"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))  # as uploaded, for the download's name
    content_type: Mapped[str] = mapped_column(String(100))  # sniffed from the content
    size: Mapped[int] = mapped_column(BigInteger)
    visibility: Mapped[str] = mapped_column(String(16))  # public, internal
    uploaded_by: Mapped[str] = mapped_column(String(100))  # the principal's id
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    request_id: Mapped[int | None] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE")
    )
    timeline_seq: Mapped[int | None] = mapped_column(Integer)  # the entry it came with
    bound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AttachmentBlob(Base):
    """The bytes of one SHA-256, with `attachments.storage: database`."""

    __tablename__ = "attachment_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
