"""Firing due deadlines: claim the rows whose `next_fire_at` has come, and fire each step
(warning, overdue, every rung of the ladder, auto-close) once, in order, through the engine,
as a system action on the deadline's request.

The end of an approved suspension is a step too: the suspension's timer falls due and the
request resumes (`resume`, as the system).

A tick claims a batch with FOR UPDATE SKIP LOCKED on PostgreSQL (the deadline and its
request both locked, so a concurrent action waits or is skipped), fires it, and moves
`next_fire_at` on in the same transaction: a second claim of the same step finds nothing.

It lives with the requests because every step is a request's action: the requests use the
deadlines (`huying.deadlines.service` plans and schedules the rows), never the other way.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import psycopg
from sqlalchemy import Table
from sqlalchemy.orm import Session

from huying.alerts.models import Event
from huying.db import held, insert_rows, json_text
from huying.deadlines import service as deadlines
from huying.deadlines.models import Deadline
from huying.directory import notify
from huying.directory import service as directory
from huying.errors import HuyingError
from huying.requests import repository as repo
from huying.requests import service as requests
from huying.requests.models import Request, TimelineEntry
from huying.runtime import Runtime

log = logging.getLogger("huying.deadlines")
RETRY_LATER = timedelta(minutes=5)


@dataclass
class FireResult:
    claimed: int = 0
    fired: int = 0  # steps fired (warnings, overdue, rungs, auto-closes)


@dataclass
class _Batch:
    """What the steps of one claimed batch read, each read once: the directory's categories
    and departments, and the open deadlines of the batch's requests; and the timeline rows
    and events its steps wrote.

    A claim's batch (`load(..., claim=True)`) reads the requests' tasks and co-departments
    as rows (`views`), and the deadlines of their tasks not at all, until a step first
    reads or changes them (`with_tasks`): then all of them, for all of the batch's
    requests at once, as the session's objects. A warning, an overdue or a rung of the
    ladder never does, and when many fall due at once those are nearly all of the steps:
    reading the tasks' deadlines was 5% of a burst, and building the tasks and
    co-departments as ORM objects 8%. Any other batch reads everything up front, as any
    action does."""

    session: Session
    reqs: Sequence[Request]
    overrides: Mapping[str, Mapping[str, str]]
    departments: notify.Departments
    deadlines: dict[int, list[Deadline]]
    # the requests' tasks and co-departments as the workflow reads them, by request id; None
    # once the requests' own are read (`with_tasks`), or where they were read up front
    views: dict[int, requests.Collections] | None = None
    # fire_due's: what the steps write, for one bulk INSERT at the batch's end (`_write`);
    # None: into the session, as any action's
    rows: requests.Rows | None = None

    @classmethod
    def load(
        cls,
        session: Session,
        reqs: Sequence[Request],
        claimed: Sequence[Deadline] = (),
        rows: requests.Rows | None = None,
        *,
        claim: bool = False,
    ) -> _Batch:
        """`claim`: the requests were just claimed, their tasks and co-departments not
        loaded, and nothing of them changed yet in the session."""
        ids = sorted({r.id for r in reqs})
        open_rows = deadlines.open_of_requests(
            session=session, request_ids=ids, loaded=claimed, tasks=not claim
        )
        categories = (  # each kept by the directory's cache, as the departments are
            directory.category_view(session=session, code=code)
            for code in {r.category_code for r in reqs}
        )
        return cls(
            session=session,
            reqs=reqs,
            overrides={c.code: c.time_limits for c in categories if c is not None},
            departments=directory.department_views(session=session),
            deadlines=open_rows,
            views=_views(session, ids) if claim else None,
            rows=rows,
        )

    def with_tasks(self) -> None:
        """Read the requests' tasks and co-departments as the session's objects, and add
        the open deadlines of their tasks to their lists, once; from then on a step reads
        those, not `views`. A deadline the batch holds already (a claimed one) is not added
        twice, and one a step has ended is left out."""
        if self.views is None:
            return
        self.views = None
        repo.load_collections(self.session, self.reqs)
        ids = sorted({r.id for r in self.reqs})
        grown = set()
        for d in deadlines.open_of_tasks(session=self.session, request_ids=ids):
            held = self.deadlines.setdefault(d.request_id, [])
            if d.completed_at is None and not any(h is d for h in held):
                held.append(d)
                grown.add(d.request_id)
        for rid in grown:
            self.deadlines[rid].sort(key=_oldest_first)


def _views(session: Session, request_ids: Sequence[int]) -> dict[int, requests.Collections]:
    """Each request's tasks and co-departments as the workflow reads them, from rows."""
    co, tasks = repo.collections_of(session, request_ids)
    return {rid: requests.Collections.of_rows(co[rid], tasks[rid]) for rid in request_ids}


def _oldest_first(d: Deadline) -> tuple[bool, int]:
    return d.id is None, d.id or 0


# What a step reads of its deadline and of its request (`huying.db.held`)
_FIRED = held("kind", "due_at", "task_id")
_OF_REQUEST = held("id", "category_code")


def _step(
    session: Session, rt: Runtime, d: Deadline, req: Request, due: datetime, batch: _Batch
) -> None:
    """Fire the one step that `next_fire_at` points at: ask the engine first (it refuses
    before anything is written), then mark the deadline and apply the outcome."""
    step = deadlines.next_step(d, settings=rt.settings)
    kind, due_at, task_id = _FIRED(d)
    rid, category = _OF_REQUEST(req)
    # the batch's rows of them, or (once read, or read up front) the request's own
    views = batch.views[rid] if batch.views is not None else requests.Collections.of(req)
    payload: dict[str, Any] = {"deadline": kind, "due_at": due_at.isoformat()}
    if step.rung is not None:  # who the rung notifies is added where every escalation is
        payload |= {"level": step.rung.level, "rung": step.number}
    if task_id is not None:  # a task's own step names the task and its department
        task = views.tasks.get(task_id)
        payload |= {"task_id": task_id, "department": task.department if task else None}
    # the planner appends the deadlines it starts to this same list
    open_rows = batch.deadlines.setdefault(rid, [])
    outcome = requests.system_outcome(
        rt=rt,
        req=req,
        action=step.action,
        payload=payload,
        now=due,
        deadlines=open_rows,
        collections=views,
    )
    deadlines.mark_fired(d, step, due=due)
    requests.apply_system(
        rt=rt,
        session=session,
        req=req,
        outcome=outcome,
        overrides=batch.overrides.get(category, {}),
        deadlines=open_rows,
        departments=batch.departments,
        rows=batch.rows,
        with_tasks=batch.with_tasks,
    )


def fire_one(
    session: Session,
    rt: Runtime,
    d: Deadline,
    req: Request,
    *,
    now: datetime,
    batch: _Batch | None = None,
) -> int:
    """Every step of one deadline that has come by `now`, in order; returns how many fired."""
    batch = batch or _Batch.load(session, [req])
    fired = 0
    while (
        due := deadlines.next_fire_at(d, settings=rt.settings, calendar=rt.calendar)
    ) is not None and due <= now:
        _step(session, rt, d, req, due, batch)
        fired += 1
    d.next_fire_at = due  # the instant after the last step fired, or None
    d.version += 1
    return fired


def fire_due(rt: Runtime, *, now: datetime, batch: int | None = None) -> FireResult:
    """Claim and fire due deadlines in batches until none is due, each batch in one
    transaction: all of it or none of it is written (a worker killed mid-batch leaves its
    deadlines due for the next claim).

    The engine refuses before anything of a step is written, so a refused deadline needs
    no savepoint: it is logged and looked at again later. What the batch's steps wrote goes
    to the database at its end in a few set-based statements (`_write`).

    On PostgreSQL a full batch's writes and commit run on a thread of their own while the
    next batch is claimed and fired (`_Writer`): the database writes one batch while Python
    works on the next. A claim made while a batch is in flight cannot take that batch's
    requests (they are locked), so it is not the last word (a step may have started a
    deadline due already, seen once committed): one more claim follows once it is written,
    and the loop ends only on a short claim made with nothing in flight."""
    size = batch or rt.settings.worker.batch_size
    result = FireResult()
    with _Writer(overlap=rt.db.dialect.name == "postgresql") as writer, _CycleCollector() as gc_:
        while True:
            claimed = _claim(rt, now=now, size=size, alone=not writer.busy)
            full = len(claimed.rows) >= size
            _fire_batch(rt, claimed, now=now, result=result, writer=writer, full=full)
            # a short batch is written at once (`_fire_batch`): the next claim has nothing in
            # flight, so it is the last word; this one only if nothing was in flight either
            if not full and claimed.alone:
                return result
            gc_.batch_done()


@dataclass
class _Claimed:
    """A claimed batch, its transaction open: the rows, what its steps read (`_Batch`), and
    whether nothing of the same call was uncommitted when the claim began (`alone`)."""

    transaction: ExitStack
    session: Session
    rows: list[tuple[Deadline, Request]]
    batch: _Batch | None
    written: requests.Rows
    alone: bool


def _claim(rt: Runtime, *, now: datetime, size: int, alone: bool) -> _Claimed:
    """Open a transaction, claim up to `size` due deadlines, and read what their steps
    need."""
    transaction = ExitStack()
    session = transaction.enter_context(rt.transaction())
    try:
        rows = repo.claim_due(session, now=now, batch=size)
        written = requests.Rows()
        reqs = [req for _, req in rows]
        batch = (
            _Batch.load(session, reqs, [d for d, _ in rows], written, claim=True) if rows else None
        )
    except BaseException:
        transaction.__exit__(*sys.exc_info())  # rolls back
        raise
    return _Claimed(transaction, session, rows, batch, written, alone)


def _fire_batch(
    rt: Runtime,
    claimed: _Claimed,
    *,
    now: datetime,
    result: FireResult,
    writer: _Writer,
    full: bool,
) -> None:
    """Fire one claimed batch; hand its writes and commit to `writer`."""
    session, rows = claimed.session, claimed.rows
    try:
        for d, req in rows:
            try:
                result.fired += fire_one(session, rt, d, req, now=now, batch=claimed.batch)
            except HuyingError as exc:  # the workflow refused: log, look again later
                log.error("deadline %s of request %s not fired: %s", d.id, req.id, exc.detail)
                d.next_fire_at = now + RETRY_LATER
        writer.wait()  # the batch before this one: its error rolls this one back too
    except BaseException:
        if not claimed.transaction.__exit__(*sys.exc_info()):  # rolls back
            raise
        return

    def finish() -> None:
        with claimed.transaction:  # commits, or rolls back what `_write` raised on
            _write(session, claimed.written, rows)

    # a short batch is the last (or one more claim follows): nothing to overlap it with
    writer.run(finish, alone=not full)
    result.claimed += len(rows)


class _Writer:
    """Writes and commits claimed batches, on a thread of its own when `overlap`: at most one
    batch in flight, whose error is raised by the next `run` or `wait`, or on leaving.

    The thread starts with the first full batch, so a tick with little due runs as before,
    in the caller's thread. psycopg lets go of the GIL while it waits for the server, so the
    next batch's firing runs meanwhile; the server works on the other core."""

    def __init__(self, *, overlap: bool) -> None:
        self.overlap = overlap
        self.pool: ThreadPoolExecutor | None = None
        self.pending: Future[None] | None = None

    @property
    def busy(self) -> bool:
        """A batch handed over and not yet waited for (written or not)."""
        return self.pending is not None

    def run(self, finish: Callable[[], None], *, alone: bool) -> None:
        """Write and commit one batch (`finish`), after the one before it (`wait`)."""
        self.wait()
        if alone or not self.overlap:
            finish()
            return
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="huying-firing")
        self.pending = self.pool.submit(finish)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            if kind is None:
                self.wait()
            elif self.pending is not None:  # the caller's error wins; the batch ends first
                try:
                    self.pending.result()
                except Exception:
                    log.exception("a batch in flight failed too")
                self.pending = None
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True)


class _CycleCollector:
    """Python's cycle collector off for one `fire_due` call, but for one pass over the
    young objects every `EVERY` batches.

    A batch makes ORM objects by the thousand (states, rows, timeline rows, events) that
    all live until it is written, and nearly none of them in a cycle: reference counting
    frees them (a burst of 10,000 deadlines left 2,119 objects for the collector). Left on,
    the collector traversed every one of them at least once for nothing: a third of a
    batch's CPU (bench: 0.78 against 0.52 ms per deadline); off for each batch but on
    between them, its pass after each batch was still 4% of a burst (paired, 4 pairs: CPU
    4.73 against 4.54 s).

    The pass every `EVERY` batches keeps a long burst's cycles bounded: it traverses only
    what was made since the pass before and is still alive (the batches in flight, two at
    most, `_Writer`) and frees the cycles of the batches written since. It moves those
    live objects one generation up, so a cycle among them (about a hundred objects a
    batch) waits for the collector's first pass over that generation after the burst; a
    full pass would find it sooner but traverse the whole process each time. The switch is
    the process's: in a `huying serve` that fires deadlines itself, the API's threads run
    without the collector during a burst too (as they did during each batch before)."""

    EVERY = 20

    def __init__(self) -> None:
        self.batches = 0
        self.owned = False

    def __enter__(self) -> _CycleCollector:
        # off already: another caller's burst, or the process's own choice
        self.owned = gc.isenabled()
        if self.owned:
            gc.disable()
        return self

    def batch_done(self) -> None:
        self.batches += 1
        if self.owned and self.batches % self.EVERY == 0:
            gc.collect(0)

    def __exit__(self, *exc: object) -> None:
        if self.owned:
            gc.enable()


# ---- the batch's writes ----------------------------------------------------------------------


def _write(
    session: Session, written: requests.Rows, rows: Sequence[tuple[Deadline, Request]]
) -> None:
    """Write what a claimed batch changed in a few set-based statements.

    Every step goes through `requests.apply_system`, the one place a request's state, its
    timeline row and its events are written: it changes the claimed (ORM) requests and
    deadlines and hands its timeline rows and events over as column values (`written`);
    left to the unit of work they would cost more than the firing itself when thousands
    fall due at once. So the claimed requests and deadlines are UPDATEd by executemany (the
    claim holds them locked), the timeline rows and events are INSERTed at once (COPY on
    PostgreSQL), and
    when nothing else is left to write (a step rarely starts a deadline or ends a task) the
    session lets go of the batch, so the commit has nothing to flush; otherwise the flush
    writes the rest as usual."""
    dirty = session.dirty
    # nothing but the claimed requests and their deadlines to write: no flush needed after
    done = (
        not session.new
        and not session.deleted
        and all(isinstance(o, Request | Deadline) for o in dirty)
    )
    repo.write_batch(
        session,
        [req for _, req in rows] + [o for o in dirty if isinstance(o, Request)],
        settle=not done,
    )
    deadlines.write_changed(
        session=session,
        rows=[d for d, _ in rows] + [o for o in dirty if isinstance(o, Deadline)],
        settle=not done,
    )
    _insert(session, TimelineEntry, written.timeline)
    _insert(session, Event, written.events)
    if done:
        session.expunge_all()


def _insert(
    session: Session, model: type[TimelineEntry | Event], rows: list[dict[str, Any]]
) -> None:
    """INSERT rows (each with the same keys) in this transaction: COPY on PostgreSQL, one
    stream the server parses once; elsewhere one executemany on the driver's cursor
    (`huying.db.insert_rows`: each distinct instant converted once, the JSON by orjson)."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        insert_rows(connection, table, rows)
        return
    columns = list(rows[0])
    json_at = [i for i, c in enumerate(columns) if c == "data"]
    # the JSON as text, for the server to parse (`json_text`: psycopg's `Jsonb` would call
    # the stdlib's, five times slower)
    driver = cast("psycopg.Connection[Any]", connection.connection.driver_connection)
    quoted = ", ".join(f'"{c}"' for c in columns)
    with (
        driver.cursor() as cursor,
        cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy,
    ):
        for row in rows:
            values = [row[c] for c in columns]
            for i in json_at:
                if values[i] is not None:
                    values[i] = json_text(values[i])
            copy.write_row(values)
