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


# --- users and keys, the admin's ------------------------------------------------------


class UserIn(Input):
    """A new staff user. The rules (username letters, password length, a role for people and
    its department) are the service's, so that the API, the console and the CLI say the same."""

    username: str = Field(min_length=1, max_length=64)
    display_name: str = Field(default="", max_length=100)
    password: str = Field(min_length=1, max_length=200, description="at least 8 characters")
    role: str = Field(max_length=32, description="admin, dispatcher, supervisor or department")
    department: str | None = Field(
        default=None,
        max_length=64,
        description="required for the department role; binds a dispatcher or supervisor "
        "to that department and those below it",
    )


class UserPatch(Input):
    """What to change; a field left out stays as it is. `department: null` unbinds the user,
    `password` resets it (the user's console sessions end), `active: false` disables the user
    (their sessions end at once and they cannot log in)."""

    active: bool | None = None
    role: str | None = Field(default=None, max_length=32)
    department: str | None = Field(default=None, max_length=64)
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, min_length=1, max_length=200)


class UserOut(BaseModel):
    """A staff user as the admin sees them: never the password or its hash."""

    username: str
    display_name: str
    role: str
    department: str | None
    active: bool
    created_at: datetime


class KeyIn(Input):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: str = Field(max_length=32)
    department: str | None = Field(default=None, max_length=64)


class KeyOut(BaseModel):
    """An API key as the admin sees it: its prefix tells keys apart, never the token or hash."""

    id: int
    name: str
    prefix: str
    role: str
    department: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    token: str = Field(description="the key itself: shown this once, only its hash is kept")
