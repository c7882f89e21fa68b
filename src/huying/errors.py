"""One error type per failure kind. `huying.api.problems` maps each to one HTTP status.

Pure: the workflow core raises these too.
"""

from __future__ import annotations

from typing import Any


class HuyingError(Exception):
    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(HuyingError):
    """The input is malformed or names something that does not exist (422)."""


class NotAuthenticated(HuyingError):
    """No valid credentials (401)."""


class Forbidden(HuyingError):
    """The caller's role or department may not do this (403)."""


class NotFound(HuyingError):
    """Nothing there, or nothing the caller may see (404)."""


class Conflict(HuyingError):
    """The current state does not allow it, or a concurrent change won (409)."""


class PreconditionFailed(HuyingError):
    """If-Match named a version that is no longer current (412)."""


class Unavailable(HuyingError):
    """A dependency (the database) is unreachable for now (503)."""


class TooLarge(HuyingError):
    """The request body is larger than allowed (413); nothing past the limit was read."""


class TooManyRequests(HuyingError):
    """Too many attempts for now (429); `retry_after` says in how many seconds to try again."""

    def __init__(self, detail: str, *, retry_after: int, **extra: object) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after
