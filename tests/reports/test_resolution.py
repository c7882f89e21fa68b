"""What the response and resolution rates divide: only sign deadlines that are due or done,
and the enterprise's answer to 是否解决 where it gave one, the department's claim otherwise.

Every request here goes to GXJ (POWER, enterprise A): sign by the end of the next working day
(1 working day), on the calendar of tests/reports/conftest.py (09:00-12:00, 13:30-17:30). The clock starts
on Wednesday 18 November 2026, 10:00 in Shanghai.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from huying.clock import FrozenClock
from huying.requests.firing import fire_due
from huying.runtime import Runtime
from tests.conftest import World, submit_body
from tests.reports.conftest import API, at


@pytest.fixture
def gxj_row(client: TestClient, world: World) -> Any:
    """GXJ's row of November's report, as the supervisor downloads it."""

    def get() -> dict[str, Any]:
        rows = client.get(
            f"{API}/reports/rates", params={"month": "2026-11"}, headers=world.h("supervisor")
        ).json()["rows"]
        [row] = [r for r in rows if r["key"] == "GXJ"]
        result: dict[str, Any] = row
        return result

    return get


def submit(client: TestClient, world: World) -> int:
    r = client.post(f"{API}/requests", json=submit_body(), headers=world.h("integration"))
    assert r.status_code == 201, r.text
    rid: int = r.json()["id"]
    return rid


def act(client: TestClient, world: World, who: str, rid: int, action: str, **body: Any) -> None:
    r = client.post(f"{API}/requests/{rid}/actions/{action}", json=body, headers=world.h(who))
    assert r.status_code == 200, r.text


def test_a_sign_deadline_still_ahead_is_in_neither_part_of_the_response_rate(
    client: TestClient, world: World, rt: Runtime, clock: FrozenClock, gxj_row: Any
) -> None:
    """Three requests: one signed on time, two left unsigned. While the sign deadlines of the
    two are ahead, the rate is 1/1, not 1/3; once one of them has passed (the other one was
    received later), that one counts as due and not signed on time: 1/2."""
    clock.set(at("2026-11-18T10:00:00+08:00"))
    signed = submit(client, world)
    early = submit(client, world)  # sign due Thursday 19th 17:30
    act(client, world, "gxj", signed, "sign")
    clock.set(at("2026-11-19T09:00:00+08:00"))
    submit(client, world)  # sign due Friday 20th 17:30

    row = gxj_row()
    assert (row["dispatched"], row["sign_due"], row["signed_on_time"]) == (3, 1, 1)
    assert row["response_rate"] == 1.0

    clock.set(at("2026-11-19T17:30:00+08:00"))  # the early one's sign deadline is due
    fire_due(rt, now=clock.now())
    row = gxj_row()
    assert (row["dispatched"], row["sign_due"], row["signed_on_time"]) == (3, 2, 1)
    assert row["response_rate"] == 0.5

    act(client, world, "gxj", early, "sign")  # late: still due, still not on time
    row = gxj_row()
    assert (row["sign_due"], row["signed"], row["signed_on_time"]) == (2, 2, 1)
    assert row["response_rate"] == 0.5


def replied_and_rated(
    client: TestClient, world: World, *, claim: bool, who: str, answer: bool | None
) -> None:
    """A request signed, replied with the department's `claim`, then rated satisfied by
    `who`, with the enterprise's `answer` to 是否解决 when there is one."""
    rid = submit(client, world)
    act(client, world, "gxj", rid, "sign")
    act(client, world, "gxj", rid, "reply", content="已答复", resolved=claim)
    rating: dict[str, Any] = {"rating": "satisfied"}
    if answer is not None:
        rating["resolved"] = answer
    act(client, world, who, rid, "rate", **rating)


def test_the_enterprise_answer_outweighs_the_department_claim(
    client: TestClient, world: World, gxj_row: Any
) -> None:
    # the department said no, the enterprise says it was resolved: resolved, confirmed
    replied_and_rated(client, world, claim=False, who="integration", answer=True)
    row = gxj_row()
    assert (row["closed"], row["resolved"], row["resolved_confirmed"]) == (1, 1, 1)
    assert (row["resolved_claimed"], row["resolution_rate"]) == (0, 1.0)

    # the department said yes, the enterprise says no: not resolved
    replied_and_rated(client, world, claim=True, who="integration", answer=False)
    row = gxj_row()
    assert (row["closed"], row["resolved"], row["resolved_confirmed"]) == (2, 1, 1)
    assert (row["resolved_claimed"], row["resolution_rate"]) == (0, 0.5)


def test_without_the_enterprise_answer_the_department_claim_counts(
    client: TestClient, world: World, gxj_row: Any
) -> None:
    """Staff record a phone follow-up without 是否解决: the department's claim stands, and
    the report says it is a claim."""
    replied_and_rated(client, world, claim=True, who="dispatcher", answer=None)
    replied_and_rated(client, world, claim=False, who="dispatcher", answer=None)
    row = gxj_row()
    assert (row["closed"], row["resolved"]) == (2, 1)
    assert (row["resolved_confirmed"], row["resolved_claimed"]) == (0, 1)
    assert row["resolution_rate"] == 0.5
