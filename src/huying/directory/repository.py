"""Directory queries."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from huying.directory.models import Category, Chain, Department, Enterprise, RoutingRule


def department(session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))


def departments(session: Session) -> Sequence[Department]:
    return session.scalars(select(Department).order_by(Department.code)).all()


def department_codes(session: Session, codes: Sequence[str]) -> set[str]:
    if not codes:
        return set()
    return set(session.scalars(select(Department.code).where(Department.code.in_(codes))))


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


def chains(session: Session) -> Sequence[Chain]:
    return session.scalars(select(Chain).order_by(Chain.code)).all()


def enterprise(session: Session, uscc: str) -> Enterprise | None:
    return session.scalar(select(Enterprise).where(Enterprise.uscc == uscc))


def routing_rules(session: Session, category_code: str | None = None) -> Sequence[RoutingRule]:
    query = select(RoutingRule).order_by(RoutingRule.id)
    if category_code is not None:
        query = query.where(
            (RoutingRule.category_code == category_code) | RoutingRule.category_code.is_(None)
        )
    return session.scalars(query).all()


def parents(session: Session) -> dict[str, str | None]:
    """Each department's parent code (the tree, one small read)."""
    rows = session.execute(select(Department.code, Department.parent_code)).all()
    return {code: parent for code, parent in rows}
