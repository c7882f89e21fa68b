"""Directory use cases: create and read departments, chains, categories, enterprises and
routing rules, route a request to its department, and load the directory from files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from huying.directory import repository as repo
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
from huying.errors import Conflict, InvalidInput, NotFound

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


def get_enterprise(*, session: Session, uscc: str) -> Enterprise:
    found = repo.enterprise(session, uscc.strip().upper())
    if found is None:
        raise NotFound(f"no enterprise with USCC {uscc!r}")
    return found


# --- writes --------------------------------------------------------------------


def _missing_departments(session: Session, codes: Sequence[str], pending: set[str]) -> list[str]:
    wanted = [c for c in dict.fromkeys(codes) if c not in pending]
    known = repo.department_codes(session, wanted)
    return [c for c in wanted if c not in known]


def upsert_department(
    *, session: Session, data: DepartmentIn, now: datetime, replace: bool = True
) -> Department:
    if data.parent_code is not None:
        if data.parent_code == data.code:
            raise InvalidInput("parent_code: a department cannot be its own parent")
        if repo.department(session, data.parent_code) is None:
            raise InvalidInput(f"parent_code: unknown department {data.parent_code!r}")
    existing = repo.department(session, data.code)
    if existing is not None and not replace:
        raise Conflict(f"department {data.code!r} already exists")
    dept = existing or Department(code=data.code, created_at=now)
    dept.name = data.name
    dept.parent_code = data.parent_code
    dept.leaders = [leader.model_dump() for leader in data.leaders]
    session.add(dept)
    session.flush()
    return dept


def upsert_chain(*, session: Session, data: ChainIn, replace: bool = True) -> Chain:
    if data.liaison_department and _missing_departments(session, [data.liaison_department], set()):
        raise InvalidInput(f"liaison_department: unknown department {data.liaison_department!r}")
    existing = repo.chain(session, data.code)
    if existing is not None and not replace:
        raise Conflict(f"chain {data.code!r} already exists")
    chain = existing or Chain(code=data.code)
    chain.name = data.name
    chain.leader_uscc = data.leader_uscc
    chain.liaison_department_code = data.liaison_department
    session.add(chain)
    session.flush()
    return chain


def upsert_category(
    *, session: Session, data: CategoryIn, urgencies: Sequence[str], replace: bool = True
) -> Category:
    if data.urgency not in urgencies:
        raise InvalidInput(f"urgency: {data.urgency!r} is not one of {', '.join(urgencies)}")
    refs = [*([data.lead_department] if data.lead_department else []), *data.co_departments]
    if missing := _missing_departments(session, refs, set()):
        raise InvalidInput(f"unknown department(s): {', '.join(missing)}")
    existing = repo.category(session, data.code)
    if existing is not None and not replace:
        raise Conflict(f"category {data.code!r} already exists")
    cat = existing or Category(code=data.code)
    cat.name = data.name
    cat.group = data.group
    cat.urgency = data.urgency
    cat.lead_department_code = data.lead_department
    cat.co_department_codes = [c for c in data.co_departments if c != data.lead_department]
    cat.time_limits = dict(data.time_limits)
    cat.description = data.description
    cat.active = True
    session.add(cat)
    session.flush()
    return cat


def upsert_enterprise(
    *, session: Session, data: EnterpriseIn, now: datetime, replace: bool = True
) -> Enterprise:
    if data.chain is not None and repo.chain(session, data.chain) is None:
        raise InvalidInput(f"chain: unknown chain {data.chain!r}")
    existing = repo.enterprise(session, data.uscc)
    if existing is not None and not replace:
        raise Conflict(f"enterprise {data.uscc} already exists")
    ent = existing or Enterprise(uscc=data.uscc, created_at=now)
    ent.name = data.name
    ent.chain_code = data.chain
    ent.grid_code = data.grid_code
    ent.address = data.address
    ent.contact_name = data.contact_name
    ent.contact_phone = data.contact_phone
    session.add(ent)
    session.flush()
    return ent


def upsert_rule(*, session: Session, data: RoutingRuleIn) -> RoutingRule:
    if data.category is not None and repo.category(session, data.category) is None:
        raise InvalidInput(f"category: unknown category {data.category!r}")
    if data.chain is not None and repo.chain(session, data.chain) is None:
        raise InvalidInput(f"chain: unknown chain {data.chain!r}")
    if missing := _missing_departments(session, [data.department, *data.co_departments], set()):
        raise InvalidInput(f"unknown department(s): {', '.join(missing)}")
    rule = next(
        (
            r
            for r in repo.routing_rules(session)
            if (r.category_code, r.grid_prefix, r.chain_code)
            == (data.category, data.grid_prefix, data.chain)
        ),
        None,
    ) or RoutingRule(
        category_code=data.category, grid_prefix=data.grid_prefix, chain_code=data.chain
    )
    rule.department_code = data.department
    rule.co_department_codes = [c for c in data.co_departments if c != data.department]
    rule.priority = data.priority
    session.add(rule)
    session.flush()
    return rule


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
