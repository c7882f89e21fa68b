"""The admin page 工作日历."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
