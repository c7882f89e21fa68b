"""The rates' 90th percentiles (`huying.reports.repository.rates`: a histogram, the bucket
that holds the rank, the value at the rank in that bucket) against the definition of
`percentile_disc(0.9)`: sort a group's values, take the one at rank ceil(0.9 n).

The data is generated from a seed: hundreds of requests with values on and around the edges
of the histogram's buckets, many ties, missing values, groups of every size from one value to
a hundred, and a group with no key; the report is compared group by group and grouping by
grouping, on whichever database the suite runs on. Those buckets are small, so the values are
read from them whole; a bucket read in order from its nearer end, and read again further when
a group's requests lie behind another's, is checked on data of its own."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from huying.reports import repository
from huying.requests.models import Request
from huying.runtime import Runtime
from tests.conftest import World, submit_body
from tests.reports.conftest import API

LEVELS = [1, 2, 3]
DEPARTMENTS = ["GXJ", "RSJ", "STREET", "DIST", None]
# (grouping, the column it reads) for the groupings a clone can vary
GROUPINGS = {"department": "lead_department_code", "urgency": "urgency", "chain": "chain_code"}


def percentile_disc(values: list[int]) -> int | None:
    """The definition: the value at rank ceil(0.9 n) of the n values in ascending order."""
    if not values:
        return None
    return sorted(values)[math.ceil(0.9 * len(values)) - 1]


def edge_value(rng: random.Random, fact: str) -> int | None:
    """A value on or beside a bucket's edge, a tie with many others, or none."""
    width = repository.WIDTHS[fact]
    roll = rng.random()
    if roll < 0.1:
        return None
    if roll < 0.35:
        return rng.choice([0, width, 3 * width, 7 * width])  # the same few values: ties
    bucket = rng.randrange(0, 12)
    return max(0, bucket * width + rng.choice([-1, 0, 1, width - 1, width // 2]))


def copies(rt: Runtime, client: TestClient, world: World, changes: list[dict[str, Any]]) -> None:
    """Requests copied from one submitted request, each with its `changes` (lead department,
    facts, …) and received within the hour after it."""
    r = client.post(f"{API}/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    table = Request.__table__
    with rt.transaction() as s:
        base = dict(s.execute(select(table).where(table.c.id == r.json()["id"])).mappings().one())
        unique = ("number", "receipt_token", "external_id", "idempotency_key", "idempotency_scope")
        blank = {k: None for k in (*unique, "idempotency_hash")}
        rows = [
            {k: v for k, v in base.items() if k != "id"}
            | blank
            | {"created_at": base["created_at"] + timedelta(seconds=i % 3600)}
            | change
            for i, change in enumerate(changes)
        ]
        s.execute(insert(Request), rows)


def clone_requests(rt: Runtime, client: TestClient, world: World, seed: int) -> list[Any]:
    """Requests copied from one submitted request, each with a lead department, urgency and
    chain and the two facts drawn from `seed`; every request is returned as a row mapping."""
    rng = random.Random(seed)
    changes = [
        {
            "lead_department_code": department,
            "urgency": rng.choice(["normal", "urgent"]),
            "chain_code": rng.choice(["display", None]),
            "sign_working_seconds": edge_value(rng, "sign"),
            "first_reply_working_seconds": edge_value(rng, "reply"),
        }
        # groups of very different sizes: one value, a few, about a hundred
        for department, size in zip(DEPARTMENTS, rng.sample([1, 3, 10, 41, 97], 5), strict=True)
        for _ in range(size)
    ]
    copies(rt, client, world, changes)
    with rt.transaction() as s:
        return list(s.execute(select(Request.__table__)).mappings())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_p90_of_every_group_is_percentile_disc(
    rt: Runtime, client: TestClient, world: World, seed: int
) -> None:
    rows = clone_requests(rt, client, world, seed)
    start = min(r["created_at"] for r in rows)
    end = max(r["created_at"] for r in rows) + timedelta(seconds=1)
    for group_by, column in GROUPINGS.items():
        expected: dict[Any, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        for r in rows:
            for fact, name in repository.TIMES.items():
                if r[name] is not None:
                    expected[r[column]][fact].append(r[name])
        with rt.transaction() as s:
            got = repository.rates(
                s,
                start=start,
                end=end,
                group_by=group_by,  # type: ignore[arg-type]
                grid_len=9,
                escalation_levels=LEVELS,
            )
        assert {m["key"] for m in got} == {r[column] for r in rows}
        for m in got:
            received = [r for r in rows if r[column] == m["key"]]
            assert m["received"] == len(received), (group_by, m["key"])
            for fact in repository.TIMES:
                values = expected[m["key"]][fact]
                assert m[f"{fact}_p90"] == percentile_disc(values), (group_by, m["key"], fact)
                if values:
                    assert float(m[f"{fact}_mean"]) == pytest.approx(sum(values) / len(values))
                else:
                    assert m[f"{fact}_mean"] is None


def test_a_bucket_read_in_order_and_further_gives_percentile_disc(
    rt: Runtime, client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hundreds of requests in the first sign bucket: GXJ's in its upper half, RSJ's in its
    lower half, behind all of GXJ's when read from the top; STREET's mostly in the bucket
    below its 90th percentile, so that its rank lies near the bottom of the next one; the
    requests of no department all of one value. Reading in order is made as cheap as
    reading whole, and reading whole fails: every value comes from the ordered reads."""
    width = repository.WIDTHS["sign"]
    rng = random.Random(7)
    values = {
        "GXJ": [rng.randrange(width // 2, width) for _ in range(200)],
        "RSJ": [rng.randrange(0, width // 2) for _ in range(200)],
        "STREET": [rng.randrange(0, width) for _ in range(170)]
        + [width + rng.randrange(0, 60) for _ in range(30)],
        None: [width // 3] * 50,
    }
    changes = [
        {"lead_department_code": department, "sign_working_seconds": seconds}
        for department, seconds_of in values.items()
        for seconds in seconds_of
    ]
    copies(rt, client, world, changes)
    monkeypatch.setattr(repository, "IN_ORDER_COST", 1)

    def whole(*args: Any) -> None:
        raise AssertionError("read whole")

    monkeypatch.setattr(repository, "_read_whole", whole)
    with rt.transaction() as s:
        start = s.execute(select(func.min(Request.created_at))).scalar_one()
        got = repository.rates(
            s,
            start=start,
            end=start + timedelta(hours=2),
            group_by="department",
            grid_len=9,
            escalation_levels=LEVELS,
        )
    p90 = {m["key"]: m["sign_p90"] for m in got}
    assert p90 == {k: percentile_disc(v) for k, v in values.items()}


@pytest.mark.parametrize(
    ("histogram", "located"),
    [
        ([(5, 10)], (5, 9, 10)),  # one bucket: rank ceil(9.0) = 9 in it
        ([(0, 9), (1, 1)], (0, 9, 9)),  # the rank is the last value of the first bucket
        ([(0, 8), (1, 2)], (1, 1, 2)),  # ... the first of the next
        ([(2, 1)], (2, 1, 1)),  # a single value
        ([(0, 1), (3, 1), (4, 9)], (4, 8, 9)),  # n = 11: rank 10, 2 below bucket 4
    ],
)
def test_locate_finds_the_bucket_of_the_rank(
    histogram: list[tuple[int, int]], located: tuple[int, int, int]
) -> None:
    assert repository.locate(histogram) == repository.Located(*located)


@pytest.mark.parametrize(
    ("rank", "size", "from_top", "position"),
    [(9, 10, True, 2), (2, 10, False, 2), (5, 10, False, 5), (6, 10, True, 5), (1, 1, False, 1)],
)
def test_a_rank_is_read_from_the_nearer_end_of_its_bucket(
    rank: int, size: int, from_top: bool, position: int
) -> None:
    at = repository.Located(0, rank, size)
    assert (at.from_top, at.position) == (from_top, position)


def test_the_rank_is_ceil_of_nine_tenths() -> None:
    assert [repository.nearest_rank(n) for n in (1, 9, 10, 11, 19, 20, 21)] == [
        1,
        9,
        9,
        10,
        18,
        18,
        19,
    ]
