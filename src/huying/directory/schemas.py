from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)

from huying.directory.uscc import uscc_problem
from huying.durations import parse_duration
from huying.inputs import Input
from huying.settings import DEFAULT_URGENCY
from huying.workflow.definition import DEADLINE_KINDS, OPTIONAL_KINDS

Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$"
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
GridCode = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[0-9A-Za-z]+$"
    ),
]


def _uscc(value: str) -> str:
    value = value.strip().upper()
    if problem := uscc_problem(value):
        raise ValueError(f"invalid USCC {value!r}: {problem}")
    return value


USCC = Annotated[str, StringConstraints(max_length=40), AfterValidator(_uscc)]


class Leader(Input):
    name: Name
    title: str = Field(default="", max_length=100)
    role: str = Field(
        default="department_head",
        max_length=64,
        pattern=r"^[a-z_]+$",
        description="whom an escalation rung notifies, e.g. department_head, street_leadership",
    )
    phone: str = Field(default="", max_length=50)


class DepartmentIn(Input):
    code: Code
    name: Name
    parent_code: Code | None = None
    leaders: list[Leader] = Field(default_factory=list, max_length=20)


class DepartmentOut(BaseModel):
    code: str
    name: str
    parent_code: str | None
    leaders: list[Leader]


class ChainIn(Input):
    code: Code
    name: Name
    leader_uscc: USCC | None = None
    liaison_department: Code | None = None


class ChainOut(BaseModel):
    code: str
    name: str
    leader_uscc: str | None
    liaison_department: str | None


def _time_limits(value: dict[str, str]) -> dict[str, str]:
    for kind, text in value.items():
        if kind not in (*DEADLINE_KINDS, *OPTIONAL_KINDS):
            known = ", ".join((*DEADLINE_KINDS, *OPTIONAL_KINDS))
            raise ValueError(f"unknown deadline kind {kind!r} (known: {known})")
        parse_duration(text)
    return value


class CategoryIn(Input):
    code: Code
    name: Name
    group: str = Field(default="", max_length=100)
    urgency: str = Field(default=DEFAULT_URGENCY, max_length=32)
    lead_department: Code | None = None
    co_departments: list[Code] = Field(default_factory=list, max_length=20)
    time_limits: Annotated[
        dict[str, Annotated[str, Field(max_length=64)]], AfterValidator(_time_limits)
    ] = Field(
        default_factory=dict, description='per deadline kind, e.g. {"reply": "3 working days"}'
    )
    description: str = Field(default="", max_length=2000)


class CategoryOut(BaseModel):
    code: str
    name: str
    group: str
    urgency: str
    lead_department: str | None
    co_departments: list[str]
    time_limits: dict[str, str]
    description: str


class EnterpriseIn(Input):
    uscc: USCC
    name: Name
    chain: Code | None = None
    grid_code: GridCode | None = None
    address: str = Field(default="", max_length=300)
    contact_name: str = Field(default="", max_length=100)
    contact_phone: str = Field(default="", max_length=50)


class EnterpriseOut(BaseModel):
    uscc: str
    name: str
    chain: str | None
    grid_code: str | None
    address: str
    contact_name: str
    contact_phone: str


class RoutingRuleIn(Input):
    category: Code | None = None
    grid_prefix: GridCode | None = None
    chain: Code | None = None
    department: Code
    co_departments: list[Code] = Field(default_factory=list, max_length=20)
    priority: StrictInt = Field(default=100, ge=0, le=10_000)

    @model_validator(mode="after")
    def _one_condition(self) -> RoutingRuleIn:
        if self.chain is None and not self.grid_prefix:
            raise ValueError("a routing rule needs a grid_prefix or a chain (or both)")
        return self


class RoutingRuleOut(BaseModel):
    id: int
    category: str | None
    grid_prefix: str | None
    chain: str | None
    department: str
    co_departments: list[str]
    priority: int
