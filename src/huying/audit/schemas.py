from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str  # "user:<username>", "key:<id>", "cli"
    action: str  # "<target_type>.<verb>": department.update, key.revoke, delivery.redeliver
    target_type: str
    target_id: str
    before: dict[str, Any] | None  # None: the write created it
    after: dict[str, Any] | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None
