"""Reading what an Open311 client sends: the fields of a form-encoded POST or of a query
string, the filters of GET requests, and a POST's fields as the submit of a request.

Open311's rules, kept here: an optional argument sent empty counts as not sent; a list
argument (`service_request_id`, `service_code`, `status`) is comma delimited and may also be
sent several times; dates are w3 date-times with their time zone. Unknown fields are refused
(400), never ignored: a misspelt filter must not silently return everything. Pure: no
database, no HTTP.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import parse_qsl

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from huying.errors import InvalidInput, validation_message
from huying.open311.schemas import USCC_ATTRIBUTE, RequestQuery
from huying.requests.schemas import SubmitIn

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 100
# GET requests: at most this many ids or codes at once, and a period of at most 90 days.
MAX_LISTED = 200
MAX_SPAN = timedelta(days=90)
TITLE_LENGTH = 30  # a request's title: the description's first line, cut to this

# Every call may name the jurisdiction and carry the key.
COMMON = frozenset({"api_key", "jurisdiction_id"})
POST_FIELDS = COMMON | {
    "service_code",
    f"attribute[{USCC_ATTRIBUTE}]",
    "description",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "media_url",
}
LIST_FIELDS = frozenset({"service_request_id", "service_code", "status"})
QUERY_FIELDS = COMMON | LIST_FIELDS | {"start_date", "end_date"}
STATUSES = ("open", "closed")

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # a category code (directory.schemas.Code)
_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,32}$")  # a request number, HY-20261118-000001
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CJK = re.compile(r"[\u3400-\u9fff]")


def form_pairs(body: bytes, content_type: str | None) -> list[tuple[str, str]]:
    """The fields of a POST body, in order. Open311 sends them form-encoded in UTF-8."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != FORM:
        raise InvalidInput(f"send the fields as {FORM}, not {media or 'no Content-Type'}")
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise InvalidInput("the fields are not UTF-8") from None
    except ValueError:
        raise InvalidInput(f"more than {MAX_FIELDS} fields") from None


def fields(pairs: Iterable[tuple[str, str]], *, allowed: frozenset[str]) -> dict[str, str]:
    """Each field once, empty ones left out. A list field may come several times (its values
    are joined with commas); any other field twice, an unknown field or a NUL character is
    refused, naming the field."""
    found: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"{_shown(name)}: a NUL character cannot be stored")
        if name not in allowed:
            raise InvalidInput(_unknown(name, allowed))
        value = value.strip()
        if not value:
            continue
        if name in found and name not in LIST_FIELDS:
            raise InvalidInput(f"{name}: sent more than once")
        found[name] = f"{found[name]},{value}" if name in found else value
    return found


def is_code(text: str) -> bool:
    """Whether `text` can be a service code (a category's code)."""
    return _CODE.match(text) is not None


def is_number(text: str) -> bool:
    """Whether `text` can be a service_request_id (a request's number)."""
    return _NUMBER.match(text) is not None


def _shown(name: str) -> str:
    return name[:64].replace("\x00", "\\0") or "a field"


def _unknown(name: str, allowed: frozenset[str]) -> str:
    if name.startswith("attribute["):
        return (
            f"{_shown(name)}: no such attribute; every service asks for "
            f"attribute[{USCC_ATTRIBUTE}] only"
        )
    return f"{_shown(name)}: not a field this call takes (it takes {', '.join(sorted(allowed))})"


def listed(text: str | None, name: str) -> list[str]:
    """A comma-delimited list argument's items, each once, in order."""
    items = [item.strip() for item in (text or "").split(",")]
    unique = list(dict.fromkeys(item for item in items if item))
    if len(unique) > MAX_LISTED:
        raise InvalidInput(f"{name}: at most {MAX_LISTED} at once")
    return unique


def instant(text: str, name: str, tz: tzinfo) -> datetime:
    """A w3 date-time with its zone (`2026-11-18T00:00:00Z`, `…+08:00`), or a bare date
    (midnight in the calendar's time zone); in UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{name}: {text[:40]!r} is not a w3 date-time, e.g. 2026-11-18T00:00:00+08:00"
        ) from None
    if _DATE_ONLY.match(text):
        moment = moment.replace(tzinfo=tz)
    elif moment.tzinfo is None:
        raise InvalidInput(f"{name}: give the time zone, e.g. 2026-11-18T00:00:00+08:00 or …Z")
    if not 1970 <= moment.year <= 9000:
        raise InvalidInput(f"{name}: a year between 1970 and 9000, please")
    return moment.astimezone(UTC)


def request_query(given: Mapping[str, str], *, tz: tzinfo, now: datetime) -> RequestQuery:
    """GET requests' filters. `service_request_id` overrides every other argument; without
    it the period is [start_date, end_date], at most 90 days: 90 days from start_date or
    up to end_date when only one is given, and the most recent 90 days when neither is."""
    numbers = listed(given.get("service_request_id", "").upper(), "service_request_id")
    if bad := [n for n in numbers if not is_number(n)]:
        raise InvalidInput(f"service_request_id: {bad[0][:40]!r} is not a request number")
    codes = listed(given.get("service_code"), "service_code")
    if bad := [c for c in codes if not is_code(c)]:
        raise InvalidInput(f"service_code: {bad[0][:40]!r} is not a service code")
    statuses = listed(given.get("status", "").lower(), "status")
    if bad := [s for s in statuses if s not in STATUSES]:
        raise InvalidInput(f"status: {bad[0][:40]!r}; one of open, closed")
    start = instant(given["start_date"], "start_date", tz) if "start_date" in given else None
    end = instant(given["end_date"], "end_date", tz) if "end_date" in given else None
    start, end = _period(start, end, now)
    return RequestQuery(
        numbers=numbers,
        service_codes=codes,
        statuses=frozenset(statuses),
        start=start,
        end=end,
    )


def _period(
    start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime | None]:
    if start is not None and end is not None:
        if end < start:
            raise InvalidInput("end_date: before start_date")
        if end - start > MAX_SPAN:
            raise InvalidInput("start_date, end_date: at most 90 days apart")
        return start, end
    if start is not None:
        return start, start + MAX_SPAN
    if end is not None:
        return end - MAX_SPAN, end
    return now - MAX_SPAN, None


# ---- POST requests: the form as a submit -------------------------------------------------

# Where SubmitIn's fields come from in the form, to name them as the client sent them.
_SENT_AS = {
    "enterprise_uscc": f"attribute[{USCC_ATTRIBUTE}]",
    "category": "service_code",
    "title": "description",
    "address": "address_string",
    "media_urls": "media_url",
}


def submit_body(given: Mapping[str, str]) -> SubmitIn:
    """The submit a POST's fields make: the title is the description's first line (at most
    30 characters), the contact is the name and phone, the place lat/long or the address.
    InvalidInput names each field that is missing or wrong, as the client sent it."""
    problems = _missing(given)
    if problems:
        raise InvalidInput("; ".join(problems), problems=problems)
    description = given["description"]
    name = _person(given.get("first_name", ""), given.get("last_name", ""))
    phone = given.get("phone", "")
    data: dict[str, object] = {
        "enterprise_uscc": given[f"attribute[{USCC_ATTRIBUTE}]"],
        "category": given["service_code"],
        "title": _title(description),
        "description": description,
        "source": "api",
        "lat": _degrees(given, "lat", problems),
        "long": _degrees(given, "long", problems),
        "address": given.get("address_string"),
        "media_urls": [given["media_url"]] if "media_url" in given else [],
        "contact": {"name": name, "phone": phone} if name or phone else None,
    }
    if problems:
        raise InvalidInput("; ".join(problems), problems=problems)
    try:
        return SubmitIn.model_validate(data)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_problem(e) for e in exc.errors()))
        raise InvalidInput("; ".join(problems), problems=problems) from None


def _missing(given: Mapping[str, str]) -> list[str]:
    problems = []
    if "service_code" not in given:
        problems.append("service_code: required (GET services lists them)")
    if f"attribute[{USCC_ATTRIBUTE}]" not in given:
        problems.append(
            f"attribute[{USCC_ATTRIBUTE}]: required: the enterprise's unified social credit code"
        )
    if "description" not in given:
        problems.append("description: required: the request's title is its first line")
    has_point = "lat" in given or "long" in given
    if has_point and not ("lat" in given and "long" in given):
        problems.append("lat, long: send both, or address_string instead")
    elif not has_point and "address_string" not in given:
        hint = " (address_id is not used here)" if "address_id" in given else ""
        problems.append(f"lat/long or address_string: one of them is required{hint}")
    return problems


def _degrees(given: Mapping[str, str], name: str, problems: list[str]) -> float | None:
    if name not in given:
        return None
    try:
        value = float(given[name])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        problems.append(f"{name}: {given[name][:40]!r} is not a number of degrees")
        return None
    return value


def _title(description: str) -> str:
    first = next((line.strip() for line in description.splitlines() if line.strip()), "")
    return first[:TITLE_LENGTH].rstrip()


def _person(first: str, last: str) -> str:
    """The submitter's name: family name first for a Chinese name (张 + 三 = 张三),
    given name first otherwise."""
    if not (first and last):
        return first or last
    return f"{last}{first}" if _CJK.search(first + last) else f"{first} {last}"


def _problem(error: ErrorDetails) -> str:
    loc = error["loc"]
    head = str(loc[0]) if loc else ""
    if head == "contact":
        sent_as = "phone" if list(loc[1:2]) == ["phone"] else "first_name, last_name"
    else:
        sent_as = _SENT_AS.get(head, head) or "the fields"
    return f"{sent_as}: {validation_message(error)}"
