"""The admin page 审计日志."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
