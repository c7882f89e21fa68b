from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from huying.alerts.patterns import pattern_problem
from huying.inputs import Input

Status = Literal["pending", "delivered", "dead"]
View = Literal["full", "public"]
# The message's shape and signing: Standard Webhooks JSON, or a group robot's message
# (huying.alerts.robots).
Format = Literal["standard", "wecom", "dingtalk", "feishu"]


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


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_url),
]
EventPattern = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_pattern)]
# Checked against the subscription's format when subscribing (`robots.secret_problem`).
Secret = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
EventTypes = Annotated[
    list[EventPattern], Field(min_length=1, max_length=50), AfterValidator(_unique)
]


class WebhookIn(Input):
    url: Url
    event_types: EventTypes = Field(
        description="event types to receive; `*` matches any run: request.*, *"
    )
    format: Format = Field(
        default="standard",
        description="standard: Standard Webhooks JSON, signed; wecom, dingtalk, feishu: that "
        "platform's group robot message, in Chinese, for the leaders in the group",
    )
    secret: Secret | None = Field(
        default=None,
        description="standard: whsec_<base64 of 24–64 bytes>, generated when left out; "
        "dingtalk: the robot's SEC… signing secret, feishu: its signing secret (either "
        "only if the robot has signing on); wecom: none (the key is in the URL)",
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


class WebhookPatch(Input):
    """What an admin may change of a subscription; a field left out stays as it is. Its
    format and secret stay: a new robot or a new secret is a new subscription."""

    paused: bool | None = Field(
        default=None,
        description="true: stop sending (deliveries are still queued, in order); false: "
        "send again, the queued ones first",
    )
    event_types: EventTypes | None = Field(
        default=None, description="from the next fan-out on; queued deliveries stay"
    )
    description: str | None = Field(default=None, max_length=500)
    url: Url | None = Field(default=None, description="checked as when subscribing")

    @model_validator(mode="after")
    def _something(self) -> WebhookPatch:
        if not self.model_fields_set:
            raise ValueError("name at least one of paused, event_types, description, url")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: give a value, or leave the field out")
        return self


class WebhookOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    department: str | None = Field(
        description="the department whose subtree's requests it receives; null: all requests"
    )
    view: View = Field(description="full, or public: the public view's events only")
    format: Format = Field(description="standard, or the group robot it posts to")
    active: bool
    paused: bool = Field(description="paused by an admin: deliveries wait, in order")
    paused_at: datetime | None
    created_at: datetime
    deactivated_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="standard: shown this once, keep it to verify signatures; a robot: its "
        "secret as given (empty when it has none)"
    )


class TestOutcome(BaseModel):
    """What one test message got: sent synchronously, recorded nowhere but the audit log."""

    ok: bool
    status_code: int | None = Field(description="the HTTP status, if an answer came")
    error: str | None = Field(description="why it failed, in Huying's words; null when ok")


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
