"""Event-type patterns of a subscription, pure: `request.dispatched`, `request.*`, `*`.

A pattern is made of lower-case letters, digits, `_`, `.` and `*`; `*` stands for any run
of characters, dots included, so `request.*` takes every request event and `*` takes all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

PATTERN = re.compile(r"[a-z0-9_*]+(\.[a-z0-9_*]+)*")
MAX_LENGTH = 64


def pattern_problem(pattern: str) -> str | None:
    if len(pattern) > MAX_LENGTH:
        return f"an event-type pattern has at most {MAX_LENGTH} characters"
    if not PATTERN.fullmatch(pattern):
        return (
            f"{pattern!r} is not an event-type pattern: dot-separated lower-case words, "
            "`*` for any run of characters (request.*, *.overdue, *)"
        )
    return None


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def matches(patterns: Iterable[str], event_type: str) -> bool:
    return any(_regex(p).fullmatch(event_type) for p in patterns)


def unmatched(patterns: Iterable[str], event_types: Iterable[str]) -> list[str]:
    """The patterns that match none of the event types, in the order given."""
    known = list(event_types)
    return [p for p in patterns if not any(_regex(p).fullmatch(t) for t in known)]
