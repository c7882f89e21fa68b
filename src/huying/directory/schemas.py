from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
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
CodeList = Annotated[list[Code], Field(max_length=20)]
Text100 = Annotated[str, Field(max_length=100)]
Address = Annotated[str, Field(max_length=300)]
Phone = Annotated[str, Field(max_length=50)]
Urgency = Annotated[str, Field(max_length=32)]
Description = Annotated[str, Field(max_length=2000)]
Priority = Annotated[StrictInt, Field(ge=0, le=10_000)]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave the field out to keep its value")
    return value


# A patch's field that has no "empty" value (a name, a list): null is refused rather than
# read as "keep" or "clear", so that a client's null never means something it did not say.
Given = BeforeValidator(_not_null)


class Patch(Input):
    """A change to a stored entry: the fields given are changed, the others kept. The
    entry's key (code, USCC, id) is the path's and cannot be changed; `active: false`
    retires the entry, `true` restores it. The merged entry is checked as a new one is."""

    active: Annotated[bool | None, Given] = None


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


Leaders = Annotated[list[Leader], Field(max_length=20)]


class DepartmentIn(Input):
    code: Code
    name: Name
    parent_code: Code | None = None
    leaders: Leaders = Field(default_factory=list)


class DepartmentPatch(Patch):
    name: Annotated[Name | None, Given] = None
    parent_code: Code | None = Field(default=None, description="null: a top-level department")
    leaders: Annotated[Leaders | None, Given] = None


class DepartmentOut(BaseModel):
    code: str
    name: str
    parent_code: str | None
    leaders: list[Leader]
    active: bool


class ChainIn(Input):
    code: Code
    name: Name
    leader_uscc: USCC | None = None
    liaison_department: Code | None = None


class ChainPatch(Patch):
    name: Annotated[Name | None, Given] = None
    leader_uscc: USCC | None = None
    liaison_department: Code | None = None


class ChainOut(BaseModel):
    code: str
    name: str
    leader_uscc: str | None
    liaison_department: str | None
    active: bool


def _time_limits(value: dict[str, str]) -> dict[str, str]:
    for kind, text in value.items():
        if kind not in (*DEADLINE_KINDS, *OPTIONAL_KINDS):
            known = ", ".join((*DEADLINE_KINDS, *OPTIONAL_KINDS))
            raise ValueError(f"unknown deadline kind {kind!r} (known: {known})")
        parse_duration(text)
    return value


TimeLimits = Annotated[
    dict[str, Annotated[str, Field(max_length=64)]], AfterValidator(_time_limits)
]
TIME_LIMITS = 'per deadline kind, e.g. {"reply": "3 working days"}'


class CategoryIn(Input):
    code: Code
    name: Name
    group: Text100 = ""
    urgency: Urgency = DEFAULT_URGENCY
    lead_department: Code | None = None
    co_departments: CodeList = Field(default_factory=list)
    time_limits: TimeLimits = Field(default_factory=dict, description=TIME_LIMITS)
    description: Description = ""


class CategoryPatch(Patch):
    name: Annotated[Name | None, Given] = None
    group: Annotated[Text100 | None, Given] = None
    urgency: Annotated[Urgency | None, Given] = None
    lead_department: Code | None = None
    co_departments: Annotated[CodeList | None, Given] = None
    time_limits: Annotated[TimeLimits | None, Given] = Field(default=None, description=TIME_LIMITS)
    description: Annotated[Description | None, Given] = None


class CategoryOut(BaseModel):
    code: str
    name: str
    group: str
    urgency: str
    lead_department: str | None
    co_departments: list[str]
    time_limits: dict[str, str]
    description: str
    active: bool


class EnterpriseIn(Input):
    uscc: USCC
    name: Name
    chain: Code | None = None
    grid_code: GridCode | None = None
    address: Address = ""
    contact_name: Text100 = ""
    contact_phone: Phone = ""


class EnterprisePatch(Patch):
    name: Annotated[Name | None, Given] = None
    chain: Code | None = None
    grid_code: GridCode | None = None
    address: Annotated[Address | None, Given] = None
    contact_name: Annotated[Text100 | None, Given] = None
    contact_phone: Annotated[Phone | None, Given] = None


class EnterpriseOut(BaseModel):
    uscc: str
    name: str
    chain: str | None
    grid_code: str | None
    address: str
    contact_name: str
    contact_phone: str
    active: bool


class EnterprisePage(BaseModel):
    items: list[EnterpriseOut]
    next_cursor: str | None


class RoutingRuleIn(Input):
    category: Code | None = None
    grid_prefix: GridCode | None = None
    chain: Code | None = None
    department: Code
    co_departments: CodeList = Field(default_factory=list)
    priority: Priority = 100

    @model_validator(mode="after")
    def _one_condition(self) -> RoutingRuleIn:
        if self.chain is None and not self.grid_prefix:
            raise ValueError("a routing rule needs a grid_prefix or a chain (or both)")
        return self


class RoutingRulePatch(Patch):
    category: Code | None = Field(default=None, description="null: a rule for every category")
    grid_prefix: GridCode | None = None
    chain: Code | None = None
    department: Annotated[Code | None, Given] = None
    co_departments: Annotated[CodeList | None, Given] = None
    priority: Annotated[Priority | None, Given] = None


class RoutingRuleOut(BaseModel):
    id: int
    category: str | None
    grid_prefix: str | None
    chain: str | None
    department: str
    co_departments: list[str]
    priority: int
    active: bool
