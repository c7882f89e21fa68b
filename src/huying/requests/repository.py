"""Request queries: the one place requests are read and written outside the unit of work.
The department scope is applied here, in one place (`scoped`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    ScalarSelect,
    Select,
    Table,
    exists,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import MANYTOONE, ONETOMANY, Session, defer, lazyload
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from huying.auth.models import ApiKey, User
from huying.db import Base, Part, among, insert_together, select_one, update_versioned
from huying.deadlines.models import Deadline
from huying.directory.models import Category, Department, Enterprise
from huying.requests.models import Request, RequestCoDepartment, RequestTask, TimelineEntry

_T = TypeVar("_T")


def scoped(query: Select[_T], scope: frozenset[str] | None) -> Select[_T]:
    """Limit a query to what a caller bound to these departments (a department and the
    departments below it) may see: requests one of them leads or co-handles, or has a task
    of; None: every request."""
    if scope is None:
        return query
    codes = sorted(scope)
    co = exists().where(
        RequestCoDepartment.request_id == Request.id,
        RequestCoDepartment.department_code.in_(codes),
    )
    task = exists().where(
        RequestTask.request_id == Request.id, RequestTask.department_code.in_(codes)
    )
    return query.where(Request.lead_department_code.in_(codes) | co | task)


def get(session: Session, request_id: int, *, scope: frozenset[str] | None) -> Request | None:
    return session.scalar(scoped(select(Request).where(Request.id == request_id), scope))


def by_receipt_token(session: Session, token: str) -> Request | None:
    return session.scalar(select(Request).where(Request.receipt_token == token))


def by_external_id(session: Session, submitted_by: str, external_id: str) -> Request | None:
    """The request this submitter made under this external_id, if any."""
    return session.scalar(
        select(Request).where(
            Request.submitted_by == submitted_by, Request.external_id == external_id
        )
    )


def by_id(session: Session, request_id: int) -> Request | None:
    """Any request, whatever the caller's scope (e.g. the target of a merge)."""
    return session.get(Request, request_id)


def by_idempotency(session: Session, scope: str, key: str) -> Request | None:
    return session.scalar(
        select(Request).where(Request.idempotency_scope == scope, Request.idempotency_key == key)
    )


def next_ids(session: Session) -> tuple[int, int | None]:
    """The id of the next request, taken before it is inserted, and on PostgreSQL an id for
    its first task too. On PostgreSQL both sequences' `nextval` in one statement, read on
    the driver's cursor (`huying.db.select_one`: SQLAlchemy's execution around it,
    `Session.scalar`, was 4% of a submit's instructions there); with the task's id known,
    the submit's INSERTs are one statement, none of them ending to read an id back
    (`insert_new`). A task's id is nobody's number: one taken for a request that makes no
    task is a gap nobody sees. On SQLite, no task id: RETURNING costs no round trip there."""
    if session.get_bind().dialect.name == "postgresql":
        request_id, task_id = select_one(session.connection(), _nextvals())
        return int(request_id), int(task_id)
    # SQLite: every write transaction begins IMMEDIATE, so writers are serialised here.
    return int(session.scalar(select(func.max(Request.id))) or 0) + 1, None


def next_id_column(session: Session) -> ColumnElement[Any]:
    """`next_id` as a column of another statement (SQLite only: PostgreSQL's `nextval` would
    take a number whether or not the statement's caller goes on to use it)."""
    if session.get_bind().dialect.name == "postgresql":
        raise ValueError("next_id_column is for SQLite; take the id with next_id")
    return _max_id_plus_one()


@cache
def _nextvals() -> Select[Any]:
    return select(
        func.nextval(func.pg_get_serial_sequence(Request.__tablename__, "id")),
        func.nextval(func.pg_get_serial_sequence(RequestTask.__tablename__, "id")),
    )


@cache
def _max_id_plus_one() -> ColumnElement[Any]:
    return select(func.coalesce(func.max(Request.id), 0) + 1).scalar_subquery()


def insert_new(
    session: Session,
    objects: Sequence[Any],
    rows: Mapping[type[Any], Sequence[Mapping[str, Any]]],
) -> None:
    """Write new objects (a request and its deadlines) and every object in their one-to-many
    collections (its tasks, co-departments), then `rows`, column values by model (each row
    with every foreign key it needs), instead of the unit of work: the ORM's flush of these
    half-dozen objects cost more than the whole bare transaction. The objects are not in
    the session (never added: `Session.add` and its cascades were a tenth of a submit) and
    stay out of it.

    One INSERT per table and set of columns, parents first, written together
    (`huying.db.insert_together`: on PostgreSQL one statement, one round trip), except that
    the rows another new row refers to by an id the database assigns (a task's deadline
    names its task) end a statement, which reads those ids back (RETURNING); an object
    whose id is already set is written with it and ends nothing. On PostgreSQL a submit
    takes its first task's id with its own (`next_ids`), so a submit with one task is one
    statement (each further task ends one of its own); on SQLite, one INSERT per table.

    The foreign keys the flush would copy from related objects (`Deadline.request`,
    `Request.tasks`, `Deadline.task`) are copied here, and column defaults are applied as
    the flush would. Each object is left with every column set as written: the caller may
    read it, and no commit writes it again. A unique constraint broken here raises
    IntegrityError, as the flush would."""
    connection = session.connection()
    parts = _insert_objects(connection, objects) if objects else []
    parts += [(_plan(inspect(model)).table, values) for model, values in rows.items()]
    insert_together(connection, parts)


def _insert_objects(connection: Connection, objects: Sequence[Any]) -> list[Part]:
    """Write `objects` as far as the last rows whose new ids others refer to; returns the
    parts not written yet, for the caller to write with its own."""
    # the objects and those in their one-to-many collections, each once, parents first, and
    # for each child the parent and relationship that hold it
    pending = list({id(obj): obj for obj in objects}.values())
    seen = {id(obj) for obj in pending}
    states: dict[int, Any] = {}
    owners: dict[int, tuple[Any, Any]] = {}
    for obj in pending:  # (grows as it goes)
        state = states[id(obj)] = inspect(obj)
        for rel in _plan(state.mapper).collections:
            for child in state.dict.get(rel.key) or ():
                owners[id(child)] = (obj, rel)
                if id(child) not in seen:
                    seen.add(id(child))
                    pending.append(child)
    links = {id(obj): _related(states[id(obj)], owners.get(id(obj))) for obj in pending}
    referred = {id(parent) for found in links.values() for parent, _, _ in found}
    by_table: dict[Table, list[Any]] = {}
    for obj in pending:
        by_table.setdefault(_plan(states[id(obj)].mapper).table, []).append(obj)
    parts: list[Part] = []
    order = [t for t in _sorted_tables() if t in by_table]
    while order:  # parents first, a task before the deadline that names it
        table = next(
            (
                t
                for t in order
                if all(
                    getattr(p, column) is not None
                    for o in by_table[t]
                    for p, column, _ in links[id(o)]
                )
            ),
            order[0],
        )
        order.remove(table)
        parts = _insert_rows(connection, table, by_table[table], states, links, referred, parts)
    return parts


@cache
def _sorted_tables() -> list[Table]:
    """Every table, parents first (read once every model is imported)."""
    return list(Base.metadata.sorted_tables)


@dataclass(frozen=True)
class _Plan:
    """What `insert_new` needs of a mapper, worked out once."""

    table: Table
    # (attribute, column key, default: ("value", v) | ("call", f) | ("version",) | ("db",))
    columns: tuple[tuple[str, str, tuple[Any, ...]], ...]
    references: tuple[Any, ...]  # many-to-one relationships
    collections: tuple[Any, ...]  # one-to-many relationships
    returning: str | None  # the primary key's column when it is one: read back where referred to


@cache
def _plan(mapper: Any) -> _Plan:
    table = cast(Table, mapper.local_table)
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        default = column.default
        if column is mapper.version_id_col:
            fallback: tuple[Any, ...] = ("version",)
        elif default is not None and default.is_scalar:
            fallback = ("value", default.arg)
        elif default is not None and default.is_callable:
            fallback = ("call", default.arg)
        elif column.primary_key:
            fallback = ("db",)
        else:
            fallback = ("value", None)
        columns.append((prop.key, column.key, fallback))
    keys = list(table.primary_key.columns)
    return _Plan(
        table=table,
        columns=tuple(columns),
        references=tuple(r for r in mapper.relationships if r.direction is MANYTOONE),
        collections=tuple(r for r in mapper.relationships if r.direction is ONETOMANY),
        returning=keys[0].key if len(keys) == 1 else None,
    )


def _related(state: Any, owner: tuple[Any, Any] | None) -> list[tuple[Any, str, str]]:
    """(parent object, its column, this object's column) for each foreign key of a new
    object that comes from a related object."""
    found = []
    for rel in _plan(state.mapper).references:
        if (parent := state.dict.get(rel.key)) is not None:
            found += [(parent, remote.key, local.key) for local, remote in rel.local_remote_pairs]
    if owner is not None:
        parent, rel = owner
        found += [(parent, local.key, remote.key) for local, remote in rel.local_remote_pairs]
    return found


def _insert_rows(
    connection: Connection,
    table: Table,
    objs: list[Any],
    states: dict[int, Any],
    links: dict[int, list[tuple[Any, str, str]]],
    referred: set[int],
    parts: list[Part],
) -> list[Part]:
    """Add one part per set of columns given to `parts`, and return what is left to write:
    a part whose rows another new row refers to is written at once, with the parts before
    it, RETURNING its new ids."""
    plan = _plan(states[id(objs[0])].mapper)
    groups: dict[tuple[str, ...], list[tuple[Any, dict[str, Any]]]] = {}
    for obj in objs:
        row = _row(plan, states[id(obj)].dict, links[id(obj)])
        groups.setdefault(tuple(row), []).append((obj, row))
    for members in groups.values():
        rows = [row for _, row in members]
        if (
            plan.returning is not None
            and plan.returning not in rows[0]  # (an id given, as a request's is, is known)
            and any(id(obj) in referred for obj, _ in members)
        ):
            new_ids = insert_together(connection, [*parts, (table, rows)], returning=plan.returning)
            for (obj, _), new_id in zip(members, new_ids, strict=True):
                states[id(obj)].dict[plan.returning] = new_id
            parts = []
        else:
            parts = [*parts, (table, rows)]
    return parts


def _row(plan: _Plan, values: dict[str, Any], links: list[tuple[Any, str, str]]) -> dict[str, Any]:
    """The row of a new object, as the flush would write it; the object's attributes get
    the values written (foreign keys, defaults, the version)."""
    for parent, column, mine in links:
        values[mine] = getattr(parent, column)
    row: dict[str, Any] = {}
    for attribute, key, fallback in plan.columns:
        if attribute in values:
            value = values[attribute]
        elif fallback[0] == "value":
            value = fallback[1]
        elif fallback[0] == "call":
            value = fallback[1](None)
        elif fallback[0] == "version":
            value = 1
        else:
            continue  # the database assigns it
        row[key] = value
        values[attribute] = value
    return row


def timeline(session: Session, request_id: int) -> Sequence[TimelineEntry]:
    return session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.request_id == request_id)
        .order_by(TimelineEntry.seq)
    ).all()


_NUMBER = re.compile(r"^HY-\d{8}-\d{6,}$")


def id_for(session: Session, text: str) -> int | None:
    """A request's id from its number (HY-20261118-000001) or its id written as digits."""
    text = text.strip().upper()
    if text.isdigit() and len(text) <= 18:
        return session.scalar(select(Request.id).where(Request.id == int(text)))
    if _NUMBER.match(text):
        return session.scalar(select(Request.id).where(Request.number == text))
    return None


# ---- lists: the API's pages and the console's lists, one filter type --------------------


@dataclass(frozen=True)
class Filters:
    """Which requests a list shows. `scope` is the departments whose view it is (a caller's
    department and those below it: what they lead, co-handle or have a task of);
    `department` filters on the lead department.
    `states=None` is any state."""

    states: Sequence[str] | None = None
    scope: frozenset[str] | None = None
    department: str | None = None
    category: str | None = None
    enterprise: str | None = None
    grid_prefix: str | None = None
    chain: str | None = None
    overdue: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    watch: bool = False  # only overdue or escalated ones
    # only those a supervisor must look at: overdue, escalated, or a decision waiting (an
    # extension or a suspension asked) — the board's badge
    attention: bool = False
    number: str | None = None  # exactly this number (HY-…)
    external_id: str | None = None  # exactly this external_id
    submitted_by: str | None = None  # only what this principal submitted
    extension: bool = False  # only those with an extension request pending
    suspension: bool = False  # only those with a suspension request pending a decision
    # words to search for (split on white space); a request matches when each word is the
    # start of its number or its enterprise's USCC, or stands in its enterprise's name or
    # its title (`text_matches`)
    text: str | None = None


def text_matches(word: str) -> ColumnElement[bool]:
    """Whether a request matches one word of a search: a prefix of its number (HY-2026…) or
    of its enterprise's USCC, or a part of its enterprise's name or of its title. Case does
    not count, on SQLite as on PostgreSQL, and `%`, `_` are matched as themselves."""
    named = select(Enterprise.uscc).where(Enterprise.name.icontains(word, autoescape=True))
    return or_(
        Request.number.istartswith(word, autoescape=True),
        Request.enterprise_uscc.istartswith(word, autoescape=True),
        Request.enterprise_uscc.in_(named),
        Request.title.icontains(word, autoescape=True),
    )


def _listed(f: Filters) -> Select[Request]:
    q = scoped(select(Request), f.scope)
    if f.states is not None:
        q = q.where(Request.state.in_(f.states))
    if f.department:
        q = q.where(Request.lead_department_code == f.department)
    if f.category:
        q = q.where(Request.category_code == f.category)
    if f.enterprise:
        q = q.where(Request.enterprise_uscc == f.enterprise)
    if f.grid_prefix:
        q = q.where(Request.grid_code.startswith(f.grid_prefix, autoescape=True))
    if f.chain:
        q = q.where(Request.chain_code == f.chain)
    if f.overdue is not None:
        q = q.where(Request.overdue.is_(f.overdue))
    if f.created_from:
        q = q.where(Request.created_at >= f.created_from)
    if f.created_to:
        q = q.where(Request.created_at < f.created_to)
    if f.watch:
        q = q.where(or_(Request.overdue.is_(True), Request.escalation_level > 0))
    if f.attention:
        q = q.where(
            or_(
                Request.overdue.is_(True),
                Request.escalation_level > 0,
                Request.pending_extension.is_not(None),
                Request.pending_suspension.is_not(None),
            )
        )
    if f.number is not None:
        q = q.where(Request.number == f.number)
    if f.external_id is not None:
        q = q.where(Request.external_id == f.external_id)
    if f.submitted_by is not None:
        q = q.where(Request.submitted_by == f.submitted_by)
    if f.extension:
        q = q.where(Request.pending_extension.is_not(None))
    if f.suspension:
        q = q.where(Request.pending_suspension.is_not(None))
    if f.text:
        q = q.where(*(text_matches(word) for word in f.text.split()))
    return q


def _more(rows: Sequence[Request], limit: int) -> tuple[Sequence[Request], bool]:
    return rows[:limit], len(rows) > limit


def page(
    session: Session, filters: Filters, *, after_id: int | None, limit: int
) -> tuple[Sequence[Request], bool]:
    """Newest first; keyset pagination on id. Returns the page and whether more follow."""
    q = _listed(filters)
    if after_id is not None:
        q = q.where(Request.id < after_id)
    return _more(session.scalars(q.order_by(Request.id.desc()).limit(limit + 1)).all(), limit)


def _nearest_due() -> ScalarSelect[datetime]:
    """The earliest due instant among the request's running or missed deadlines."""
    return (
        select(func.min(Deadline.due_at))
        .where(
            Deadline.request_id == Request.id,
            Deadline.completed_at.is_(None),
            Deadline.status != "paused",
        )
        .correlate(Request)
        .scalar_subquery()
    )


def by_deadline(
    session: Session, filters: Filters, *, limit: int
) -> tuple[Sequence[Request], bool]:
    """The nearest deadline first; requests whose clock is paused last. Returns whether more
    than `limit` match."""
    due = _nearest_due()
    q = _listed(filters).order_by(due.is_(None), due, Request.id).limit(limit + 1)
    return _more(session.scalars(q).all(), limit)


def by_level(session: Session, filters: Filters, *, limit: int) -> tuple[Sequence[Request], bool]:
    """The highest escalation level first, then the nearest deadline."""
    due = _nearest_due()
    q = (
        _listed(filters)
        .order_by(Request.escalation_level.desc(), due.is_(None), due, Request.id)
        .limit(limit + 1)
    )
    return _more(session.scalars(q).all(), limit)


def count(session: Session, filters: Filters) -> int:
    return int(session.scalar(_listed(filters).with_only_columns(func.count(Request.id))) or 0)


def count_by_state(session: Session) -> dict[str, int]:
    """How many requests are in each state (states without one left out)."""
    rows = session.execute(select(Request.state, func.count()).group_by(Request.state))
    return {state: int(n) for state, n in rows}


def count_overdue(session: Session, *, states: Sequence[str]) -> int:
    """How many requests in `states` are overdue now."""
    query = select(func.count()).where(Request.state.in_(states), Request.overdue.is_(True))
    return int(session.scalar(query) or 0)


def count_by_level(session: Session, *, states: Sequence[str]) -> dict[int, int]:
    """How many requests in `states` are at each escalation level above 0."""
    rows = session.execute(
        select(Request.escalation_level, func.count())
        .where(Request.state.in_(states), Request.escalation_level > 0)
        .group_by(Request.escalation_level)
    )
    return {level: int(n) for level, n in rows}


def marker(session: Session, *lists: Filters, salt: str = "") -> str:
    """A value that changes whenever a request enters, leaves or changes in these lists:
    every write bumps a request's version, so (count, sum of versions, sum of ids) moves."""
    parts = [salt]
    for filters in lists:
        row = session.execute(
            _listed(filters).with_only_columns(
                func.count(Request.id),
                func.coalesce(func.sum(Request.version), 0),
                func.coalesce(func.sum(Request.id), 0),
            )
        ).one()
        parts.append(":".join(str(v) for v in row))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


# ---- what a page of requests shows beside the rows -----------------------------------------


def returns_of(session: Session, request_ids: Sequence[int]) -> dict[int, TimelineEntry]:
    """The latest `return` row of each request (who returned it and why)."""
    if not request_ids:
        return {}
    rows = session.scalars(
        select(TimelineEntry)
        .where(TimelineEntry.request_id.in_(request_ids), TimelineEntry.action == "return")
        .order_by(TimelineEntry.request_id, TimelineEntry.seq)
    )
    return {row.request_id: row for row in rows}


def actor_names(session: Session, actors: Sequence[str]) -> dict[str, str]:
    """Display names for timeline actors: `user:…` and `key:…`."""
    users = {a.removeprefix("user:") for a in actors if a.startswith("user:")}
    keys = {int(a[4:]) for a in actors if a.startswith("key:") and a[4:].isdigit()}
    names: dict[str, str] = {}
    if users:
        for username, display in session.execute(
            select(User.username, User.display_name).where(User.username.in_(users))
        ):
            names[f"user:{username}"] = display or username
    if keys:
        for key_id, name in session.execute(
            select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(keys))
        ):
            names[f"key:{key_id}"] = name
    return names


@dataclass(frozen=True)
class Names:
    departments: dict[str, str]
    categories: dict[str, str]
    enterprises: dict[str, str]


def names_for(session: Session, requests: Sequence[Request]) -> Names:
    """The names of the departments, categories and enterprises some requests refer to."""
    dept_codes = (
        {r.lead_department_code for r in requests if r.lead_department_code}
        | {c for r in requests for c in r.co_department_codes}
        | {t.department_code for r in requests for t in r.tasks}
    )
    departments: dict[str, str] = (
        dict(
            session.execute(
                select(Department.code, Department.name).where(Department.code.in_(dept_codes))
            ).all()
        )
        if dept_codes
        else {}
    )
    categories: dict[str, str] = dict(
        session.execute(
            select(Category.code, Category.name).where(
                Category.code.in_({r.category_code for r in requests})
            )
        ).all()
    )
    enterprises: dict[str, str] = dict(
        session.execute(
            select(Enterprise.uscc, Enterprise.name).where(
                Enterprise.uscc.in_({r.enterprise_uscc for r in requests})
            )
        ).all()
    )
    return Names(departments=departments, categories=categories, enterprises=enterprises)


# ---- the worker: due deadlines with their requests, and the batch's UPDATE ---------------


# What a request says but no step of the worker reads (the submitter's words and where, how
# it came in, and what a step writes without reading: `updated_at`, `closed_at`), and the
# same of its tasks (a step reads a task's department, kind and status, and ends it): left
# out of the claim, which loads thousands of requests at once when many fall due (each
# instant left out is one parse fewer: a claim of 500 read 12,000). Deferred, not refused:
# a step that did read one would load it on its own (`tests/requests/test_firing_batch.py`
# refuses them instead, and fires every kind of step).
_NOT_FIRED_ON = (
    Request.title,
    Request.description,
    Request.location,
    Request.lat,
    Request.long,
    Request.address,
    Request.media_urls,
    Request.contact,
    Request.receipt_token,
    Request.external_id,
    Request.submitted_by,
    Request.idempotency_scope,
    Request.idempotency_key,
    Request.idempotency_hash,
    Request.grid_code,
    Request.chain_code,
    Request.source,
    Request.enterprise_resolved,
    Request.merged_into_id,
    Request.closed_at,
    Request.updated_at,
)
_TASK_NOT_FIRED_ON = (
    RequestTask.note,
    RequestTask.limit,
    RequestTask.created_at,
    RequestTask.created_by,
    RequestTask.signed_by,
    RequestTask.replied_at,
    RequestTask.replied_by,
    RequestTask.reply,
    RequestTask.on_time,
    RequestTask.received_at,
)


@cache
def _left_out() -> tuple[Any, ...]:
    """The claim's options leaving out `_NOT_FIRED_ON`, built once (each claim built them)."""
    return tuple(defer(column) for column in _NOT_FIRED_ON)


@cache
def _left_out_of_tasks() -> tuple[Any, ...]:
    return tuple(defer(column) for column in _TASK_NOT_FIRED_ON)


def claim_due(
    session: Session,
    *,
    now: datetime,
    batch: int,
) -> list[tuple[Deadline, Request]]:
    """Up to `batch` due deadlines with their requests, oldest first, each request without
    the columns no step reads (`_NOT_FIRED_ON`).

    On PostgreSQL, in a materialised CTE, each due row's request is locked before the
    deadline itself (FOR UPDATE OF requests, deadlines SKIP LOCKED: in that order), so a
    deadline whose request another transaction holds is skipped without being locked. Were
    it locked, that transaction's UPDATE of it (an auto-close ending a task's deadline)
    would wait for this one; with a worker's batches pipelined (`huying.requests.firing`),
    this one may be waiting for that one to commit: a cycle through the application that
    PostgreSQL cannot see, in one worker or across two."""
    due_now = (Deadline.next_fire_at.is_not(None), Deadline.next_fire_at <= now)
    lean = _left_out()
    if session.get_bind().dialect.name != "postgresql":  # SQLite: one writer at a time
        query = (
            select(Deadline, Request)
            .join(Request, Request.id == Deadline.request_id)
            .where(*due_now)
            .order_by(Deadline.next_fire_at, Deadline.id)
            .limit(batch)
            .options(*lean, *_COLLECTIONS_BY_HAND)
        )
        return [(d, r) for d, r in session.execute(query)]
    due = (
        select(Deadline.id)
        .join(Request, Request.id == Deadline.request_id)
        .where(*due_now)
        # the partial index's own order (next_fire_at, id), no sort: ties are common (limits
        # end at the same hour), and sorting a tie would read all of it before the first lock
        .order_by(Deadline.next_fire_at, Deadline.id)
        .limit(batch)
        .with_for_update(of=[Request, Deadline], skip_locked=True)  # the request first
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    query = (
        select(Deadline, Request)
        .join(due, due.c.id == Deadline.id)
        .join(Request, Request.id == Deadline.request_id)
        .order_by(Deadline.next_fire_at, Deadline.id)
        # Locked by the CTE already, so this never waits; it makes the outer scans read each
        # row's latest version. Without it they read the statement's snapshot: a request
        # whose batch in flight committed after that snapshot but before the CTE locked it
        # came back stale, and its batch then failed on the version (StaleDataError).
        .with_for_update(of=[Request, Deadline])
        .options(*lean, *_COLLECTIONS_BY_HAND)
    )
    # Down the index in its order, never a bitmap scan. `next_fire_at` moves with every step
    # fired, so the statistics never know how many are due: a burst looks like a few rows,
    # and the planner's bitmap scan then reads and sorts every due row (and every version
    # the batches before left behind) before the first lock: 60-110 ms for each claim of a
    # burst against 5-15 ms, and 190-500 ms for the first claim of a burst of 10,000, which
    # nothing told it was one (BENCHMARKS.md, "Deadlines"). The index scan stops at the
    # batch's end and marks the dead versions it meets, so the next claim skips them. For
    # the rest of the batch's transaction too: its other reads look rows up by key, where
    # an index scan is the plan. One statement more per tick, ~0.1 ms: every claim pays
    # it, since a tick cannot know it starts a burst before its first claim is made.
    session.execute(sql_text("SET LOCAL enable_bitmapscan = off"))
    return [(d, r) for d, r in session.execute(query)]


# The claim's requests' co-departments and tasks are not loaded with them: a step reads them
# as `collections_of` gives them, and a step that changes them has them loaded first, for
# the whole batch (`load_collections`). Not by the mapping's `selectin` loads either: each
# of those sends an IN of one placeholder per request, which SQLAlchemy expands and psycopg
# parses anew on every claim (it caches only short statements): about 5% of a burst's CPU
# in samples (BENCHMARKS.md, "Deadlines").
_COLLECTIONS_BY_HAND = (lazyload(Request.co_departments), lazyload(Request.tasks))


# What the workflow reads of a task, in `huying.workflow.context.TaskView`'s order.
TASK_VIEW = ("department_code", "kind", "status")


def collections_of(
    session: Session, request_ids: Sequence[int]
) -> tuple[dict[int, list[str]], dict[int, list[tuple[Any, ...]]]]:
    """The co-departments of each of these requests (their codes), and its tasks (the id,
    then `TASK_VIEW`), each in the order the mapping loads them, as rows: no ORM objects
    (building those was 8% of a burst, and nearly no step needs them)."""
    co: dict[int, list[str]] = {i: [] for i in request_ids}
    tasks: dict[int, list[tuple[Any, ...]]] = {i: [] for i in request_ids}
    if not request_ids:
        return co, tasks
    dialect = session.get_bind().dialect.name
    with session.no_autoflush:
        for rid, code in session.execute(
            _co_departments_of(
                (RequestCoDepartment.request_id, RequestCoDepartment.department_code),
                request_ids,
                dialect,
            )
        ):
            co[rid].append(code)
        viewed = (getattr(RequestTask, name) for name in TASK_VIEW)
        for tid, rid, *view in session.execute(
            _tasks_of((RequestTask.id, RequestTask.request_id, *viewed), request_ids, dialect)
        ):
            tasks[rid].append((tid, *view))
    return co, tasks


def load_collections(session: Session, reqs: Sequence[Request]) -> None:
    """Fill these requests' `co_departments` and `tasks` as loaded (committed) state, each
    read by one query over all of them, ordered as the mapping orders them, without flushing
    what the session holds. A request that holds both already is left as it is."""
    by_id = {r.id: r for r in reqs if not {"co_departments", "tasks"} <= r.__dict__.keys()}
    if not by_id:
        return
    dialect = session.get_bind().dialect.name
    co: dict[int, list[RequestCoDepartment]] = {i: [] for i in by_id}
    tasks: dict[int, list[RequestTask]] = {i: [] for i in by_id}
    with session.no_autoflush:
        for c in session.scalars(_co_departments_of((RequestCoDepartment,), list(by_id), dialect)):
            co[c.request_id].append(c)
        for t in session.scalars(
            _tasks_of((RequestTask,), list(by_id), dialect).options(*_left_out_of_tasks())
        ):
            tasks[t.request_id].append(t)
    for i, req in by_id.items():
        for key, value in (("co_departments", co[i]), ("tasks", tasks[i])):
            if key not in req.__dict__:
                set_committed_value(req, key, value)


def _co_departments_of(
    what: Sequence[Any], request_ids: Sequence[int], dialect: str
) -> Select[Any]:
    return (
        select(*what)
        .where(among(RequestCoDepartment.request_id, request_ids, dialect=dialect, name="ids"))
        .order_by(RequestCoDepartment.request_id, RequestCoDepartment.department_code)
    )


def _tasks_of(what: Sequence[Any], request_ids: Sequence[int], dialect: str) -> Select[Any]:
    return (
        select(*what)
        .where(among(RequestTask.request_id, request_ids, dialect=dialect, name="ids"))
        .order_by(RequestTask.id)
    )


@cache
def _columns() -> frozenset[str]:
    """The request's column attributes the batch UPDATE may write (read once, when first
    needed: no mapper inspection at import time)."""
    return frozenset(c.key for c in inspect(Request).column_attrs) - {"id", "version"}


def write_batch(session: Session, reqs: Sequence[Request], *, settle: bool = True) -> None:
    """UPDATE a claimed batch's changed requests, one statement per set of changed columns
    (`huying.db.update_versioned`).

    The unit of work would send one UPDATE per request, because `version` is a version
    counter and each row's count of matches must be checked on its own: 10,000 round trips
    when 10,000 deadlines fall due at once. Here the claim holds every one of these rows
    locked (FOR UPDATE), so nothing can have changed them; the UPDATE still names the version
    it read, and a total count of matches short of the batch fails the whole transaction as
    the unit of work would. With `settle`, the values then become the rows' committed state,
    and the flush that follows has no request left to write; a caller that lets go of the
    requests (`expunge_all`) before its commit has no flush to prepare for."""
    columns_of = _columns()
    groups: dict[tuple[str, ...], list[tuple[Request, dict[str, Any]]]] = {}
    for req in dict.fromkeys(reqs):  # each once, in order
        state = instance_state(req)
        # committed_state: the attributes changed since load, with their loaded values
        changed = {
            key: state.dict.get(key)
            for key, before in state.committed_state.items()
            if key in columns_of and state.dict.get(key) != before
        }
        if changed:
            groups.setdefault(tuple(sorted(changed)), []).append((req, changed))
    table = cast(Table, Request.__table__)
    connection = session.connection()  # this transaction; no autoflush
    for columns, members in groups.items():
        rows = [
            {**changed, "_id": req.id, "_read": req.version, "version": req.version + 1}
            for req, changed in members
        ]
        matched = update_versioned(connection, table, (*columns, "version"), rows)
        if matched != len(rows):
            raise StaleDataError(
                f"UPDATE requests matched {matched} of {len(rows)} rows of a claimed batch"
            )
        for req, changed in members if settle else ():
            for key, value in changed.items():
                set_committed_value(req, key, value)
            set_committed_value(req, "version", req.version + 1)
