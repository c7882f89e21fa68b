"""The reports' queries: the rates aggregation, the returns and the tasks by department, the
names of the groups, the requests per day, and the statements that back-fill the per-request
facts.

The rates are one aggregation over `requests` and one or more reads of a few of them (see
`huying.reports.service` for what each figure means), the same on PostgreSQL and SQLite:

1. one aggregation grouped by the chosen key and a histogram bucket of each fact's working
   seconds (`_aggregated`): each count is `count(*) FILTER (WHERE …)` over the request's own
   columns (`conditions`), or a sum of two (`SUMS`), each mean a sum over the count of the
   requests with a bucket; summed again by group, and by group and bucket, in the same
   statement. The months of the period that are folded and clean come as such groups
   already, from `report_rollups` (`huying.reports.rollups`): only the rest of the period is
   read from `requests`;
2. in Python, the bucket of each group that holds the 90th percentile by nearest rank, the
   value at rank ceil(0.9 n) as `percentile_disc(0.9)` defines it, the rank within it and
   the end of the bucket it lies nearer (`locate`);
3. the value at that rank, read from the requests of those buckets only (`_values_at`): in
   the order of the fact's seconds from that end, through the partial index on them, as few
   as the rank needs (`_nearest`), where that costs less than reading the period whole;
   otherwise the requests of the period in those buckets, whole (`_read_whole`).

Why not `percentile_disc` itself: an ordered-set aggregate has no partial form, so PostgreSQL
(15) can neither hash-aggregate a statement that has one nor aggregate it in its parallel
workers; it sorted every request of the period by the group key and sent them all to one
process (5× the time of a bare `GROUP BY` count over a year of a million requests). Grouped on
plain keys (no collation, no percentile) the aggregation runs in the parallel workers. Read
whole, pass three was a second read of the table (1.9× the bare count over that year); in
order it fetches 7,000–25,000 rows by grouping (0.1–0.25×), and it needs no visibility map,
which `VACUUM FULL` leaves empty (an index-only read of a covering index would fetch every
row too). How far it reads depends on where the rank lies in its bucket, up to the whole
bucket; where that would cost more than reading the period whole, it reads that as before.

A `scope` (a set of department codes, None for all) keeps the requests led by one of them, and
the returns and tasks of one of them.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Float,
    Integer,
    Numeric,
    SQLColumnExpression,
    String,
    and_,
    case,
    cast,
    column,
    distinct,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
    update,
    values,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from huying.deadlines.models import Deadline
from huying.directory.models import Category, Chain, Department
from huying.reports import worktime
from huying.reports.models import FOLDED_GRID_LEN, report_months, report_rollups
from huying.reports.schemas import GroupBy
from huying.requests.models import Request, RequestReturn, RequestTask
from huying.workflow.library import SATISFIED

# the working seconds of each fact, by the name of its figures (`sign_mean`, `reply_p90`)
TIMES = {"sign": "sign_working_seconds", "reply": "first_reply_working_seconds"}
ENDED = ("met", "missed")  # a deadline that ended either way
OPEN_TASK = ("pending", "signed")  # a task not yet replied to, nor cancelled
P90 = 0.9  # the percentile of the rates' `<fact>_p90`
# The counts that are sums of `conditions` which exclude each other (the enterprise answered
# or it did not): added up by group, not tested on every request.
SUMS = {"resolved": ("resolved_confirmed", "resolved_claimed")}
# The width of a histogram bucket of each fact, in working seconds (`fact_bucket`): results do not
# depend on it, time does. Narrower buckets make more groups in the aggregation (a year by
# department: 4,200 at these widths, 27,000 at half of them, ~1.7× the time); wider ones
# make pass three read more requests (at twice these widths the aggregation took 0.25× the
# bare count less, and pass three read 48,000 requests in order instead of 14,500: 0.9×
# more). A signing takes hours, a first reply days.
WIDTHS = {"sign": 3600, "reply": 4 * 3600}
# What reading a request in order by its fact (`_nearest`: an index entry, then its row on its
# own) costs against reading it in a scan of the period (measured 4–10×): pass three reads in
# order only what comes to less than 1 / IN_ORDER_COST of the report's requests.
IN_ORDER_COST = 10


# --- the rates -----------------------------------------------------------------------------


def group_key(group_by: GroupBy, grid_len: int) -> SQLColumnExpression[Any]:
    if group_by == "grid":
        return func.substr(Request.grid_code, 1, grid_len)
    column = {
        "department": Request.lead_department_code,
        "category": Request.category_code,
        "chain": Request.chain_code,
        "urgency": Request.urgency,
    }[group_by]
    return column


def _in_scope(column: Any, scope: frozenset[str] | None) -> ColumnElement[bool]:
    """Rows whose department `column` is one of `scope`; every row when scope is None."""
    return true() if scope is None else column.in_(sorted(scope))


def conditions(r: Any, escalation_levels: Sequence[int]) -> dict[str, ColumnElement[bool]]:
    """Each count of a row (but `received`, every request, and the `SUMS`) as the condition a
    request meets; `r` is `Request` or an alias of it. The README's table says the same in
    words. Every request of the period is tested against each, so a test of a flag comes
    before a comparison of text: the comparison is skipped when the flag decides."""
    closed = r.state == "closed"
    return {
        # A lead department now, or one that returned it (a return clears the lead).
        "dispatched": or_(r.lead_department_code.is_not(None), r.return_count > 0),
        # 应签收: signed (its sign deadline ended, met or missed), or still waiting for its
        # signing past the sign deadline (a request `dispatched` runs only that deadline).
        # One whose sign deadline is still ahead is in neither the response rate's
        # numerator nor its denominator: it may yet be signed on time.
        "sign_due": or_(
            r.sign_on_time.is_not(None), and_(r.overdue.is_(True), r.state == "dispatched")
        ),
        "signed": r.sign_on_time.is_not(None),
        "signed_on_time": r.sign_on_time.is_(True),
        "replied": r.first_reply_on_time.is_not(None),
        "replied_on_time": r.first_reply_on_time.is_(True),
        "closed": closed,
        # 已解决 (`SUMS`): the enterprise's answer where it gave one, the department's claim
        # otherwise.
        "resolved_confirmed": and_(r.enterprise_resolved.is_(True), closed),
        "resolved_claimed": and_(r.resolved.is_(True), r.enterprise_resolved.is_(None), closed),
        "rated": r.rating.is_not(None),
        "satisfied": r.rating.in_(sorted(SATISFIED)),
        "reopened": r.reopen_count > 0,
        "returned": r.return_count > 0,
        "overdue_now": r.overdue.is_(True),
        **{f"escalated_{level}": r.escalation_level >= level for level in escalation_levels},
    }


@dataclass(frozen=True)
class Located:
    """Where a group's 90th percentile of a fact lies in that fact's histogram: the bucket
    that holds rank ceil(0.9 n) of the group's n values, the rank within that bucket, and how
    many of the group's values the bucket holds (`size`)."""

    bucket: int
    rank: int
    size: int

    @property
    def from_top(self) -> bool:
        """Whether the rank lies nearer the bucket's largest value than its smallest."""
        return self.size - self.rank + 1 < self.rank

    @property
    def position(self) -> int:
        """The rank counted from the bucket's nearer end: from its largest value down when
        `from_top`, from its smallest up otherwise."""
        return self.size - self.rank + 1 if self.from_top else self.rank


@dataclass(frozen=True)
class Run:
    """One fact's bucket read in the order of its seconds from one end (`_nearest`): the
    located groups whose rank lies nearer that end share it."""

    fact: str
    bucket: int
    from_top: bool


def fact_bucket(fact: str) -> ColumnElement[int]:
    """The fact's histogram bucket of a request: its working seconds // `WIDTHS[fact]`,
    integer division on both databases. Any bucketing monotone in the seconds would do: the
    search needs only that every value of bucket b is below every value of bucket b + 1."""
    # (the width as a literal: a bind parameter would differ between SELECT and GROUP BY)
    width = literal_column(str(WIDTHS[fact]), Integer)
    return getattr(Request, TIMES[fact]) // width  # type: ignore[no-any-return]


def _mean(total: Any, n: Any, postgresql: bool) -> ColumnElement[Any]:
    """The mean from a sum and a count of integers, to the bit what `avg` gives: numeric
    division of the two on PostgreSQL (`avg(integer)` is `sum::numeric / count::numeric`),
    floating-point on SQLite (its `avg` divides the integer sum as a double)."""
    if postgresql:
        return cast(total, Numeric) / cast(func.nullif(n, 0), Numeric)
    return cast(total, Float) / func.nullif(n, 0)


def _covered(session: Session, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The clean folded months (`huying.reports.rollups`) that [start, end) holds whole, each
    as [its start, its end), in order."""
    m = report_months
    return [
        (a, b)
        for a, b in session.execute(
            select(m.c.starts_at, m.c.ends_at)
            .where(
                m.c.starts_at >= start,
                m.c.ends_at <= end,
                ~m.c.dirty,
                m.c.folded_at.is_not(None),
            )
            .order_by(m.c.starts_at)
        )
    ]


def _uncovered(
    start: datetime, end: datetime, covered: Sequence[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """[start, end) less the ordered, disjoint `covered` ranges within it: the ranges left."""
    left, at = [], start
    for a, b in covered:
        if a > at:
            left.append((at, a))
        at = max(at, b)
    if at < end:
        left.append((at, end))
    return left


def _rolled(
    group_by: GroupBy,
    grid_len: int,
    months: Sequence[datetime],
    scope: frozenset[str] | None,
    escalation_levels: Sequence[int],
) -> Select[*tuple[Any, ...]]:
    """The folded rows of `months` for `group_by` in the columns of pass one's fine groups
    (`_aggregated`): a group's counts (no bucket; the escalations counted from the row's
    level), or one bucket of a fact's histogram (its requests in `<fact>_n`, their seconds in
    `<fact>_sum`, every count 0)."""
    r = report_rollups
    key = func.substr(r.c.key, 1, grid_len) if group_by == "grid" else r.c.key
    escalated = {
        f"escalated_{level}": case((r.c.escalation_level >= level, r.c.received), else_=0)
        for level in escalation_levels
    }
    return select(
        key.label("key"),
        *[r.c[f"{fact}_bucket"] for fact in TIMES],
        r.c.received,
        *[
            escalated[name].label(name) if name in escalated else r.c[name]
            for name in conditions(Request, escalation_levels)
        ],
        *[r.c[f"{fact}_sum"] for fact in TIMES],
        *[r.c[f"{fact}_n"] for fact in TIMES],
    ).where(r.c.grouping == group_by, r.c.starts_at.in_(months), _in_scope(r.c.department, scope))


def _aggregated(
    session: Session,
    key: SQLColumnExpression[Any],
    in_span: ColumnElement[bool] | None,
    rolled: Select[*tuple[Any, ...]] | None,
    escalation_levels: Sequence[int],
    postgresql: bool,
) -> tuple[list[dict[str, Any]], dict[str, dict[Any, list[tuple[int, int]]]]]:
    """Pass one, one statement: one mapping per group (`key`, `received`, each count of
    `conditions` and `SUMS`, `<fact>_mean`, `<fact>_n`) and each fact's histogram, group →
    [(bucket, values in it)] by bucket; from one read of the requests `in_span` and the
    folded months' rows `rolled` (either may be None: none).

    The requests are grouped by the group key and both facts' buckets (a hash aggregate on
    plain keys, which PostgreSQL runs in its parallel workers and combines); the folded rows
    come as groups of the same columns (`_rolled`); all of them are then summed by group, and
    by group and bucket of each fact, in the same statement. Each row says which it is in
    `part`. Every request of a fine group with a bucket of a fact has that fact, so the
    group's `<fact>_n` (its `received`) counts its values: per request, only the tests of
    `conditions` and the two sums are left."""
    counted = {"received": func.count()} | {
        name: func.count().filter(condition)
        for name, condition in conditions(Request, escalation_levels).items()
    }
    branches: list[Select[*tuple[Any, ...]]] = []
    if in_span is not None:
        live: Select[*tuple[Any, ...]] = (
            select(
                key.label("key"),
                *[fact_bucket(fact).label(f"{fact}_bucket") for fact in TIMES],
                *[figure.label(name) for name, figure in counted.items()],
                *[
                    func.sum(getattr(Request, column)).label(f"{f}_sum")
                    for f, column in TIMES.items()
                ],
                # a fine group with a bucket of a fact: each of its requests has the fact
                *[func.count().label(f"{f}_n") for f in TIMES],
            )
            .where(in_span)
            .group_by(key, *[fact_bucket(fact) for fact in TIMES])
        )
        branches.append(live)
    if rolled is not None:
        branches.append(rolled)
    if not branches:
        return [], {fact: {} for fact in TIMES}
    fine = (branches[0] if len(branches) == 1 else union_all(*branches)).cte("fine")
    # How many of a group's requests have the fact: those of its fine groups with a bucket.
    n = {f: func.sum(fine.c[f"{f}_n"]).filter(fine.c[f"{f}_bucket"].is_not(None)) for f in TIMES}
    shape = [
        *["part", "key", "bucket", *counted, *SUMS],
        *[f"{f}_{x}" for f in TIMES for x in ("mean", "n")],
    ]

    def part(**figures: Any) -> Any:
        return select(*[figures.get(name, null()).label(name) for name in shape])

    by_group = part(
        part=literal("group"),
        key=fine.c.key,
        **{name: func.sum(fine.c[name]) for name in counted},
        **{
            name: reduce(operator.add, [func.sum(fine.c[p]) for p in parts])
            for name, parts in SUMS.items()
        },
        **{f"{f}_n": n[f] for f in TIMES},
        **{f"{f}_mean": _mean(func.sum(fine.c[f"{f}_sum"]), n[f], postgresql) for f in TIMES},
    ).group_by(fine.c.key)
    histograms = [
        part(
            part=literal(fact),
            key=fine.c.key,
            bucket=fine.c[f"{fact}_bucket"],
            **{f"{fact}_n": func.sum(fine.c[f"{fact}_n"])},
        )
        .where(fine.c[f"{fact}_bucket"].is_not(None))
        .group_by(fine.c.key, fine.c[f"{fact}_bucket"])
        for fact in TIMES
    ]
    groups: list[dict[str, Any]] = []
    found: dict[str, dict[Any, list[tuple[int, int]]]] = {fact: {} for fact in TIMES}
    for m in session.execute(union_all(by_group, *histograms)).mappings():
        if m["part"] == "group":
            groups.append({name: m[name] for name in shape[1:] if name != "bucket"})
        else:
            fact = m["part"]
            found[fact].setdefault(m["key"], []).append((int(m["bucket"]), int(m[f"{fact}_n"])))
    return groups, {
        fact: {k: sorted(h) for k, h in by_key.items()} for fact, by_key in found.items()
    }


def nearest_rank(n: int) -> int:
    """The rank of the 90th percentile among n values as `percentile_disc(0.9)` takes it:
    ceil(0.9 n) in floating point, as PostgreSQL computes it (the same as ceil(9n / 10) for
    every n below 3,000,000, checked)."""
    return max(1, math.ceil(P90 * n))


def locate(histogram: Sequence[tuple[int, int]]) -> Located:
    """Pass two, in Python: the bucket of a histogram (ascending (bucket, count) pairs, every
    count positive) that holds the nearest rank of all its values, the rank in it, and how
    many values it holds."""
    rank = nearest_rank(sum(n for _, n in histogram))
    below = 0
    for bucket, n in histogram:
        if below + n >= rank:
            return Located(bucket, rank - below, n)
        below += n
    raise AssertionError("the rank lies within the histogram's total")  # pragma: no cover


def _read_whole(
    session: Session,
    key: SQLColumnExpression[Any],
    in_span: ColumnElement[bool],
    located: dict[str, dict[Any, Located]],
) -> dict[str, dict[Any, int]]:
    """Pass three read whole, one statement: fact → group → the value at its located rank,
    read from the requests of each group's located bucket only.

    One read of the requests (`near`) keeps those whose bucket of either fact is a located
    one (any group's: a cheap test of one integer) and joins each fact's VALUES list of
    (group, bucket, rank) on equal columns, the null group spelled out as a flag so that the
    join stays a hash join; on PostgreSQL both run in the parallel workers. Then, for each
    fact, the rows of its located buckets are counted by value within their group and the
    value whose running count first reaches the located rank is kept."""
    facts = [fact for fact, by_key in located.items() if by_key]
    wanted = {
        fact: values(
            column("key", String),
            column("no_key", Boolean),
            column("bucket", Integer),
            column("rank", Integer),
            name=f"{fact}_wanted",
            literal_binds=True,
        )
        .data([(k or "", k is None, at.bucket, at.rank) for k, at in located[fact].items()])
        .cte(f"{fact}_wanted")
        for fact in facts
    }
    query = select(
        key.label("key"),
        *[getattr(Request, TIMES[fact]).label(fact) for fact in facts],
        *[wanted[fact].c.rank.label(f"{fact}_rank") for fact in facts],
    ).select_from(Request)
    for fact in facts:
        query = query.outerjoin(
            wanted[fact],
            and_(
                func.coalesce(key, "") == wanted[fact].c.key,
                key.is_(None) == wanted[fact].c.no_key,
                fact_bucket(fact) == wanted[fact].c.bucket,
            ),
        )
    buckets = {fact: sorted({at.bucket for at in located[fact].values()}) for fact in facts}
    # Read once. Inlined (one fact read whole: the CTE is referenced once), PostgreSQL took
    # the located list, filtered, for one row and read the period's requests again for each
    # of its rows: November by category read its 82,000 requests 16 times (1.46 s, not 70 ms).
    near = (
        query.where(in_span, or_(*[fact_bucket(f).in_(b) for f, b in buckets.items()]))
        .cte("near")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    branches = []
    for fact in facts:
        rank, value = near.c[f"{fact}_rank"], near.c[fact]
        # Equal values counted once (a deadline's limit makes many), then summed in order:
        # the value at the rank is the one whose running count first reaches it.
        counted = (
            select(near.c.key, value.label("value"), rank.label("rank"), func.count().label("n"))
            .where(rank.is_not(None))
            .group_by(near.c.key, value, rank)
            .subquery(f"{fact}_counted")
        )
        running = (
            select(
                counted,
                func.sum(counted.c.n)
                .over(partition_by=counted.c.key, order_by=counted.c.value)
                .label("upto"),
            )
        ).subquery(f"{fact}_running")
        branches.append(
            select(literal(fact).label("fact"), running.c.key, running.c.value).where(
                running.c.upto >= running.c.rank, running.c.upto - running.c.n < running.c.rank
            )
        )
    found: dict[str, dict[Any, int]] = {fact: {} for fact in facts}
    for fact, k, value in session.execute(union_all(*branches)):
        found[fact][k] = int(value)
    return found


def _limit(wanted: dict[Any, Located], total: int, received: int) -> int | None:
    """How many of a bucket's `total` requests (every group's) to read in order from its
    nearer end so that each `wanted` group likely meets its position among them; None when
    that is the whole bucket (a bucket of a short period: its index entries lie among every
    other period's, and reading the period whole costs less), or costs more than reading the
    `received` requests of the report whole.

    The groups' requests interleave in the order of their seconds, so a group with m of the
    total meets its p-th about p × total / m along, give or take √p × total / m: four times
    that, and a few over, cover the chance."""
    need = max(
        math.ceil((at.position + 4 * math.sqrt(at.position) + 4) * total / at.size)
        for at in wanted.values()
    )
    return _affordable(need, total, received) if need < total else None


def _affordable(limit: int, total: int, received: int) -> int | None:
    """`limit`, at most the bucket's `total`, if reading that many requests in order costs
    less than reading the `received` requests of the report whole; None otherwise."""
    limit = min(limit, total)
    return limit if limit * IN_ORDER_COST <= received else None


def _nearest(
    key: SQLColumnExpression[Any],
    in_span: ColumnElement[bool],
    run: Run,
    wanted: dict[Any, Located],
    limit: int,
) -> Any:
    """One branch of pass three read in order: (fact, group, value) for each `wanted` group
    whose position the first `limit` requests of the run's bucket reach.

    The bucket is a range of the fact's seconds (never negative), so the partial index on
    them and `created_at` reads it in order from the run's end, fetching the row of a
    request of the period only, for its group; the requests are numbered by group in that
    order, and the one at the group's position is its value. Equal values fall in any
    order: the value at a position is the same. Every figure is a bound parameter, so a
    statement of the same shape is compiled once."""
    seconds = getattr(Request, TIMES[run.fact])
    width = WIDTHS[run.fact]
    read = (
        select(key.label("key"), seconds.label("value"))
        .where(in_span, seconds >= run.bucket * width, seconds < (run.bucket + 1) * width)
        .order_by(seconds.desc() if run.from_top else seconds)
        .limit(limit)
        .subquery()
    )
    order = read.c.value.desc() if run.from_top else read.c.value
    numbered = select(
        read.c.key,
        read.c.value,
        func.row_number().over(partition_by=read.c.key, order_by=order).label("position"),
    ).subquery()
    at_position: list[ColumnElement[bool]] = [
        tuple_(numbered.c.key, numbered.c.position).in_(
            [(k, at.position) for k, at in wanted.items() if k is not None]
        )
    ]
    if None in wanted:
        at_position.append(
            and_(numbered.c.key.is_(None), numbered.c.position == wanted[None].position)
        )
    return select(literal(run.fact).label("fact"), numbered.c.key, numbered.c.value).where(
        or_(*at_position)
    )


def _runs(located: dict[str, dict[Any, Located]]) -> dict[Run, dict[Any, Located]]:
    """The located groups of each fact by the bucket they lie in and the end nearer them."""
    runs: dict[Run, dict[Any, Located]] = {}
    for fact, by_key in located.items():
        for k, at in by_key.items():
            runs.setdefault(Run(fact, at.bucket, at.from_top), {})[k] = at
    return runs


def _values_at(
    session: Session,
    key: SQLColumnExpression[Any],
    in_span: ColumnElement[bool],
    located: dict[str, dict[Any, Located]],
    totals: dict[str, dict[int, int]],
    received: int,
) -> dict[str, dict[Any, int]]:
    """Pass three: fact → group → the value at its located rank, from the requests of each
    group's located bucket (`totals`: how many of every group's requests each bucket of a
    fact holds; `received`: the report's requests).

    In order where that is cheap (`_limit`): the groups located in the same bucket of a fact
    and nearer the same end share a `Run`, every run a branch of one statement; a run that
    stopped before a group met its position is read again four times as far (at most whole),
    for those groups only. Whole otherwise (`_read_whole`), once for every group left."""
    whole: dict[str, dict[Any, Located]] = {fact: {} for fact in TIMES}
    pending: dict[Run, tuple[dict[Any, Located], int]] = {}
    for run, wanted in _runs(located).items():
        limit = _limit(wanted, totals[run.fact][run.bucket], received)
        if limit is None:
            whole[run.fact].update(wanted)
        else:
            pending[run] = (wanted, limit)
    found: dict[str, dict[Any, int]] = {fact: {} for fact in TIMES}
    while pending:
        branches = [_nearest(key, in_span, run, w, limit) for run, (w, limit) in pending.items()]
        for fact, k, value in session.execute(union_all(*branches)):
            found[fact][k] = int(value)
        short = {
            run: (missing, limit)
            for run, (wanted, limit) in pending.items()
            if (missing := {k: at for k, at in wanted.items() if k not in found[run.fact]})
        }
        pending = {}
        for run, (missing, limit) in short.items():
            total = totals[run.fact][run.bucket]
            if limit >= total:
                continue  # read whole and still short: the requests changed since pass one
            further = _affordable(limit * 4, total, received)
            if further is None:
                whole[run.fact].update(missing)
            else:
                pending[run] = (missing, further)
    if any(whole.values()):
        for fact, at_rank in _read_whole(session, key, in_span, whole).items():
            found[fact].update(at_rank)
    return found


def rates(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy,
    grid_len: int,
    escalation_levels: Sequence[int],
    scope: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """One mapping per group of the requests received in [start, end) and led by a department
    of `scope` (any, when None): `key`, `received`, a count per `conditions`, and
    `<fact>_mean`, `<fact>_p90` in working seconds per `TIMES`.

    Three passes, so that no statement sorts every request (see the module's docstring):
    the counts, the means and a histogram of each fact by group (`_aggregated`); the bucket
    of each group's nearest rank (`locate`); the value at that rank from those buckets'
    requests (`_values_at`), with how many of them each bucket holds (`totals`)."""
    in_span = and_(
        Request.created_at >= start,
        Request.created_at < end,
        _in_scope(Request.lead_department_code, scope),
    )
    key = group_key(group_by, grid_len)
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql:
        # A plan for this period: once psycopg has prepared the statement, PostgreSQL would
        # switch to a generic plan, which cannot know how much of the table the period holds.
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        # The aggregation's hash table (PostgreSQL cannot estimate how many buckets there
        # are, and with the default it sorted on disk instead), and no JIT: compiling the
        # aggregation's expressions cost more than it saved (2.6× the bare count, not 2.4×).
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL jit = off"))
    # The clean folded months the period holds whole are summed from their rows; the rest
    # of the period is read from the requests (all of it when none is folded, and by a grid
    # prefix longer than the folded one).
    folded = group_by != "grid" or grid_len <= FOLDED_GRID_LEN
    covered = _covered(session, start, end) if folded else []
    left = _uncovered(start, end, covered)
    in_left = (
        and_(
            or_(*[and_(Request.created_at >= a, Request.created_at < b) for a, b in left]),
            _in_scope(Request.lead_department_code, scope),
        )
        if left
        else None
    )
    months = [a for a, _ in covered]
    rolled = _rolled(group_by, grid_len, months, scope, escalation_levels) if months else None
    groups, histograms = _aggregated(session, key, in_left, rolled, escalation_levels, postgresql)
    located = {
        fact: {k: locate(h) for k, h in by_key.items()} for fact, by_key in histograms.items()
    }
    totals: dict[str, dict[int, int]] = {fact: {} for fact in TIMES}
    for fact, by_key in histograms.items():
        for histogram in by_key.values():
            for bucket, n in histogram:
                totals[fact][bucket] = totals[fact].get(bucket, 0) + n
    # A scope's requests are found by the lead department's index; read in order, every
    # department's would be fetched: a scoped report reads the buckets whole.
    received = 0 if scope is not None else sum(m["received"] for m in groups)
    p90 = _values_at(session, key, in_span, located, totals, received)
    for m in groups:
        for fact in TIMES:
            m[f"{fact}_p90"] = p90[fact].get(m["key"])
            del m[f"{fact}_n"]
    return groups


def returns_by_department(
    session: Session, *, start: datetime, end: datetime, scope: frozenset[str] | None = None
) -> dict[str, int]:
    """Department (of `scope`, any when None) → how many distinct requests received in
    [start, end) it returned."""
    received = RequestReturn.received_at
    rows = session.execute(
        select(RequestReturn.department_code, func.count(distinct(RequestReturn.request_id)))
        .where(received >= start, received < end, _in_scope(RequestReturn.department_code, scope))
        .group_by(RequestReturn.department_code)
    ).all()
    return {code: int(n) for code, n in rows}


def task_conditions() -> dict[str, ColumnElement[bool]]:
    """Each task count but `tasks` (every task not cancelled) as the condition a task meets.
    The README's table says the same in words."""
    t = RequestTask
    done = t.status == "done"
    # Its `task` deadline passed (the worker set missed_at at its due instant): the task can
    # no longer be replied to on time.
    missed = (
        select(Deadline.id)
        .where(Deadline.task_id == t.id, Deadline.kind == "task", Deadline.missed_at.is_not(None))
        .exists()
    )
    overdue_open = and_(t.status.in_(OPEN_TASK), missed)
    return {
        # 应答复: replied, or still open past its task deadline. One whose deadline is still
        # ahead is in neither the 协办按时率's numerator nor its denominator.
        "tasks_due": or_(done, overdue_open),
        "tasks_replied": done,
        "tasks_on_time": and_(done, t.on_time.is_(True)),
        "tasks_overdue_open": overdue_open,
    }


def tasks_by_department(
    session: Session, *, start: datetime, end: datetime, scope: frozenset[str] | None = None
) -> dict[str, dict[str, int]]:
    """Department (of `scope`, any when None) → its task counts: `tasks` and one per
    `task_conditions`, over its tasks, not cancelled, of the requests received in [start, end)
    (`received_at`, the request's `created_at`: no join with `requests`)."""
    t = RequestTask
    query = (
        select(
            t.department_code.label("key"),
            func.count().label("tasks"),
            *[func.count().filter(c).label(name) for name, c in task_conditions().items()],
        )
        .where(
            t.received_at >= start,
            t.received_at < end,
            t.status != "cancelled",
            _in_scope(t.department_code, scope),
        )
        .group_by(t.department_code)
    )
    return {
        m["key"]: {name: int(n) for name, n in m.items() if name != "key"}
        for m in session.execute(query).mappings()
    }


def names(session: Session, group_by: GroupBy) -> dict[str, str]:
    """Code → name of the departments, categories or chains; nothing for other groupings."""
    named: dict[str, Any] = {"department": Department, "category": Category, "chain": Chain}
    model = named.get(group_by)
    if model is None:
        return {}
    return {code: name for code, name in session.execute(select(model.code, model.name))}


# --- the console's trend -------------------------------------------------------------------


def created_between(
    session: Session,
    bounds: Sequence[tuple[datetime, datetime]],
    scope: frozenset[str] | None = None,
) -> list[int]:
    """How many requests (led by a department of `scope`, any when None) were created in each
    [lo, hi) of `bounds` (ascending, adjoining), in one pass over the whole period."""
    columns = [
        func.count(case((and_(Request.created_at >= lo, Request.created_at < hi), 1)))
        for lo, hi in bounds
    ]
    row = session.execute(
        select(*columns).where(
            Request.created_at >= bounds[0][0],
            Request.created_at < bounds[-1][1],
            _in_scope(Request.lead_department_code, scope),
        )
    ).one()
    return [int(v) for v in row]


# --- the per-request facts, back-filled ----------------------------------------------------


def ended_deadlines_span(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """The earliest start and the latest completion of the sign and reply deadlines that
    ended met or missed."""
    ended = and_(Deadline.kind.in_(("sign", "reply")), Deadline.status.in_(ENDED))
    lo, hi = conn.execute(
        select(func.min(Deadline.started_at), func.max(Deadline.completed_at)).where(ended)
    ).one()
    return lo, hi


def set_facts(conn: Connection, days: CTE, kind: str) -> None:
    """Set a request's facts of `kind` (sign or reply) from the first deadline of that kind
    that ended met or missed: on time or not, and the working seconds it took, with `days`
    the calendar's day table (`huying.reports.worktime`)."""
    on_time, seconds = {
        "sign": (Request.sign_on_time, Request.sign_working_seconds),
        "reply": (Request.first_reply_on_time, Request.first_reply_working_seconds),
    }[kind]
    finished = (Deadline.kind == kind, Deadline.status.in_(ENDED))
    first = (
        select(func.min(Deadline.id))
        .where(*finished, Deadline.completed_at.is_not(None))
        .group_by(Deadline.request_id)
    )
    a, b = days.alias("w_start"), days.alias("w_end")
    working = worktime.working_seconds_sql(b, Deadline.completed_at) - worktime.working_seconds_sql(
        a, Deadline.started_at
    )
    ended_here = (
        select(
            Deadline.request_id.label("request_id"),
            (Deadline.status == "met").label("on_time"),
            worktime.floor_int(working + 0.5).label("seconds"),  # halves up, to the second
        )
        .join(a, a.c.day == worktime.day_of(Deadline.started_at))
        .join(b, b.c.day == worktime.day_of(Deadline.completed_at))
        .where(Deadline.id.in_(first))
        .subquery("ended")
    )
    values: dict[Any, Any] = {on_time: ended_here.c.on_time, seconds: ended_here.c.seconds}
    conn.execute(update(Request).where(Request.id == ended_here.c.request_id).values(values))


def facts_set(conn: Connection) -> int:
    """How many facts of requests are set: signings plus first replies."""
    # (not the UPDATEs' row counts: SQLite reports none for a statement that begins WITH)
    signed = func.count(Request.sign_on_time)
    return int(conn.execute(select(signed + func.count(Request.first_reply_on_time))).scalar_one())
