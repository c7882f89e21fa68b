"""Directory queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from huying.directory.models import Category, Chain, Department, Enterprise, RoutingRule


def department(session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))


def departments(session: Session, *, active_only: bool = False) -> Sequence[Department]:
    query = select(Department).order_by(Department.code)
    if active_only:
        query = query.where(Department.active.is_(True))
    return session.scalars(query).all()


def department_codes(
    session: Session, codes: Sequence[str], *, active_only: bool = False
) -> set[str]:
    if not codes:
        return set()
    query = select(Department.code).where(Department.code.in_(codes))
    if active_only:
        query = query.where(Department.active.is_(True))
    return set(session.scalars(query))


def department_states(session: Session, codes: Sequence[str]) -> dict[str, bool]:
    """Whether each of `codes` that names a department is active (the unknown ones left out)."""
    if not codes:
        return {}
    rows = session.execute(
        select(Department.code, Department.active).where(Department.code.in_(codes))
    ).all()
    return {code: active for code, active in rows}


def retired_departments(session: Session) -> set[str]:
    """The codes of the retired departments (few: a retirement is an admin's decision)."""
    return set(session.scalars(select(Department.code).where(Department.active.is_(False))))


def active_children(session: Session, code: str) -> list[str]:
    query = (
        select(Department.code)
        .where(Department.parent_code == code, Department.active.is_(True))
        .order_by(Department.code)
    )
    return list(session.scalars(query))


def codes(session: Session) -> dict[str, set[str]]:
    """Every stored code of departments, chains and categories, by kind."""
    return {
        "departments": set(session.scalars(select(Department.code))),
        "chains": set(session.scalars(select(Chain.code))),
        "categories": set(session.scalars(select(Category.code))),
    }


def category(session: Session, code: str) -> Category | None:
    return session.scalar(select(Category).where(Category.code == code))


def categories(session: Session, *, active_only: bool = False) -> Sequence[Category]:
    query = select(Category).order_by(Category.group, Category.code)
    if active_only:
        query = query.where(Category.active.is_(True))
    return session.scalars(query).all()


def chain(session: Session, code: str) -> Chain | None:
    return session.scalar(select(Chain).where(Chain.code == code))


def chains(session: Session, *, active_only: bool = False) -> Sequence[Chain]:
    query = select(Chain).order_by(Chain.code)
    if active_only:
        query = query.where(Chain.active.is_(True))
    return session.scalars(query).all()


def enterprise(session: Session, uscc: str) -> Enterprise | None:
    return session.scalar(select(Enterprise).where(Enterprise.uscc == uscc))


def enterprises(
    session: Session,
    *,
    q: str | None,
    chain: str | None,
    grid_prefix: str | None,
    active: bool | None,
    after: int | None,
    limit: int,
) -> Sequence[Enterprise]:
    """By id, those after `after`, up to `limit`. `q`: a USCC prefix (any case), or words
    that each stand in the name (any case); LIKE's wildcards in any of them match themselves."""
    query = select(Enterprise).order_by(Enterprise.id)
    if q is not None and (words := q.split()):
        in_name = and_(*(Enterprise.name.icontains(w, autoescape=True) for w in words))
        query = query.where(
            or_(Enterprise.uscc.startswith(q.strip().upper(), autoescape=True), in_name)
        )
    if chain is not None:
        query = query.where(Enterprise.chain_code == chain)
    if grid_prefix is not None:
        query = query.where(Enterprise.grid_code.startswith(grid_prefix, autoescape=True))
    if active is not None:
        query = query.where(Enterprise.active.is_(active))
    if after is not None:
        query = query.where(Enterprise.id > after)
    return session.scalars(query.limit(limit)).all()


def rule(session: Session, rule_id: int) -> RoutingRule | None:
    return session.get(RoutingRule, rule_id)


def routing_rules(
    session: Session, category_code: str | None = None, *, active_only: bool = False
) -> Sequence[RoutingRule]:
    """By id; with `category_code`, the rules for that category and those for every one."""
    query = select(RoutingRule).order_by(RoutingRule.id)
    if category_code is not None:
        query = query.where(
            (RoutingRule.category_code == category_code) | RoutingRule.category_code.is_(None)
        )
    if active_only:
        query = query.where(RoutingRule.active.is_(True))
    return session.scalars(query).all()


def rule_with_condition(
    session: Session, category: str | None, grid_prefix: str | None, chain: str | None
) -> RoutingRule | None:
    """The rule of exactly this condition (a rule's identity in `huying load`), if any."""
    query = select(RoutingRule).where(
        RoutingRule.category_code.is_(None)
        if category is None
        else RoutingRule.category_code == category,
        RoutingRule.grid_prefix.is_(None)
        if grid_prefix is None
        else RoutingRule.grid_prefix == grid_prefix,
        RoutingRule.chain_code.is_(None) if chain is None else RoutingRule.chain_code == chain,
    )
    return session.scalars(query.order_by(RoutingRule.id).limit(1)).first()


def parents(session: Session) -> dict[str, str | None]:
    """Each department's parent code (the tree, one small read)."""
    rows = session.execute(select(Department.code, Department.parent_code)).all()
    return {code: parent for code, parent in rows}


def states(
    session: Session,
    model: type[Department] | type[Chain] | type[Category],
    codes: Sequence[str],
) -> dict[str, bool]:
    """Whether each of `codes` that names a `model` is active (unknown codes left out)."""
    if not codes:
        return {}
    rows = session.execute(select(model.code, model.active).where(model.code.in_(codes))).all()
    return {code: active for code, active in rows}
