"""Many hands at once (DESIGN.md part two, issue 12): two co-departments replying to their
tasks at the same moment, and a reassignment in flight while a task reply arrives, leave a
consistent request. Every task ends done or cancelled, no committed action is lost, the
request's version moves once per committed action, and a loser gets 409 changed_meanwhile
(after which it retries, and applies or is refused for what it now finds).

Two kinds of test:
- interleavings made exact with service calls on separate sessions: one reads the request,
  another action commits, then the first writes. PostgreSQL only: SQLite has one
  connection, so a second session waits for the first to end (tests/conftest.py).
- races of parallel API calls, as tests/requests/test_concurrency.py runs them, repeated. On
  SQLite they serialize (each order is still a consistent request); on PostgreSQL they overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huying.auth.service import Principal
from huying.errors import ChangedMeanwhile, Forbidden
from huying.requests import service
from huying.runtime import Runtime
from tests.conftest import PG_URL, World
from tests.requests.many_hands import (
    dispatched,
    events,
    get,
    post,
    submitted,
    task_of,
    tasks,
)

needs_postgresql = pytest.mark.skipif(
    not PG_URL, reason="needs PostgreSQL: set HUYING_TEST_DATABASE_URL (.ci/run does)"
)
STREET = Principal("key:street", "department", "STREET", "萝岗街道")
RSJ = Principal("key:rsj", "department", "RSJ", "区人社局")
DISPATCHER = Principal("key:dispatch", "dispatcher", None, "区派单中心")
REASSIGN = {"lead_department": "RSJ", "co_departments": [], "reason": "改由人社局牵头"}
ROUNDS = 5


def consistent(req: dict[str, Any], version_before: int, committed: int) -> None:
    """What every outcome must leave: the version moved once per committed action, one
    timeline row each, in sequence, and no task or task deadline left half done."""
    assert req["version"] == version_before + committed, (req["version"], committed)
    seqs = [t["seq"] for t in req["timeline"]]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    for task in req["tasks"]:
        status, deadline = task["status"], task["deadline"]
        if status == "done":
            assert task["reply"] and task["replied_at"], task
            assert deadline["status"] in ("met", "missed") and deadline["completed_at"], task
        elif status == "cancelled":
            assert task["reply"] is None and task["replied_at"] is None, task
            assert deadline["status"] == "cancelled" and deadline["completed_at"], task
        else:
            assert status in ("pending", "signed"), task
            assert deadline["completed_at"] is None, task


# --- exact interleavings, on separate sessions ------------------------------------------------


def act_in(
    session: Session, rt: Runtime, who: Principal, rid: int, action: str, **body: Any
) -> None:
    service.act(
        rt=rt,
        session=session,
        principal=who,
        request_id=rid,
        action=action,
        body=body,
        if_match=None,
    )


def act_now(rt: Runtime, who: Principal, rid: int, action: str, **body: Any) -> None:
    """An action in a transaction of its own, committed."""
    with rt.transaction() as s:
        act_in(s, rt, who, rid, action, **body)


def read_then(
    rt: Runtime, who: Principal, rid: int, meanwhile: Callable[[], None], action: str, **body: Any
) -> None:
    """`who` reads the request, `meanwhile` commits, then `who` takes `action` on what it
    read (its transaction is rolled back with whatever the action raises)."""
    with rt.sessions() as s, s.begin():
        # held: the session's identity map keeps only what is referenced
        read = service.visible(session=s, principal=who, request_id=rid)
        meanwhile()
        act_in(s, rt, who, rid, action, **body)
        assert read.id == rid


@needs_postgresql
def test_a_task_reply_read_before_another_s_reply_committed_loses_then_applies(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = dispatched(client, world, "GXJ", ["STREET", "RSJ"])
    rid, v0 = req["id"], req["version"]
    street, rsj = task_of(req, "STREET")["id"], task_of(req, "RSJ")["id"]

    def street_replies() -> None:
        act_now(rt, STREET, rid, "task_reply", task_id=street, content="街道意见")

    with pytest.raises(ChangedMeanwhile):
        read_then(rt, RSJ, rid, street_replies, "task_reply", task_id=rsj, content="人社意见")
    act_now(rt, RSJ, rid, "task_reply", task_id=rsj, content="人社意见")  # the retry applies

    after = get(client, world, rid)
    assert tasks(after) == [("STREET", "assist", "done"), ("RSJ", "assist", "done")]
    assert [t["reply"] for t in after["tasks"]] == ["街道意见", "人社意见"]
    consistent(after, v0, committed=2)
    assert len(events(rt, rid, "request.task_replied")) == 2


@needs_postgresql
def test_a_task_reply_read_before_a_reassignment_committed_loses_and_finds_its_task_ended(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = submitted(client, world)  # GXJ leads, STREET assists
    rid, v0, street = req["id"], req["version"], task_of(req, "STREET")["id"]

    def reassigned() -> None:
        act_now(rt, DISPATCHER, rid, "reassign", **REASSIGN)

    with pytest.raises(ChangedMeanwhile):
        read_then(rt, STREET, rid, reassigned, "task_reply", task_id=street, content="街道意见")
    with pytest.raises(Forbidden):  # the retry: its task ended with the old assignment
        act_now(rt, STREET, rid, "task_reply", task_id=street, content="街道意见")

    after = get(client, world, rid)
    assert after["lead_department"]["code"] == "RSJ"
    assert tasks(after) == [("STREET", "assist", "cancelled")]
    consistent(after, v0, committed=1)
    assert events(rt, rid, "request.task_replied") == []


@needs_postgresql
def test_a_reassignment_read_before_a_task_reply_committed_loses_then_applies(
    client: TestClient, world: World, rt: Runtime
) -> None:
    req = submitted(client, world)
    rid, v0, street = req["id"], req["version"], task_of(req, "STREET")["id"]

    def street_replies() -> None:
        act_now(rt, STREET, rid, "task_reply", task_id=street, content="街道意见")

    with pytest.raises(ChangedMeanwhile):
        read_then(rt, DISPATCHER, rid, street_replies, "reassign", **REASSIGN)
    act_now(rt, DISPATCHER, rid, "reassign", **REASSIGN)

    after = get(client, world, rid)
    assert after["lead_department"]["code"] == "RSJ"
    # the reply was not lost: the reassignment ended only what was still open
    assert tasks(after) == [("STREET", "assist", "done")]
    assert after["tasks"][0]["reply"] == "街道意见"
    consistent(after, v0, committed=2)


# --- races of parallel API calls ---------------------------------------------------------------


def settle(call: Callable[[], Any]) -> list[tuple[int, str | None]]:
    """Call until the answer is anything but 409 changed_meanwhile (a loser retries, as a
    client told to reload would); every answer's (status, code)."""
    answers: list[tuple[int, str | None]] = []
    for _ in range(10):
        r = call()
        code = r.json().get("code") if r.status_code >= 400 else None
        answers.append((r.status_code, code))
        if (r.status_code, code) != (409, "changed_meanwhile"):
            break
    return answers


def race(*calls: Callable[[], Any]) -> list[list[tuple[int, str | None]]]:
    """Start every call at once (each settling on its own thread); their answers, in order."""
    barrier = threading.Barrier(len(calls))
    answers: list[list[tuple[int, str | None]]] = [[] for _ in calls]

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = settle(calls[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return answers


def lost_only_to_a_concurrent_change(answers: list[tuple[int, str | None]]) -> None:
    assert all(a == (409, "changed_meanwhile") for a in answers[:-1]), answers


def replies_at_once(client: TestClient, world: World, req: dict[str, Any]) -> Any:
    """STREET and RSJ reply to their tasks of `req` at once; their answers."""

    def reply(who: str, department: str) -> Callable[[], Any]:
        task_id = task_of(req, department)["id"]
        return lambda: post(
            client, world, who, req["id"], "task_reply", task_id=task_id, content=f"{who}意见"
        )

    return race(reply("street", "STREET"), reply("rsj", "RSJ"))


def reply_and_reassign_at_once(client: TestClient, world: World, req: dict[str, Any]) -> Any:
    """STREET replies to its task of `req` while the dispatcher reassigns it; their answers."""
    rid, street = req["id"], task_of(req, "STREET")["id"]
    return race(
        lambda: post(
            client, world, "street", rid, "task_reply", task_id=street, content="街道意见"
        ),
        lambda: post(client, world, "dispatcher", rid, "reassign", **REASSIGN),
    )


def test_parallel_task_replies_from_two_co_departments_both_apply(
    client: TestClient, world: World, rt: Runtime
) -> None:
    for n in range(ROUNDS):
        req = dispatched(client, world, "GXJ", ["STREET", "RSJ"], title=f"并发协办{n}")
        rid, v0 = req["id"], req["version"]
        answers = replies_at_once(client, world, req)
        for mine in answers:
            lost_only_to_a_concurrent_change(mine)
            assert mine[-1] == (200, None), answers
        after = get(client, world, rid)
        assert tasks(after) == [("STREET", "assist", "done"), ("RSJ", "assist", "done")]
        assert [t["reply"] for t in after["tasks"]] == ["street意见", "rsj意见"]
        consistent(after, v0, committed=2)
        assert len(events(rt, rid, "request.task_replied")) == 2


def test_a_reassignment_racing_a_task_reply_leaves_a_consistent_request(
    client: TestClient, world: World, rt: Runtime
) -> None:
    for n in range(ROUNDS):
        req = submitted(client, world, title=f"并发改派{n}")
        rid, v0 = req["id"], req["version"]
        replied, reassigned = reply_and_reassign_at_once(client, world, req)
        lost_only_to_a_concurrent_change(replied)
        lost_only_to_a_concurrent_change(reassigned)
        assert reassigned[-1] == (200, None), reassigned
        after = get(client, world, rid)
        assert after["lead_department"]["code"] == "RSJ"
        actions = [t["action"] for t in after["timeline"]]
        if replied[-1] == (200, None):  # the reply came first: the reassignment keeps it
            assert tasks(after) == [("STREET", "assist", "done")]
            assert actions[-2:] == ["task_reply", "reassign"]
            consistent(after, v0, committed=2)
        else:  # the reassignment came first: the task had ended, the reply is refused
            assert replied[-1] == (403, "forbidden"), replied
            assert tasks(after) == [("STREET", "assist", "cancelled")]
            assert "task_reply" not in actions
            consistent(after, v0, committed=1)
