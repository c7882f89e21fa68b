"""Cursor paging, the one way every list of the API pages on: newest (or first) rows up to
`limit`, and an opaque cursor naming the last row's id when there is more. A cursor names its
list's kind, so that one list's cursor is refused by another's."""

from __future__ import annotations

import base64

from huying.errors import InvalidInput

MAX_ID = 2**62


def encode(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode(kind: str, cursor: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    found, _, value = raw.partition(":")
    if found != kind or not value.isdigit() or len(value) > 18:
        return None
    return int(value) if int(value) <= MAX_ID else None


def after_id(kind: str, cursor: str | None) -> int | None:
    """The id a page cursor continues after; InvalidInput for a cursor this API never gave."""
    if cursor is None:
        return None
    found = decode(kind, cursor)
    if found is None:
        raise InvalidInput("cursor: not a cursor this API returned", field="cursor")
    return found
