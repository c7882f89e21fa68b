"""What the Open311 facade answers, field by field as GeoReport v2 names them, and the
filters of GET requests once read. Rendered as JSON or XML by `huying.open311.formats`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

# The one attribute every service asks for: which enterprise the request is for.
USCC_ATTRIBUTE = "enterprise_uscc"


class ServiceOut(BaseModel):
    """A category of the call list as an Open311 service."""

    service_code: str
    service_name: str
    description: str
    metadata: bool = True  # every service has the attribute enterprise_uscc
    type: Literal["realtime"] = "realtime"  # the request's number comes back at once
    keywords: str = ""
    group: str


class ValueOut(BaseModel):
    key: str
    name: str


class AttributeOut(BaseModel):
    variable: bool = True
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[ValueOut] = []


class ServiceDefinitionOut(BaseModel):
    service_code: str
    attributes: list[AttributeOut]


class CreatedOut(BaseModel):
    """The answer to POST requests: the request's number, and what happens next."""

    service_request_id: str
    service_notice: str
    account_id: str | None


class ServiceRequestOut(BaseModel):
    """A request in the public view: no leaders, no internal notes, no returns."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    lat: float | None
    long: float | None
    media_url: str | None


@dataclass(frozen=True)
class RequestQuery:
    """GET requests, read: either `numbers` (which overrides every other filter), or the
    service codes, the statuses and the period [start, end] of the request's submission."""

    numbers: Sequence[str] = ()
    service_codes: Sequence[str] = ()
    statuses: frozenset[str] = frozenset()
    start: datetime | None = None
    end: datetime | None = None
