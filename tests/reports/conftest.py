"""A month of requests built through the API whose every figure is worked out by hand in
test_rates.py (`client` is the app as `create_app` builds it, reports included); and a month of
tasks (协办, 下派) under a street with two communities, for test_tasks.py and test_scope.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from huying.auth.service import create_key
from huying.clock import FrozenClock
from huying.deadlines.models import Deadline
from huying.requests.firing import fire_due
from huying.requests.models import Request, RequestTask
from huying.runtime import Runtime
from tests.conftest import USCC_A, USCC_B, World, submit_body

API = "/api/v1"
USCC_C = "91440112MA9UQ1234W"  # chain laser, grid 440112013002001
USCC_D = "91440112MA9UQ56781"  # no chain, grid 440112014001001


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class Scenario:
    client: TestClient
    world: World
    rt: Runtime
    clock: FrozenClock
    ids: dict[str, int] = field(default_factory=dict)

    def step(self, when: str) -> None:
        """Move the clock and let the worker catch up, as a worker that keeps up would."""
        self.clock.set(at(when))
        fire_due(self.rt, now=self.clock.now())

    def submit(self, name: str, **body: Any) -> None:
        r = self.client.post(
            f"{API}/requests", json=submit_body(**body), headers=self.world.h("integration")
        )
        assert r.status_code == 201, r.text
        self.ids[name] = r.json()["id"]

    def act(self, who: str, name: str, action: str, **body: Any) -> dict[str, Any]:
        r = self.client.post(
            f"{API}/requests/{self.ids[name]}/actions/{action}",
            json=body,
            headers=self.world.h(who),
        )
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def get(self, name: str) -> dict[str, Any]:
        r = self.client.get(f"{API}/requests/{self.ids[name]}", headers=self.world.h("admin"))
        result: dict[str, Any] = r.json()
        return result

    def report(self, **params: Any) -> Any:
        r = self.client.get(
            f"{API}/reports/rates", params=params, headers=self.world.h("supervisor")
        )
        assert r.status_code == 200, r.text
        return r


def build(client: TestClient, world: World, rt: Runtime, clock: FrozenClock) -> Scenario:
    """November 2026 (Asia/Shanghai), working hours 09:00-12:00 and 13:30-17:30, no holidays
    that month. Times below are local. Limits: sign 1 working day, reply 5 working days,
    feedback 3 working days, dispatch 2 working hours; the ladder: level 1 at the due instant,
    2 one working day later, 3 three working days later. Every action below comes through the
    API; `step` moves the clock and fires what is due. The enterprise answers 是否解决 with
    each rating through the integration; R2's rating is a phone follow-up that staff record
    without that answer.

    Enterprises: A (chain display, grid 440112012…), B (display, 440112013…),
    C (laser, 440112013…), D (no chain, 440112014…).
    """
    sc = Scenario(client, world, rt, clock)
    admin = world.h("admin")
    assert (
        client.post(f"{API}/chains", json={"code": "laser", "name": "激光"}, headers=admin)
    ).status_code == 201
    for uscc, name, chain, grid in (
        (USCC_C, "华工激光", "laser", "440112013002001"),
        (USCC_D, "个体经营部", None, "440112014001001"),
    ):
        r = client.post(
            f"{API}/enterprises",
            json={"uscc": uscc, "name": name, "chain": chain, "grid_code": grid},
            headers=admin,
        )
        assert r.status_code == 201, r.text

    # Outside November: R9 received on 30 October (a whole life at once), R10 on
    # 1 December 00:00 exactly (the end of November is excluded).
    sc.clock.set(at("2026-10-30T10:00:00+08:00"))
    sc.submit("R9")
    sc.act("gxj", "R9", "sign")
    sc.act("gxj", "R9", "reply", content="已办", resolved=True)
    sc.act("integration", "R9", "rate", rating="very_satisfied", resolved=True)
    sc.clock.set(at("2026-12-01T00:00:00+08:00"))
    sc.submit("R10", category="OTHER")
    # R11: 1 November 00:00 exactly (included); no rule routes OTHER; rejected at once.
    sc.clock.set(at("2026-11-01T00:00:00+08:00"))
    sc.submit("R11", category="OTHER")
    sc.act("dispatcher", "R11", "reject", reason="不属于企业诉求")

    # Wednesday 18 November
    sc.step("2026-11-18T10:00:00+08:00")
    for name in ("R1", "R2", "R5"):
        sc.submit(name)  # POWER, enterprise A → GXJ; sign due Thu 19th 17:30
    sc.submit("R3", enterprise_uscc=USCC_B)  # → GXJ, which returns it
    sc.submit("R4", enterprise_uscc=USCC_D)  # → GXJ
    sc.submit("R6", category="HIRE", enterprise_uscc=USCC_C)  # → RSJ; never signed
    sc.submit("R8", category="OTHER", enterprise_uscc=USCC_B)  # → the dispatchers' queue
    sc.step("2026-11-18T10:30:00+08:00")
    for name in ("R1", "R4", "R5"):
        sc.act("gxj", name, "sign")  # 0.5 working hours after dispatch
    sc.act("gxj", "R3", "return", reason="非本部门职责")  # to the dispatchers' review
    sc.act("dispatcher", "R3", "accept_return")  # back to the dispatch queue
    sc.act("dispatcher", "R8", "dispatch", lead_department="STREET")
    sc.step("2026-11-18T11:00:00+08:00")
    sc.act("dispatcher", "R3", "dispatch", lead_department="RSJ")
    sc.step("2026-11-18T11:30:00+08:00")
    sc.act("rsj", "R3", "sign")  # 0.5 h after its dispatch to RSJ
    sc.act("street", "R8", "sign")  # 1 h after its dispatch

    # Thursday 19th
    sc.step("2026-11-19T10:00:00+08:00")
    sc.act("gxj", "R1", "reply", content="已协调", resolved=True)  # 6.5 h after signing
    sc.act("gxj", "R4", "reply", content="无法解决", resolved=False)  # 6.5 h
    sc.step("2026-11-19T11:00:00+08:00")
    sc.act("integration", "R1", "rate", rating="very_satisfied", resolved=True)
    sc.step("2026-11-19T15:30:00+08:00")
    sc.act("gxj", "R5", "reply", content="已协调", resolved=True)  # 10.5 h
    sc.step("2026-11-19T17:30:00+08:00")  # R2 and R6: sign overdue, level 1

    # Friday 20th
    sc.step("2026-11-20T09:30:00+08:00")
    sc.act("gxj", "R2", "sign")  # late: 13.5 working hours after dispatch
    sc.step("2026-11-20T10:00:00+08:00")
    sc.act("integration", "R5", "rate", rating="dissatisfied", resolved=False)  # reopened

    # Monday 23rd: R6 reached level 2 on Friday 17:30
    sc.step("2026-11-23T10:00:00+08:00")
    sc.act("gxj", "R2", "reply", content="已协调", resolved=True)  # 7.5 h after signing
    sc.act("street", "R8", "reply", content="已答复", resolved=False)  # 19.5 h
    sc.step("2026-11-23T11:00:00+08:00")
    # a phone follow-up recorded by staff: the enterprise gave no answer to 是否解决
    sc.act("dispatcher", "R2", "rate", rating="satisfied")
    sc.step("2026-11-23T15:00:00+08:00")
    sc.act("gxj", "R5", "reply", content="已重新办理", resolved=True)
    sc.step("2026-11-23T16:00:00+08:00")
    sc.act("integration", "R5", "rate", rating="basically_satisfied", resolved=True)

    # Wednesday 25th 17:30: R6 level 3 (Tue 17:30), R4 auto-closed (its feedback deadline
    # was Tue 17:30), R3's reply overdue (due Wed 17:30), level 1.
    sc.step("2026-11-25T17:30:00+08:00")
    # Thursday 26th
    sc.step("2026-11-26T10:00:00+08:00")
    sc.act("rsj", "R3", "reply", content="已办结", resolved=True)  # late: 40.5 h
    sc.step("2026-11-26T11:00:00+08:00")
    sc.act("integration", "R3", "rate", rating="satisfied", resolved=True)
    sc.step("2026-11-26T12:00:00+08:00")  # now; R8's feedback is due at 17:30, not yet
    return sc


@pytest.fixture
def scenario(client: TestClient, world: World, rt: Runtime, clock: FrozenClock) -> Scenario:
    return build(client, world, rt, clock)


# --- tasks ---------------------------------------------------------------------------------

RECEIVED = "2026-11-18T10:00:00+08:00"  # every November request of the tasks' month (a Wed)
# A task deadline of 3 working days: from a Wednesday or a Friday 10:00 (Q0, 30 October),
# five days on, over the weekend. A task replied on time: a day after it started; late: a
# day after its deadline passed.
TASK_LIMIT = timedelta(days=5)
COMMUNITIES = (("C1", "联和社区"), ("C2", "水西社区"))  # under STREET


@dataclass(frozen=True)
class TaskSpec:
    """A task as the lead's actions leave it: `deadline` is its task deadline's status
    (running, met, missed, cancelled); `missed` whether the worker marked it missed."""

    request: str
    department: str
    kind: str
    status: str
    on_time: bool | None = None
    deadline: str = "running"
    missed: bool = False


# The tasks of the month (see test_tasks.py for what each one shows).
TASKS = (
    TaskSpec("Q1", "C1", "delegate", "done", on_time=True, deadline="met"),
    TaskSpec("Q1", "C2", "delegate", "done", on_time=False, deadline="missed", missed=True),
    TaskSpec("Q1", "GXJ", "assist", "pending", deadline="missed", missed=True),
    TaskSpec("Q1", "RSJ", "assist", "signed"),
    TaskSpec("Q1", "C1", "delegate", "cancelled", deadline="cancelled", missed=True),
    TaskSpec("Q2", "STREET", "assist", "signed", deadline="missed", missed=True),
    TaskSpec("Q2", "DIST", "assist", "done", on_time=True, deadline="met"),
    TaskSpec("Q0", "C2", "delegate", "done", on_time=True, deadline="met"),  # October's
)


def build_tasks(client: TestClient, world: World, rt: Runtime, clock: FrozenClock) -> Scenario:
    """Requests of category OTHER (no rule routes them, so no dispatch makes a task of its
    own), dispatched by hand without co-departments; their tasks and task deadlines are
    written straight into the database as the lead's task actions leave them (`TASKS`).

    - Q0 (30 October) led by STREET; the rest received Wednesday 18 November 10:00:
    - Q1 led by STREET, after GXJ returned it (the dispatchers accepted the return);
    - Q2 led by GXJ; Q3 led by the community C1; Q5 not dispatched (未派单).
    The clock is left at Thursday 26 November 12:00."""
    sc = Scenario(client, world, rt, clock)
    for code, name in COMMUNITIES:
        r = client.post(
            f"{API}/departments",
            json={"code": code, "name": name, "parent_code": "STREET"},
            headers=world.h("admin"),
        )
        assert r.status_code == 201, r.text
    clock.set(at("2026-10-30T10:00:00+08:00"))
    sc.submit("Q0", category="OTHER")
    sc.act("dispatcher", "Q0", "dispatch", lead_department="STREET")
    clock.set(at(RECEIVED))
    for name in ("Q1", "Q2", "Q3", "Q5"):
        sc.submit(name, category="OTHER")
    sc.act("dispatcher", "Q1", "dispatch", lead_department="GXJ")
    sc.act("gxj", "Q1", "return", reason="非本部门职责")
    sc.act("dispatcher", "Q1", "accept_return")
    sc.act("dispatcher", "Q1", "dispatch", lead_department="STREET")
    sc.act("dispatcher", "Q2", "dispatch", lead_department="GXJ")
    sc.act("dispatcher", "Q3", "dispatch", lead_department="C1")
    with rt.transaction() as s:
        for spec in TASKS:
            _add_task(s, s.get_one(Request, sc.ids[spec.request]), spec)
    clock.set(at("2026-11-26T12:00:00+08:00"))
    return sc


def _add_task(s: Session, req: Request, spec: TaskSpec) -> None:
    """One task and its task deadline, started with the request, due 3 working days on."""
    start = req.created_at
    due = start + TASK_LIMIT
    replied = None
    if spec.status == "done":
        replied = start + timedelta(days=1) if spec.on_time else due + timedelta(days=1)
    ended = replied or (due + timedelta(hours=1) if spec.status == "cancelled" else None)
    task = RequestTask(
        request_id=req.id,
        department_code=spec.department,
        kind=spec.kind,
        status=spec.status,
        created_at=start,
        created_by="dispatcher",
        signed_at=start if spec.status != "pending" else None,
        replied_at=replied,
        reply="已办" if replied else None,
        on_time=spec.on_time,
        ended_at=ended,
        received_at=req.created_at,
    )
    s.add(task)
    s.flush()
    s.add(
        Deadline(
            request_id=req.id,
            kind="task",
            task_id=task.id,
            status=spec.deadline,
            duration="3 working days",
            started_at=start,
            due_at=due,
            missed_at=due if spec.missed else None,
            completed_at=ended,
            next_fire_at=None,  # nothing left for the worker
        )
    )


def bound_key(rt: Runtime, role: str, department: str) -> dict[str, str]:
    """The headers of a new key of `role` bound to `department` (and everything below it)."""
    with rt.transaction() as s:
        _, token = create_key(
            session=s, role=role, department=department, name=f"{role}@{department}", now=rt.now()
        )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tasks(client: TestClient, world: World, rt: Runtime, clock: FrozenClock) -> Scenario:
    return build_tasks(client, world, rt, clock)


__all__ = ["API", "TASKS", "USCC_A", "Scenario", "at", "bound_key", "build", "build_tasks"]
