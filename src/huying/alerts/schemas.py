from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from huying.alerts.patterns import pattern_problem
from huying.alerts.signing import secret_problem
from huying.inputs import Input

Status = Literal["pending", "delivered", "dead"]
View = Literal["full", "public"]


def _url(value: str) -> str:
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError("a URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("a webhook URL starts with http:// or https://")
    if not parts.hostname:
        raise ValueError("a webhook URL names a host")
    return value


def _pattern(value: str) -> str:
    if problem := pattern_problem(value):
        raise ValueError(problem)
    return value


def _secret(value: str) -> str:
    if problem := secret_problem(value):
        raise ValueError(problem)
    return value


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_url),
]
EventPattern = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_pattern)]
Secret = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_secret)
]


class WebhookIn(Input):
    url: Url
    event_types: Annotated[
        list[EventPattern], Field(min_length=1, max_length=50), AfterValidator(_unique)
    ] = Field(description="event types to receive; `*` matches any run: request.*, *")
    secret: Secret | None = Field(
        default=None,
        description="whsec_<base64 of 24–64 bytes>; generated when left out",
    )
    description: str = Field(default="", max_length=500)
    department: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="a department code: only the events of requests that this department or "
        "one below it leads, co-handles or has a task of (at fan-out time); left out, every "
        "request's events",
    )
    view: View = Field(
        default="full",
        description="full: every matching event as written; public: only the events of public "
        "timeline entries (submit, dispatch, sign, reply, rating, close, …), their data reduced "
        "to the public view (no notified leaders, no internal notes, no escalation level or "
        "overdue mark), as an integration sees a request",
    )


class WebhookOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    department: str | None = Field(
        description="the department whose subtree's requests it receives; null: all requests"
    )
    view: View = Field(description="full, or public: the public view's events only")
    active: bool
    created_at: datetime
    deactivated_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown this once: keep it to verify signatures")


class DeliveryOut(BaseModel):
    id: int
    subscription_id: int
    event_id: int
    event_uid: str = Field(description="the webhook-id the receiver sees")
    event_type: str
    request_id: int | None
    status: Status
    attempts: int
    next_attempt_at: datetime | None = Field(
        description="while pending, not before then; it also waits for the earlier pending "
        "deliveries of its request to the same subscriber"
    )
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
