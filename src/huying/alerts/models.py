from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from huying.db import Base, BigID, JSONType, UTCDateTime

if TYPE_CHECKING:
    from huying.requests.models import Request


class Event(Base):
    """The outbox: written in the same transaction as the change it reports."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # the stable webhook-id
    type: Mapped[str] = mapped_column(String(64), index=True)
    request_id: Mapped[int | None] = mapped_column(
        BigID, ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)

    request: Mapped[Request | None] = relationship(lazy="raise")
