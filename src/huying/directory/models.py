from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from huying.db import Base, BigID, JSONType, UTCDateTime
from huying.settings import DEFAULT_URGENCY


class Department(Base):
    """A department of the tree. Every directory entry has `active`: retiring one (`active:
    false`) keeps it, and everything that names it, readable; nothing referenced is deleted."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT")
    )
    # [{"name": ..., "title": ..., "role": "department_head", "phone": ...}]
    leaders: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Chain(Base):
    """An industrial chain (产业链), e.g. 新型显示; its liaison department serves its enterprises."""

    __tablename__ = "chains"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    leader_uscc: Mapped[str | None] = mapped_column(String(18))  # 链主
    liaison_department_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT")
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Category(Base):
    """One entry of the call list (呼叫清单)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    group: Mapped[str] = mapped_column(String(100), default="")
    urgency: Mapped[str] = mapped_column(String(32), default=DEFAULT_URGENCY)
    # per deadline kind overrides: {"reply": "3 working days"}
    time_limits: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    lead_department_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT")
    )
    co_department_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Enterprise(Base):
    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    chain_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("chains.code", ondelete="RESTRICT"), index=True
    )
    grid_code: Mapped[str | None] = mapped_column(String(32), index=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class RoutingRule(Base):
    """Overrides a category's lead department for a grid-code prefix or a chain.

    The most specific matching rule wins: a named category before any category,
    then the longer grid prefix, then a chain over no chain; ties go to the
    lower priority number, then the older rule.
    """

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    category_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("categories.code", ondelete="CASCADE"), index=True
    )
    grid_prefix: Mapped[str | None] = mapped_column(String(32))
    chain_code: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("chains.code", ondelete="CASCADE")
    )
    department_code: Mapped[str] = mapped_column(
        String(64), ForeignKey("departments.code", ondelete="RESTRICT")
    )
    co_department_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
