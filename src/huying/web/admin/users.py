"""The admin page 用户与密钥."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
