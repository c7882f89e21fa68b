from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from huying.inputs import Input


class LoginIn(Input):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


class LoginOut(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    username: str
    role: str
    department: str | None


class MeOut(BaseModel):
    id: str
    role: str
    department: str | None
    name: str
