from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from huying.db import Base, BigID, JSONType, UTCDateTime


class AuditEntry(Base):
    """One admin write: appended in the write's own transaction, never changed or deleted.
    `before` is None for a creation, `after` None for what has no state after (a revoked
    key keeps one: its `revoked_at`). Neither holds a secret or a password hash."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_actor", "actor"),
        Index("ix_audit_entries_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))  # user:<name>, key:<id>, cli, system
    action: Mapped[str] = mapped_column(String(64))  # department.update, key.revoke, ...
    target_type: Mapped[str] = mapped_column(String(32))  # department, user, key, webhook, ...
    target_id: Mapped[str] = mapped_column(String(100))  # the code, username or id
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
