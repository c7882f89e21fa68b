"""Time limits as configured: "2 hours", "PT2S", "4 working hours", "5 working days"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Literal

from pydantic import TypeAdapter, ValidationError

DurationKind = Literal["calendar", "working_hours", "working_days"]

_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_WORDS = re.compile(
    r"(?P<amount>\d+(?:\.\d+)?)\s*(?P<working>working\s+)?"
    r"(?P<unit>second|minute|hour|day|week)s?"
)
_ISO = TypeAdapter(timedelta)
_ACCEPTED = (
    "expected a non-negative amount such as '30 seconds', '15 minutes', '1.5 hours', '3 days', "
    "'2 weeks', ISO 8601 'P1DT2H', '4 working hours' or '5 working days' (a whole number)"
)


@dataclass(frozen=True)
class Duration:
    kind: DurationKind
    seconds: float  # calendar and working_hours: length in (working) seconds; 0 for working_days
    days: int  # working_days: number of working days; 0 for the other kinds
    text: str  # the text it was written as

    def __str__(self) -> str:
        return self.text


# Limits beyond these are typing mistakes, and would walk the calendar for seconds.
MAX_CALENDAR_SECONDS = 3 * 365 * 86400  # three years
MAX_WORKING_DAYS = 750  # about three years of working days
MAX_WORKING_SECONDS = MAX_WORKING_DAYS * 8 * 3600


@lru_cache(maxsize=1024)
def parse_duration(text: str) -> Duration:
    """Parse a time limit; raise ValueError naming the text and what is accepted. Kept per
    text (a Duration is frozen): the worker reads each rung's delay for every step it fires,
    from the same few texts of the configuration."""
    duration = _parse(text)
    if (
        duration.seconds
        > (MAX_WORKING_SECONDS if duration.kind == "working_hours" else MAX_CALENDAR_SECONDS)
        or duration.days > MAX_WORKING_DAYS
    ):
        raise ValueError(f"invalid duration {text!r}: longer than three years")
    return duration


def _parse(text: str) -> Duration:
    if len(text) > 64:
        raise ValueError(f"invalid duration {text[:64]!r}…: too long")
    cleaned = text.strip().lower()
    if cleaned.startswith("p"):
        return Duration("calendar", _parse_iso(text), 0, text.strip())
    match = _WORDS.fullmatch(cleaned)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: {_ACCEPTED}")
    amount, unit = match["amount"], match["unit"]
    if not match["working"]:
        return Duration("calendar", float(amount) * _UNIT_SECONDS[unit], 0, text.strip())
    if unit == "day":
        if "." in amount:
            raise ValueError(f"invalid duration {text!r}: working days must be a whole number")
        return Duration("working_days", 0.0, int(amount), text.strip())
    if unit == "week":
        raise ValueError(f"invalid duration {text!r}: use working days instead of working weeks")
    return Duration("working_hours", float(amount) * _UNIT_SECONDS[unit], 0, text.strip())


def make_duration(kind: DurationKind, amount: float) -> Duration:
    """Build a Duration with a canonical text that `parse_duration` reads back.

    `amount` is seconds for calendar and working_hours, a day count for working_days.
    """
    if amount < 0:
        raise ValueError(f"a duration cannot be negative: {amount}")
    if kind == "working_days":
        if not float(amount).is_integer():
            raise ValueError(f"working days must be a whole number: {amount}")
        days = int(amount)
        return Duration(kind, 0.0, days, f"{days} working day{'s' if days != 1 else ''}")
    units = ["day", "hour", "minute"] if kind == "calendar" else ["hour", "minute"]
    unit = next((u for u in units if amount and amount % _UNIT_SECONDS[u] == 0), "second")
    count = amount / _UNIT_SECONDS[unit]
    number = str(int(count)) if count.is_integer() else repr(count)
    working = "working " if kind == "working_hours" else ""
    return Duration(kind, float(amount), 0, f"{number} {working}{unit}{'s' if count != 1 else ''}")


def _parse_iso(text: str) -> float:
    date_part = text.strip().upper().partition("T")[0]
    if "Y" in date_part or "M" in date_part:
        raise ValueError(f"invalid duration {text!r}: years and months have no fixed length")
    try:
        value = _ISO.validate_python(text.strip().upper())
    except ValidationError:
        raise ValueError(f"invalid duration {text!r}: {_ACCEPTED}") from None
    return value.total_seconds()
