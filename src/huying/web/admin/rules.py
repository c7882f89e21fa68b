"""The admin page 派单规则."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
