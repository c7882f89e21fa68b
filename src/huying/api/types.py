"""Types of query parameters shared by the routers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_only(value: Any) -> Any:
    """A date-time must be written as one: pydantic alone would also take a number (`to=0.5`)
    as Unix seconds."""
    if isinstance(value, str) and not _ISO_DATE.match(value.strip()):
        raise ValueError(
            "expected an ISO 8601 date-time with an offset, e.g. 2026-11-01T00:00:00+08:00"
        )
    return value


Instant = Annotated[datetime, BeforeValidator(_iso_only)]
