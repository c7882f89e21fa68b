"""The admin page 部门与领导."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
