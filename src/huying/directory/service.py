"""Directory use cases: create, change, retire and read departments, chains, categories,
enterprises and routing rules, route a request to its department, and suggest departments to
the dispatcher. Loading the directory from files is `directory.loader`.

Retirement (`active: false`) is decided here, in one place: a retired entry stays readable and
everything that names it keeps it (nothing is rewritten), but it cannot be newly chosen. A
retired department is not a known department for dispatch and the like, routing and the
dispatcher's suggestions pass over it, and no entry may newly name a retired department,
chain or category. A retired routing rule never matches."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Generic, Literal, NamedTuple, Protocol, TypeVar, cast

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from huying import cache, paging, roles
from huying.audit import service as audit
from huying.directory import notify
from huying.directory import repository as repo
from huying.directory.grids import DEFAULT_GRID_CODE_PATTERN, GridCodes
from huying.directory.models import Category, Chain, Department, Enterprise, RoutingRule
from huying.directory.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    ChainIn,
    ChainOut,
    ChainPatch,
    DepartmentIn,
    DepartmentOut,
    DepartmentPatch,
    EnterpriseIn,
    EnterpriseOut,
    EnterprisePatch,
    Leader,
    Patch,
    RoutingRuleIn,
    RoutingRuleOut,
    RoutingRulePatch,
)
from huying.errors import (
    Conflict,
    Forbidden,
    InvalidFields,
    InvalidInput,
    NotFound,
    UnknownReference,
    validation_detail,
)
from huying.settings import Settings

ENTERPRISE_CURSOR = "e"
M = TypeVar("M")
T = TypeVar("T")

# --- reads ---------------------------------------------------------------------


def department_out(d: Department) -> DepartmentOut:
    return DepartmentOut(
        code=d.code,
        name=d.name,
        parent_code=d.parent_code,
        leaders=[Leader.model_validate(x) for x in d.leaders or []],
        active=d.active,
    )


def chain_out(c: Chain) -> ChainOut:
    return ChainOut(
        code=c.code,
        name=c.name,
        leader_uscc=c.leader_uscc,
        liaison_department=c.liaison_department_code,
        active=c.active,
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
        active=c.active,
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
        active=e.active,
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
        active=r.active,
    )


def department(*, session: Session, code: str) -> Department | None:
    return repo.department(session, code)


def departments(*, session: Session, active_only: bool = False) -> Sequence[Department]:
    """By code; all of them unless `active_only` (a retired department still leads the
    requests it led, and its leaders are still alerted for them)."""
    return repo.departments(session, active_only=active_only)


def subtree(*, session: Session, code: str) -> frozenset[str]:
    """The department `code` and every department below it (its sub-units, theirs …)."""
    return descendants(tree(session=session).parents, code)


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
    """Those of `codes` that name an active department: what dispatch, reassignment,
    delegation and a webhook's scope may newly choose. A retired one is as unknown."""
    active = tree(session=session).active
    return {c for c in codes if c in active}


def category(*, session: Session, code: str) -> Category | None:
    return repo.category(session, code)


def categories(*, session: Session, active_only: bool = False) -> Sequence[Category]:
    """By group and code; with `active_only`, those on the call list."""
    return repo.categories(session, active_only=active_only)


def chains(*, session: Session, active_only: bool = False) -> Sequence[Chain]:
    return repo.chains(session, active_only=active_only)


def routing_rules(*, session: Session, active_only: bool = False) -> Sequence[RoutingRule]:
    return repo.routing_rules(session, active_only=active_only)


def stored_codes(*, session: Session) -> dict[str, set[str]]:
    """The codes stored per kind ("departments", "chains", "categories"), retired included."""
    return repo.codes(session)


def enterprise(*, session: Session, uscc: str) -> Enterprise | None:
    """The enterprise of exactly this USCC (as stored: upper case)."""
    return repo.enterprise(session, uscc)


def get_enterprise(*, session: Session, uscc: str) -> Enterprise:
    """Retired or not: a retired enterprise is still read (its requests name it)."""
    found = repo.enterprise(session, uscc.strip().upper())
    if found is None:
        raise NotFound(f"no enterprise with USCC {uscc!r}")
    return found


def find_enterprises(
    *,
    session: Session,
    q: str | None = None,
    chain: str | None = None,
    grid_prefix: str | None = None,
    active: bool | None = True,
    after: int | None = None,
    limit: int = 50,
) -> tuple[Sequence[Enterprise], str | None]:
    """Enterprises by id, and the cursor of the next page (None on the last). `q` matches a
    USCC by its start, or a name holding each of its words, in any case; `grid_prefix` the
    start of the grid code; `active` None takes retired and active ones alike."""
    words = q.strip() if q is not None else ""
    rows = repo.enterprises(
        session,
        q=words or None,
        chain=chain,
        grid_prefix=grid_prefix,
        active=active,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, paging.encode(ENTERPRISE_CURSOR, rows[-1].id) if more and rows else None


def enterprises_after(cursor: str | None) -> int | None:
    """The id a page of `find_enterprises` continues after (InvalidInput for a bad cursor)."""
    return paging.after_id(ENTERPRISE_CURSOR, cursor)


def rule(*, session: Session, rule_id: int) -> RoutingRule | None:
    return repo.rule(session, rule_id)


# --- cached reads: what every submit and every scoped call needs ----------------------
#
# Kept per process by `huying.cache` under the directory's generation, which every write to
# departments, chains, categories, enterprises or routing rules moves in its own transaction
# (whoever writes: this module, the loader, the imports, a test's fixture): a retirement is
# seen by the next transaction on every replica. Frozen views, never ORM rows: an entry is
# shared by every thread of the process and belongs to no session.


@dataclass(frozen=True, slots=True)
class EnterpriseView:
    uscc: str
    name: str
    grid_code: str | None
    chain_code: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class CategoryView:
    code: str
    name: str
    urgency: str
    time_limits: Mapping[str, str]
    lead_department_code: str | None
    co_department_codes: tuple[str, ...]
    active: bool


@dataclass(frozen=True, slots=True)
class RuleView:
    id: int
    category_code: str | None
    grid_prefix: str | None
    chain_code: str | None
    department_code: str
    co_department_codes: tuple[str, ...]
    priority: int


@dataclass(frozen=True, slots=True)
class Tree:
    """Every department: its name, its parent, and which are active (a few hundred rows)."""

    names: Mapping[str, str]
    parents: Mapping[str, str | None]
    active: frozenset[str]


_MISSING = object()


def _cached(session: Session, key: tuple[str, str], read: Callable[[], T]) -> T:
    """The entry `key` of the directory's cache, read (and kept) when absent."""
    known = cache.entries(session, cache.DIRECTORY)
    if known is None:
        return read()
    found = known.get(key, _MISSING)
    if found is _MISSING:
        found = known[key] = read()
    return cast(T, found)


def tree(*, session: Session) -> Tree:
    def read() -> Tree:
        views = department_views(session=session).values()
        return Tree(
            names={d.code: d.name for d in views},
            parents={d.code: d.parent_code for d in views},
            active=frozenset(d.code for d in views if d.active),
        )

    return _cached(session, ("tree", ""), read)


@dataclass(frozen=True, slots=True)
class DepartmentView:
    """A department as the directory's cache keeps it: what an escalation reads to find
    whom to tell (`huying.directory.notify`), and what `tree` is made of."""

    code: str
    name: str
    parent_code: str | None
    active: bool
    leaders: tuple[Mapping[str, Any], ...]


def department_views(*, session: Session) -> Mapping[str, DepartmentView]:
    """Every department, retired or not, by code: the directory's one read of them (`tree`
    is made from it), and what the worker's escalations read for each batch it fires."""

    def read() -> Mapping[str, DepartmentView]:
        return MappingProxyType(
            {
                d.code: DepartmentView(
                    d.code,
                    d.name,
                    d.parent_code,
                    d.active,
                    tuple(MappingProxyType(dict(x)) for x in d.leaders or ()),
                )
                for d in repo.departments(session)
            }
        )

    return _cached(session, ("departments", ""), read)


def enterprise_view(*, session: Session, uscc: str) -> EnterpriseView | None:
    """The enterprise of exactly this USCC, retired or not; None for none."""

    def read() -> EnterpriseView | None:
        e = repo.enterprise(session, uscc)
        if e is None:
            return None
        return EnterpriseView(e.uscc, e.name, e.grid_code, e.chain_code, e.active)

    return _cached(session, ("enterprise", uscc), read)


def category_view(*, session: Session, code: str) -> CategoryView | None:
    """The category of this code, retired or not; None for none."""

    def read() -> CategoryView | None:
        c = repo.category(session, code)
        if c is None:
            return None
        return CategoryView(
            code=c.code,
            name=c.name,
            urgency=c.urgency,
            time_limits=MappingProxyType(dict(c.time_limits or {})),
            lead_department_code=c.lead_department_code,
            co_department_codes=tuple(c.co_department_codes or ()),
            active=c.active,
        )

    return _cached(session, ("category", code), read)


def _active_rules(session: Session, category_code: str) -> tuple[RuleView, ...]:
    """The active routing rules for this category and for every category."""

    def read() -> tuple[RuleView, ...]:
        return tuple(
            RuleView(
                id=r.id,
                category_code=r.category_code,
                grid_prefix=r.grid_prefix,
                chain_code=r.chain_code,
                department_code=r.department_code,
                co_department_codes=tuple(r.co_department_codes or ()),
                priority=r.priority,
            )
            for r in repo.routing_rules(session, category_code, active_only=True)
        )

    return _cached(session, ("rules", category_code), read)


def _found(item: M | None, kind: str, key: str | int) -> M:
    if item is None:
        raise NotFound(f"no {kind} {key!r}")
    return item


# --- writes --------------------------------------------------------------------
#
# An upsert writes only the fields its input was given (`model_fields_set`): a field left out
# of a file, or a CSV column the file lacks, never erases what is stored. A new row takes the
# schema's defaults for the rest. Each save says whether it created, updated or left the row
# as it was, for `huying load`'s summary.
#
# A change (`update_*`) is the stored entry with the patch's fields applied, validated and
# checked as a new entry is, then written whole. Every write given an actor appends its audit
# entry ("<type>.create", ".update", ".retire", ".restore") in the same session, so that the
# entry and the write land together or not at all; a write that changes nothing appends none.

Outcome = Literal["created", "updated", "unchanged"]
OUTCOMES: tuple[Outcome, ...] = ("created", "updated", "unchanged")
In = TypeVar("In", bound=BaseModel)


@dataclass(frozen=True)
class Saved(Generic[M]):
    item: M
    outcome: Outcome


@dataclass(frozen=True)
class Audit:
    """Who writes ("user:admin", "key:12", "cli") and when: a save given one appends its
    audit entry."""

    actor: str
    now: datetime


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
    given: Collection[str],
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


def _audit(
    session: Session,
    audit_as: Audit | None,
    target_type: str,
    target_id: str | int,
    before: BaseModel | None,
    after: BaseModel,
) -> None:
    """The audit entry of one write: a creation when there was nothing before, a retirement
    or a restoration when `active` changed, else an update (none if nothing changed)."""
    if audit_as is None:
        return
    old = before.model_dump(mode="json") if before is not None else None
    new = after.model_dump(mode="json")
    if old is None:
        verb = "create"
    elif old["active"] != new["active"]:
        verb = "restore" if new["active"] else "retire"
    else:
        verb = "update"
    audit.record(
        session,
        actor=audit_as.actor,
        action=f"{target_type}.{verb}",
        target_type=target_type,
        target_id=target_id,
        before=old,
        after=new,
        now=audit_as.now,
    )


def _merged(model: type[In], stored: BaseModel, changes: Patch) -> In:
    """The stored entry (its *Out) with the fields `changes` gives, validated by `model`
    (the entry's *In) as a new entry is: a change may not leave it what a create refuses."""
    fields = stored.model_dump(exclude={"id", "active"})
    fields.update(changes.model_dump(exclude_unset=True, exclude={"active"}))
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise InvalidFields(
            validation_detail(exc.errors()),
            errors=exc.errors(include_url=False, include_context=False, include_input=False),
        ) from None


_KINDS: dict[str, type[Department] | type[Chain] | type[Category]] = {
    "department": Department,
    "chain": Chain,
    "category": Category,
}


def _references(
    session: Session,
    kind: Literal["department", "chain", "category"],
    wanted: Sequence[str | None],
    *,
    kept: Collection[str | None] = (),
    field: str | None = None,
) -> None:
    """Every code of `wanted` names a stored `kind`, and each newly chosen one (not in
    `kept`, what the entry named already) an active one: a retired entry is kept where it is
    named, never named anew. UnknownReference (422) for either."""
    codes = [c for c in dict.fromkeys(wanted) if c]
    states = repo.states(session, _KINDS[kind], codes)
    where = f"{field}: " if field else ""
    if missing := [c for c in codes if c not in states]:
        said = f"{kind} {missing[0]!r}" if len(missing) == 1 else f"{kind}(s): {', '.join(missing)}"
        raise UnknownReference(f"{where}unknown {said}", kind=kind, codes=missing, field=field)
    if retired := [c for c in codes if not states[c] and c not in kept]:
        said = (
            f"{kind} {retired[0]!r} is"
            if len(retired) == 1
            else f"{kind}(s) {', '.join(retired)} are"
        )
        raise UnknownReference(
            f"{where}{said} retired: restore it first, or name another",
            kind=kind,
            codes=retired,
            field=field,
        )


# departments


def _check_department(session: Session, data: DepartmentIn, existing: Department | None) -> None:
    parent = data.parent_code
    if parent is None:
        return
    if parent == data.code:
        raise InvalidInput("parent_code: a department cannot be its own parent")
    kept = [existing.parent_code] if existing is not None else []
    _references(session, "department", [parent], kept=kept, field="parent_code")
    moved = existing is not None and parent != existing.parent_code
    if moved and parent in subtree(session=session, code=data.code):
        raise InvalidInput(
            f"parent_code: {parent!r} is below {data.code!r}; a department cannot be "
            "placed under its own sub-department",
            field="parent_code",
        )


def _department_values(data: DepartmentIn) -> dict[str, tuple[str, object]]:
    return {
        "name": ("name", data.name),
        "parent_code": ("parent_code", data.parent_code),
        "leaders": ("leaders", [leader.model_dump() for leader in data.leaders]),
    }


def save_department(
    *,
    session: Session,
    data: DepartmentIn,
    now: datetime,
    replace: bool = True,
    audit_as: Audit | None = None,
) -> Saved[Department]:
    existing = repo.department(session, data.code)
    _check_department(session, data, existing)
    if existing is not None and not replace:
        raise Conflict(f"department {data.code!r} already exists")
    before = department_out(existing) if existing is not None else None
    saved = _save(
        session,
        existing or Department(code=data.code, created_at=now, active=True),
        new=existing is None,
        given=data.model_fields_set,
        values=_department_values(data),
    )
    _audit(session, audit_as, "department", data.code, before, department_out(saved.item))
    return saved


def upsert_department(
    *, session: Session, data: DepartmentIn, now: datetime, replace: bool = True
) -> Department:
    return save_department(session=session, data=data, now=now, replace=replace).item


def create_department(
    *, session: Session, data: DepartmentIn, actor: str, now: datetime
) -> Department:
    """A new department (409 if its code is taken), audited as "department.create"."""
    return save_department(
        session=session, data=data, now=now, replace=False, audit_as=Audit(actor, now)
    ).item


def update_department(
    *, session: Session, code: str, changes: DepartmentPatch, actor: str, now: datetime
) -> Department:
    """Change a department; `active: false` retires it, refused (409 has_active_children)
    while an active department is below it, and `true` restores it, refused while its
    parent is retired (the tree never holds an active department under a retired one)."""
    dept = _found(repo.department(session, code), "department", code)
    before = department_out(dept)
    data = _merged(DepartmentIn, before, changes)
    _check_department(session, data, dept)
    active = dept.active if changes.active is None else changes.active
    if dept.active and not active and (children := repo.active_children(session, code)):
        raise Conflict(
            f"department {code!r} has active sub-departments ({', '.join(children)}): "
            "retire or move them first",
            code="has_active_children",
            children=children,
        )
    if active and not dept.active:  # restored: its parent is chosen anew
        _references(session, "department", [data.parent_code], field="parent_code")
    _save(
        session,
        dept,
        new=False,
        given=("name", "parent_code", "leaders", "active"),
        values=_department_values(data) | {"active": ("active", active)},
    )
    _audit(session, Audit(actor, now), "department", code, before, department_out(dept))
    return dept


# chains


def _check_chain(session: Session, data: ChainIn, existing: Chain | None) -> None:
    kept = [existing.liaison_department_code] if existing is not None else []
    _references(
        session, "department", [data.liaison_department], kept=kept, field="liaison_department"
    )


def _chain_values(data: ChainIn) -> dict[str, tuple[str, object]]:
    return {
        "name": ("name", data.name),
        "leader_uscc": ("leader_uscc", data.leader_uscc),
        "liaison_department": ("liaison_department_code", data.liaison_department),
    }


def save_chain(
    *, session: Session, data: ChainIn, replace: bool = True, audit_as: Audit | None = None
) -> Saved[Chain]:
    existing = repo.chain(session, data.code)
    _check_chain(session, data, existing)
    if existing is not None and not replace:
        raise Conflict(f"chain {data.code!r} already exists")
    before = chain_out(existing) if existing is not None else None
    saved = _save(
        session,
        existing or Chain(code=data.code, active=True),
        new=existing is None,
        given=data.model_fields_set,
        values=_chain_values(data),
    )
    _audit(session, audit_as, "chain", data.code, before, chain_out(saved.item))
    return saved


def upsert_chain(*, session: Session, data: ChainIn, replace: bool = True) -> Chain:
    return save_chain(session=session, data=data, replace=replace).item


def create_chain(*, session: Session, data: ChainIn, actor: str, now: datetime) -> Chain:
    return save_chain(session=session, data=data, replace=False, audit_as=Audit(actor, now)).item


def update_chain(
    *, session: Session, code: str, changes: ChainPatch, actor: str, now: datetime
) -> Chain:
    """Change a chain; a retired one stays on its enterprises and rules, but no new
    enterprise or rule may name it."""
    chain = _found(repo.chain(session, code), "chain", code)
    before = chain_out(chain)
    data = _merged(ChainIn, before, changes)
    _check_chain(session, data, chain)
    active = chain.active if changes.active is None else changes.active
    _save(
        session,
        chain,
        new=False,
        given=("name", "leader_uscc", "liaison_department", "active"),
        values=_chain_values(data) | {"active": ("active", active)},
    )
    _audit(session, Audit(actor, now), "chain", code, before, chain_out(chain))
    return chain


# categories


def _check_category(
    session: Session, data: CategoryIn, existing: Category | None, urgencies: Sequence[str]
) -> None:
    if data.urgency not in urgencies:
        raise InvalidInput(f"urgency: {data.urgency!r} is not one of {', '.join(urgencies)}")
    kept = (
        [existing.lead_department_code, *(existing.co_department_codes or [])]
        if existing is not None
        else []
    )
    _references(session, "department", [data.lead_department], kept=kept, field="lead_department")
    _references(session, "department", data.co_departments, kept=kept, field="co_departments")


def _category_values(
    data: CategoryIn, lead: str | None, co: Sequence[str]
) -> dict[str, tuple[str, object]]:
    return {
        "name": ("name", data.name),
        "group": ("group", data.group),
        "urgency": ("urgency", data.urgency),
        "lead_department": ("lead_department_code", data.lead_department),
        "co_departments": ("co_department_codes", [c for c in co if c != lead]),
        "time_limits": ("time_limits", dict(data.time_limits)),
        "description": ("description", data.description),
    }


def save_category(
    *,
    session: Session,
    data: CategoryIn,
    urgencies: Sequence[str],
    replace: bool = True,
    audit_as: Audit | None = None,
) -> Saved[Category]:
    """A load puts a category back on the call list (`active`): the file is the list."""
    existing = repo.category(session, data.code)
    _check_category(session, data, existing, urgencies)
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
    before = category_out(existing) if existing is not None else None
    saved = _save(
        session,
        existing or Category(code=data.code),
        new=existing is None,
        given=given | {"co_departments", "active"},  # co follows the lead; a load reactivates
        values=_category_values(data, lead, co) | {"active": ("active", True)},
    )
    _audit(session, audit_as, "category", data.code, before, category_out(saved.item))
    return saved


def upsert_category(
    *, session: Session, data: CategoryIn, urgencies: Sequence[str], replace: bool = True
) -> Category:
    return save_category(session=session, data=data, urgencies=urgencies, replace=replace).item


def create_category(
    *, session: Session, data: CategoryIn, urgencies: Sequence[str], actor: str, now: datetime
) -> Category:
    return save_category(
        session=session, data=data, urgencies=urgencies, replace=False, audit_as=Audit(actor, now)
    ).item


def update_category(
    *,
    session: Session,
    code: str,
    changes: CategoryPatch,
    urgencies: Sequence[str],
    actor: str,
    now: datetime,
) -> Category:
    """Change a category; a retired one leaves the call list and is refused at submit,
    while its requests keep it."""
    cat = _found(repo.category(session, code), "category", code)
    before = category_out(cat)
    data = _merged(CategoryIn, before, changes)
    _check_category(session, data, cat, urgencies)
    active = cat.active if changes.active is None else changes.active
    values = _category_values(data, data.lead_department, data.co_departments)
    _save(
        session,
        cat,
        new=False,
        given=(*values, "active"),
        values=values | {"active": ("active", active)},
    )
    _audit(session, Audit(actor, now), "category", code, before, category_out(cat))
    return cat


# enterprises


def _check_enterprise(
    session: Session, data: EnterpriseIn, existing: Enterprise | None, grid_code_pattern: str
) -> None:
    if data.grid_code is not None and (
        problem := grid_code_problem(data.grid_code, pattern=grid_code_pattern)
    ):
        raise InvalidInput(f"grid_code: {problem}")
    kept = [existing.chain_code] if existing is not None else []
    _references(session, "chain", [data.chain], kept=kept, field="chain")


def _enterprise_values(data: EnterpriseIn) -> dict[str, tuple[str, object]]:
    return {
        "name": ("name", data.name),
        "chain": ("chain_code", data.chain),
        "grid_code": ("grid_code", data.grid_code),
        "address": ("address", data.address),
        "contact_name": ("contact_name", data.contact_name),
        "contact_phone": ("contact_phone", data.contact_phone),
    }


def save_enterprise(
    *,
    session: Session,
    data: EnterpriseIn,
    now: datetime,
    replace: bool = True,
    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN,
    audit_as: Audit | None = None,
) -> Saved[Enterprise]:
    existing = repo.enterprise(session, data.uscc)
    _check_enterprise(session, data, existing, grid_code_pattern)
    if existing is not None and not replace:
        raise Conflict(f"enterprise {data.uscc} already exists")
    before = enterprise_out(existing) if existing is not None else None
    saved = _save(
        session,
        existing or Enterprise(uscc=data.uscc, created_at=now, active=True),
        new=existing is None,
        given=data.model_fields_set,
        values=_enterprise_values(data),
    )
    _audit(session, audit_as, "enterprise", data.uscc, before, enterprise_out(saved.item))
    return saved


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


def create_enterprise(
    *,
    session: Session,
    data: EnterpriseIn,
    grid_code_pattern: str,
    actor: str,
    now: datetime,
) -> Enterprise:
    return save_enterprise(
        session=session,
        data=data,
        now=now,
        replace=False,
        grid_code_pattern=grid_code_pattern,
        audit_as=Audit(actor, now),
    ).item


def update_enterprise(
    *,
    session: Session,
    uscc: str,
    changes: EnterprisePatch,
    grid_code_pattern: str,
    actor: str,
    now: datetime,
) -> Enterprise:
    """Change an enterprise; a retired one is refused at submit, its requests keep it."""
    ent = get_enterprise(session=session, uscc=uscc)
    before = enterprise_out(ent)
    data = _merged(EnterpriseIn, before, changes)
    _check_enterprise(session, data, ent, grid_code_pattern)
    active = ent.active if changes.active is None else changes.active
    values = _enterprise_values(data)
    _save(
        session,
        ent,
        new=False,
        given=(*values, "active"),
        values=values | {"active": ("active", active)},
    )
    _audit(session, Audit(actor, now), "enterprise", ent.uscc, before, enterprise_out(ent))
    return ent


def may_change_enterprise(
    *, session: Session, uscc: str, actor: str, role: str, changes: EnterprisePatch
) -> None:
    """Who may PATCH an enterprise: an admin any; an integration only one it registered
    itself (the audit log's "enterprise.create" names its key), to correct it, and never
    its `active` (retiring one refuses every source's submits: an admin's decision).
    NotFound first, so that an unknown USCC reads the same to everyone."""
    ent = get_enterprise(session=session, uscc=uscc)
    if role in roles.ADMINS:
        return
    if changes.active is not None:
        raise Forbidden("active: only an admin retires or restores an enterprise")
    found, _ = audit.entries(
        session=session,
        filters=audit.Filters(
            action="enterprise.create", target_type="enterprise", target_id=ent.uscc
        ),
        after=None,
        limit=1,
    )
    if not found or found[0].actor != actor:
        raise Forbidden(
            f"enterprise {ent.uscc} was not registered with this key: ask an admin to change it"
        )


# routing rules


def _check_rule(
    session: Session, data: RoutingRuleIn, existing: RoutingRule | None, grid_code_pattern: str
) -> None:
    if data.grid_prefix is not None and (
        problem := grid_codes(grid_code_pattern).prefix_problem(data.grid_prefix)
    ):
        raise InvalidInput(f"grid_prefix: {problem}")
    kept_category = [existing.category_code] if existing is not None else []
    kept_chain = [existing.chain_code] if existing is not None else []
    kept = (
        [existing.department_code, *(existing.co_department_codes or [])]
        if existing is not None
        else []
    )
    _references(session, "category", [data.category], kept=kept_category, field="category")
    _references(session, "chain", [data.chain], kept=kept_chain, field="chain")
    _references(session, "department", [data.department], kept=kept, field="department")
    _references(session, "department", data.co_departments, kept=kept, field="co_departments")


def _rule_values(data: RoutingRuleIn, co: Sequence[str]) -> dict[str, tuple[str, object]]:
    return {
        "department": ("department_code", data.department),
        "co_departments": ("co_department_codes", [c for c in co if c != data.department]),
        "priority": ("priority", data.priority),
    }


def save_rule(
    *,
    session: Session,
    data: RoutingRuleIn,
    grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN,
    replace: bool = True,
    audit_as: Audit | None = None,
) -> Saved[RoutingRule]:
    """A rule is known by its condition (category, grid prefix, chain): loading one again
    changes its departments and priority (without `replace`, 409 instead)."""
    existing = repo.rule_with_condition(session, data.category, data.grid_prefix, data.chain)
    _check_rule(session, data, existing, grid_code_pattern)
    if existing is not None and not replace:
        raise Conflict(
            f"routing rule {existing.id} has this category, grid_prefix and chain already: "
            "change that one",
            rule_id=existing.id,
        )
    given = data.model_fields_set
    co = (
        list(existing.co_department_codes or [])
        if existing is not None and "co_departments" not in given
        else data.co_departments
    )
    before = rule_out(existing) if existing is not None else None
    saved = _save(
        session,
        existing
        or RoutingRule(
            category_code=data.category,
            grid_prefix=data.grid_prefix,
            chain_code=data.chain,
            active=True,
        ),
        new=existing is None,
        given=given | {"co_departments"},  # co follows the lead department
        values=_rule_values(data, co),
    )
    _audit(session, audit_as, "routing_rule", saved.item.id, before, rule_out(saved.item))
    return saved


def upsert_rule(
    *, session: Session, data: RoutingRuleIn, grid_code_pattern: str = DEFAULT_GRID_CODE_PATTERN
) -> RoutingRule:
    return save_rule(session=session, data=data, grid_code_pattern=grid_code_pattern).item


def create_rule(
    *, session: Session, data: RoutingRuleIn, grid_code_pattern: str, actor: str, now: datetime
) -> RoutingRule:
    """A new rule; 409 if a rule of the same condition exists (change that one)."""
    return save_rule(
        session=session,
        data=data,
        grid_code_pattern=grid_code_pattern,
        replace=False,
        audit_as=Audit(actor, now),
    ).item


def update_rule(
    *,
    session: Session,
    rule_id: int,
    changes: RoutingRulePatch,
    grid_code_pattern: str,
    actor: str,
    now: datetime,
) -> RoutingRule:
    """Change a rule, its condition too (409 if another rule has that condition); a
    retired rule never matches."""
    found = _found(repo.rule(session, rule_id), "routing rule", rule_id)
    before = rule_out(found)
    data = _merged(RoutingRuleIn, before, changes)
    _check_rule(session, data, found, grid_code_pattern)
    other = repo.rule_with_condition(session, data.category, data.grid_prefix, data.chain)
    if other is not None and other.id != found.id:
        raise Conflict(
            f"routing rule {other.id} has this category, grid_prefix and chain already",
            rule_id=other.id,
        )
    active = found.active if changes.active is None else changes.active
    values = _rule_values(data, data.co_departments) | {
        "category": ("category_code", data.category),
        "grid_prefix": ("grid_prefix", data.grid_prefix),
        "chain": ("chain_code", data.chain),
        "active": ("active", active),
    }
    _save(session, found, new=False, given=tuple(values), values=values)
    _audit(session, Audit(actor, now), "routing_rule", found.id, before, rule_out(found))
    return found


# --- routing -------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    lead_department: str
    co_departments: tuple[str, ...]
    rule_id: int | None  # None: the category's own lead department


def _specificity(rule: RuleView) -> tuple[int, int, int, int, int]:
    return (
        rule.category_code is not None,
        len(rule.grid_prefix or ""),
        rule.chain_code is not None,
        -rule.priority,
        -rule.id,
    )


class Routed(Protocol):
    """What routing reads of a category (a `Category` row or a `CategoryView`)."""

    @property
    def code(self) -> str: ...
    @property
    def lead_department_code(self) -> str | None: ...
    @property
    def co_department_codes(self) -> Sequence[str] | None: ...


def route(
    *, session: Session, category: Routed, grid_code: str | None, chain_code: str | None
) -> Route | None:
    """The most specific matching active rule whose department is active, else the
    category's lead department if active, else None (the dispatcher decides). Retired
    co-departments are left out. Read from the directory's cache."""
    active = tree(session=session).active
    matching = [
        r
        for r in _active_rules(session, category.code)
        if (r.grid_prefix is None or (grid_code or "").startswith(r.grid_prefix))
        and (r.chain_code is None or r.chain_code == chain_code)
        and r.department_code in active
    ]
    if matching:
        best = max(matching, key=_specificity)
        co = best.co_department_codes or category.co_department_codes or ()
        return Route(
            best.department_code,
            tuple(c for c in co if c != best.department_code and c in active),
            best.id,
        )
    lead = category.lead_department_code
    if lead and lead in active:
        co = category.co_department_codes or ()
        return Route(lead, tuple(c for c in co if c in active), None)
    return None


# --- suggestions for the dispatcher ---------------------------------------------------


class Suggestion(NamedTuple):
    """What the dispatcher is offered for a request: the lead department ("" for none) and
    the co-departments."""

    lead: str
    co: list[str]


def suggestion(
    category: Category | None,
    *,
    returned_by: str | None = None,
    retired: Collection[str] = frozenset(),
) -> Suggestion:
    """The category's own lead and co-departments (the call list's), never the department
    `returned_by` that has just sent the request back, nor a `retired` one."""
    lead = (category.lead_department_code or "") if category else ""
    co = list(category.co_department_codes or []) if category else []
    left_out = set(retired) | ({returned_by} if returned_by is not None else set())
    return Suggestion("" if lead in left_out else lead, [c for c in co if c not in left_out])


def dispatch_suggestion(*, session: Session, category_code: str) -> Suggestion:
    """The suggestion for one request of this category (two small queries)."""
    return suggestion(
        repo.category(session, category_code), retired=repo.retired_departments(session)
    )


def dispatch_suggestions(
    *,
    session: Session,
    category_codes: Mapping[int, str],
    returned_by: Mapping[int, str],
) -> dict[int, Suggestion]:
    """The suggestion for each request: `category_codes` gives its category code by request id,
    `returned_by` the department that sent it back, for those that were. Two queries."""
    by_code = {c.code: c for c in repo.categories(session)}
    retired = repo.retired_departments(session)
    return {
        request_id: suggestion(
            by_code.get(code), returned_by=returned_by.get(request_id), retired=retired
        )
        for request_id, code in category_codes.items()
    }
