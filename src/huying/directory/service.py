"""Directory use cases: create and read departments, chains, categories, enterprises and
routing rules, route a request to its department, and suggest departments to the dispatcher.
Loading the directory from files is `directory.loader`."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, NamedTuple, TypeVar

from sqlalchemy.orm import Session

from huying.directory import notify
from huying.directory import repository as repo
from huying.directory.grids import DEFAULT_GRID_CODE_PATTERN, GridCodes
from huying.directory.models import Category, Chain, Department, Enterprise, RoutingRule
from huying.directory.schemas import (
    CategoryIn,
    CategoryOut,
    ChainIn,
    ChainOut,
    DepartmentIn,
    DepartmentOut,
    EnterpriseIn,
    EnterpriseOut,
    Leader,
    RoutingRuleIn,
    RoutingRuleOut,
)
from huying.errors import Conflict, InvalidInput, NotFound, UnknownReference
from huying.settings import Settings

# --- reads ---------------------------------------------------------------------


def department_out(d: Department) -> DepartmentOut:
    return DepartmentOut(
        code=d.code,
        name=d.name,
        parent_code=d.parent_code,
        leaders=[Leader.model_validate(x) for x in d.leaders or []],
    )


def chain_out(c: Chain) -> ChainOut:
    return ChainOut(
        code=c.code,
        name=c.name,
        leader_uscc=c.leader_uscc,
        liaison_department=c.liaison_department_code,
    )


def category_out(c: Category) -> CategoryOut:
    return CategoryOut(
        code=c.code,
        name=c.name,
        group=c.group,
        urgency=c.urgency,
        lead_department=c.lead_department_code,
        co_departments=list(c.co_department_codes or []),
        time_limits=dict(c.time_limits or {}),
        description=c.description,
    )


def enterprise_out(e: Enterprise) -> EnterpriseOut:
    return EnterpriseOut(
        uscc=e.uscc,
        name=e.name,
        chain=e.chain_code,
        grid_code=e.grid_code,
        address=e.address,
        contact_name=e.contact_name,
        contact_phone=e.contact_phone,
    )


def rule_out(r: RoutingRule) -> RoutingRuleOut:
    return RoutingRuleOut(
        id=r.id,
        category=r.category_code,
        grid_prefix=r.grid_prefix,
        chain=r.chain_code,
        department=r.department_code,
        co_departments=list(r.co_department_codes or []),
        priority=r.priority,
    )


def department(*, session: Session, code: str) -> Department | None:
    return repo.department(session, code)


def departments(*, session: Session) -> Sequence[Department]:
    """All departments, by code."""
    return repo.departments(session)


def subtree(*, session: Session, code: str) -> frozenset[str]:
    """The department `code` and every department below it (its sub-units, theirs …)."""
    return descendants(repo.parents(session), code)


def descendants(parents: Mapping[str, str | None], code: str) -> frozenset[str]:
    """`code` and all below it in the tree given as child → parent."""
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found, todo = {code}, [code]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return frozenset(found)


def escalation_gaps(*, session: Session, settings: Settings) -> list[notify.Gap]:
    """Each (lead department, level) whose rung of the escalation ladder alerts nobody, and
    the levels that alert nobody for requests with no lead department (department None).
    One read of the directory: `huying directory check`, the startup log and /healthz call
    it, so an escalation that would reach no one is seen before a request gets there."""
    found = {d.code: d for d in departments(session=session)}
    return notify.gaps(settings.escalation, found, dispatch_center=settings.dispatch_center)


def known_departments(*, session: Session, codes: Sequence[str]) -> set[str]:
    """Those of `codes` that name a department."""
    return repo.department_codes(session, codes)


def category(*, session: Session, code: str) -> Category | None:
    return repo.category(session, code)


def categories(*, session: Session, active_only: bool = False) -> Sequence[Category]:
    """By group and code; with `active_only`, those on the call list."""
    return repo.categories(session, active_only=active_only)


def chains(*, session: Session) -> Sequence[Chain]:
    return repo.chains(session)


def routing_rules(*, session: Session) -> Sequence[RoutingRule]:
    return repo.routing_rules(session)


def stored_codes(*, session: Session) -> dict[str, set[str]]:
    """The codes stored per kind ("departments", "chains", "categories")."""
    return repo.codes(session)


def enterprise(*, session: Session, uscc: str) -> Enterprise | None:
    """The enterprise of exactly this USCC (as stored: upper case)."""
    return repo.enterprise(session, uscc)


def get_enterprise(*, session: Session, uscc: str) -> Enterprise:
    found = repo.enterprise(session, uscc.strip().upper())
    if found is None:
        raise NotFound(f"no enterprise with USCC {uscc!r}")
    return found


# --- writes --------------------------------------------------------------------
#
# An upsert writes only the fields its input was given (`model_fields_set`): a field left out
# of a file, or a CSV column the file lacks, never erases what is stored. A new row takes the
# schema's defaults for the rest. Each save says whether it created, updated or left the row
# as it was, for `huying load`'s summary.

Outcome = Literal["created", "updated", "unchanged"]
OUTCOMES: tuple[Outcome, ...] = ("created", "updated", "unchanged")
M = TypeVar("M")


@dataclass(frozen=True)
class Saved(Generic[M]):
    item: M
    outcome: Outcome


@functools.lru_cache(maxsize=8)
def grid_codes(pattern: str) -> GridCodes:
    """The checker of `directory.grid_code_pattern`, built once per pattern."""
    return GridCodes(pattern)


def grid_code_problem(code: str, *, pattern: str) -> str | None:
    """What is wrong with a grid code under `directory.grid_code_pattern`, or None. The one
    check for every grid code written: enterprises, and a request's own at submit."""
    return grid_codes(pattern).code_problem(code)


def _save(
    session: Session,
    item: M,
    *,
    new: bool,
    given: set[str],
    values: dict[str, tuple[str, object]],
) -> Saved[M]:
    """Set `values` ({input field: (attribute, value)}) on `item`: every one on a new row,
    only the fields the input gave on a stored one; then flush."""
    changed = False
    for field_name, (attribute, value) in values.items():
        if (new or field_name in given) and getattr(item, attribute) != value:
            setattr(item, attribute, value)
            changed = True
    session.add(item)
    session.flush()
    return Saved(item, "created" if new else "updated" if changed else "unchanged")


def _missing_departments(session: Session, codes: Sequence[str], pending: set[str]) -> list[str]:
    wanted = [c for c in dict.fromkeys(codes) if c not in pending]
    known = repo.department_codes(session, wanted)
    return [c for c in wanted if c not in known]


def save_department(
    *, session: Session, data: DepartmentIn, now: datetime, replace: bool = True
) -> Saved[Department]:
    if data.parent_code is not None:
        if data.parent_code == data.code:
            raise InvalidInput("parent_code: a department cannot be its own parent")
        if repo.department(session, data.parent_code) is None:
            raise UnknownReference(
                f"parent_code: unknown department {data.parent_code!r}",
                kind="department",
                codes=[data.parent_code],
                field="parent_code",
            )
    existing = repo.department(session, data.code)
    if existing is not None and not replace:
        raise Conflict(f"department {data.code!r} already exists")
    return _save(
        session,
        existing or Department(code=data.code, created_at=now),
        new=existing is None,
        given=data.model_fields_set,
        values={
            "name": ("name", data.name),
            "parent_code": ("parent_code", data.parent_code),
            "leaders": ("leaders", [leader.model_dump() for leader in data.leaders]),
        },
    )


def upsert_department(
    *, session: Session, data: DepartmentIn, now: datetime, replace: bool = True
) -> Department:
    return save_department(session=session, data=data, now=now, replace=replace).item


def save_chain(*, session: Session, data: ChainIn, replace: bool = True) -> Saved[Chain]:
    if data.liaison_department and _missing_departments(session, [data.liaison_department], set()):
        raise UnknownReference(
            f"liaison_department: unknown department {data.liaison_department!r}",
            kind="department",
            codes=[data.liaison_department],
            field="liaison_department",
        )
    existing = repo.chain(session, data.code)
    if existing is not None and not replace:
        raise Conflict(f"chain {data.code!r} already exists")
    return _save(
        session,
        existing or Chain(code=data.code),
        new=existing is None,
        given=data.model_fields_set,
        values={
            "name": ("name", data.name),
            "leader_uscc": ("leader_uscc", data.leader_uscc),
            "liaison_department": ("liaison_department_code", data.liaison_department),
        },
    )


def upsert_chain(*, session: Session, data: ChainIn, replace: bool = True) -> Chain:
    return save_chain(session=session, data=data, replace=replace).item


def save_category(
    *, session: Session, data: CategoryIn, urgencies: Sequence[str], replace: bool = True
) -> Saved[Category]:
    if data.urgency not in urgencies:
        raise InvalidInput(f"urgency: {data.urgency!r} is not one of {', '.join(urgencies)}")
    refs = [*([data.lead_department] if data.lead_department else []), *data.co_departments]
    if missing := _missing_departments(session, refs, set()):
        raise UnknownReference(
            f"unknown department(s): {', '.join(missing)}", kind="department", codes=missing
        )
    existing = repo.category(session, data.code)
    if existing is not None and not replace:
        raise Conflict(f"category {data.code!r} already exists")
    given = data.model_fields_set
    lead = (
        existing.lead_department_code
        if existing is not None and "lead_department" not in given
        else data.lead_department
    )
    co = (
        list(existing.co_department_codes or [])
        if existing is not None and "co_departments" not in given
        else data.co_departments
    )
    return _save(
        session,
        existing or Category(code=data.code),
        new=existing is None,
        given=given | {"co_departments", "active"},  # co follows the lead; a load reactivates
        values={
            "name": ("name", data.name),
            "group": ("group", data.group),
            "urgency": ("urgency", data.urgency),
            "lead_department": ("lead_department_code", data.lead_department),
            "co_departments": ("co_department_codes", [c for c in co if c != lead]),
            "time_limits": ("time_limits", dict(data.time_limits)),
            "description": ("description", data.description),
            "active": ("active", True),
        },
    )


def upsert_category(
    *, session: Session, data: CategoryIn, urgencies: Sequence[str], replace: bool = True
) -> Category:
    return save_category(session=session, data=data, urgencies=urgencies, replace=replace).item


def save_enterprise(
    *,
    session: Session,
    data: EnterpriseIn,
    now: datetime,
    replace: bool = True,
    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN,
) -> Saved[Enterprise]:
    if data.grid_code is not None and (
        problem := grid_code_problem(data.grid_code, pattern=grid_code_pattern)
    ):
        raise InvalidInput(f"grid_code: {problem}")
    if data.chain is not None and repo.chain(session, data.chain) is None:
        raise UnknownReference(
            f"chain: unknown chain {data.chain!r}", kind="chain", codes=[data.chain], field="chain"
        )
    existing = repo.enterprise(session, data.uscc)
    if existing is not None and not replace:
        raise Conflict(f"enterprise {data.uscc} already exists")
    return _save(
        session,
        existing or Enterprise(uscc=data.uscc, created_at=now),
        new=existing is None,
        given=data.model_fields_set,
        values={
            "name": ("name", data.name),
            "chain": ("chain_code", data.chain),
            "grid_code": ("grid_code", data.grid_code),
            "address": ("address", data.address),
            "contact_name": ("contact_name", data.contact_name),
            "contact_phone": ("contact_phone", data.contact_phone),
        },
    )


def upsert_enterprise(
    *,
    session: Session,
    data: EnterpriseIn,
    now: datetime,
    replace: bool = True,
    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN,
) -> Enterprise:
    return save_enterprise(
        session=session, data=data, now=now, replace=replace, grid_code_pattern=grid_code_pattern
    ).item


def save_rule(
    *, session: Session, data: RoutingRuleIn, grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN
) -> Saved[RoutingRule]:
    """A rule is known by its condition (category, grid prefix, chain): loading one again
    changes its departments and priority."""
    if data.grid_prefix is not None and (
        problem := grid_codes(grid_code_pattern).prefix_problem(data.grid_prefix)
    ):
        raise InvalidInput(f"grid_prefix: {problem}")
    if data.category is not None and repo.category(session, data.category) is None:
        raise UnknownReference(
            f"category: unknown category {data.category!r}",
            kind="category",
            codes=[data.category],
            field="category",
        )
    if data.chain is not None and repo.chain(session, data.chain) is None:
        raise UnknownReference(
            f"chain: unknown chain {data.chain!r}", kind="chain", codes=[data.chain], field="chain"
        )
    if missing := _missing_departments(session, [data.department, *data.co_departments], set()):
        raise UnknownReference(
            f"unknown department(s): {', '.join(missing)}", kind="department", codes=missing
        )
    existing = next(
        (
            r
            for r in repo.routing_rules(session)
            if (r.category_code, r.grid_prefix, r.chain_code)
            == (data.category, data.grid_prefix, data.chain)
        ),
        None,
    )
    given = data.model_fields_set
    co = (
        list(existing.co_department_codes or [])
        if existing is not None and "co_departments" not in given
        else data.co_departments
    )
    return _save(
        session,
        existing
        or RoutingRule(
            category_code=data.category, grid_prefix=data.grid_prefix, chain_code=data.chain
        ),
        new=existing is None,
        given=given | {"co_departments"},  # co follows the lead department
        values={
            "department": ("department_code", data.department),
            "co_departments": (
                "co_department_codes",
                [c for c in co if c != data.department],
            ),
            "priority": ("priority", data.priority),
        },
    )


def upsert_rule(
    *, session: Session, data: RoutingRuleIn, grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN
) -> RoutingRule:
    return save_rule(session=session, data=data, grid_code_pattern=grid_code_pattern).item


# --- routing -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    lead_department: str
    co_departments: tuple[str, ...]
    rule_id: int | None  # None: the category's own lead department


def _specificity(rule: RoutingRule) -> tuple[int, int, int, int, int]:
    return (
        rule.category_code is not None,
        len(rule.grid_prefix or ""),
        rule.chain_code is not None,
        -rule.priority,
        -rule.id,
    )


def route(
    *, session: Session, category: Category, grid_code: str | None, chain_code: str | None
) -> Route | None:
    """The most specific matching routing rule, else the category's lead department, else None."""
    matching = [
        r
        for r in repo.routing_rules(session, category.code)
        if (r.grid_prefix is None or (grid_code or "").startswith(r.grid_prefix))
        and (r.chain_code is None or r.chain_code == chain_code)
    ]
    if matching:
        best = max(matching, key=_specificity)
        co = best.co_department_codes or category.co_department_codes or []
        return Route(
            best.department_code, tuple(c for c in co if c != best.department_code), best.id
        )
    if category.lead_department_code:
        return Route(category.lead_department_code, tuple(category.co_department_codes or []), None)
    return None


# --- suggestions for the dispatcher ---------------------------------------------------


class Suggestion(NamedTuple):
    """What the dispatcher is offered for a request: the lead department ("" for none) and
    the co-departments."""

    lead: str
    co: list[str]


def suggestion(category: Category | None, *, returned_by: str | None = None) -> Suggestion:
    """The category's own lead and co-departments (the call list's), never the department
    `returned_by` that has just sent the request back."""
    lead = (category.lead_department_code or "") if category else ""
    co = list(category.co_department_codes or []) if category else []
    if returned_by is not None:
        lead, co = ("" if lead == returned_by else lead), [c for c in co if c != returned_by]
    return Suggestion(lead, co)


def dispatch_suggestion(*, session: Session, category_code: str) -> Suggestion:
    """The suggestion for one request of this category (one query)."""
    return suggestion(repo.category(session, category_code))


def dispatch_suggestions(
    *,
    session: Session,
    category_codes: Mapping[int, str],
    returned_by: Mapping[int, str],
) -> dict[int, Suggestion]:
    """The suggestion for each request: `category_codes` gives its category code by request id,
    `returned_by` the department that sent it back, for those that were. One query."""
    by_code = {c.code: c for c in repo.categories(session)}
    return {
        request_id: suggestion(by_code.get(code), returned_by=returned_by.get(request_id))
        for request_id, code in category_codes.items()
    }
