"""The pure workflow core: `Engine.fire` transitions per second, in process.

    .venv/bin/python bench/core.py [--seconds 3] [--runs 5] [--requests 5000] [--profile]

The real workflows are loaded (`huying.runtime.load_workflows` + `REGISTRY`) into one
`huying.workflow.engine.Engine`. Request lifecycles of the latest workflow (version 2) are
walked once, untimed, to get a realistic mix of (snapshot, trigger, actor, payload) firings:
route, dispatch, sign, tasks signed and answered by co-departments and a community (协办,
下派), returns reviewed (accepted or refused), reassignment, urge, supervise, escalate,
suspension asked, approved and resumed, extension asked and decided, reply, rate (by the
enterprise with its 是否解决, or by phone follow-up; satisfied, reopen, close unresolved),
auto_close, reject. Each fires on the snapshot the request really has at that step, its open
deadlines and tasks included. tests/workflow/test_bench_mix.py walks the same paths.
The timed loop then fires that shuffled list over and over for `--seconds`;
the figure is the median of `--runs` runs. Target (DESIGN.md): >= 20,000 transitions/s.

It also checks that no `transitions.Machine` is built while firing: `Machine.__init__` is
counted during the timed runs, and the compiled machines are the same objects before and after.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transitions
import transitions.core
from _common import load_average, machine_line, make_settings, median, now_utc

from huying.errors import Conflict
from huying.runtime import load_workflows
from huying.workflow.context import SYSTEM, Actor, Clock, Outcome, Snapshot, TaskView
from huying.workflow.engine import Engine
from huying.workflow.library import REGISTRY

TARGET = 20_000
T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
DISPATCHER = Actor("key:2", "dispatcher")
SUPERVISOR = Actor("key:3", "supervisor")
INTEGRATION = Actor("key:4", "integration")
LEADS = (("GXJ", ("STREET",)), ("RSJ", ()), ("STREET", ("RSJ",)))
COMMUNITY = "STREET-C1"  # a department below a lead, for 下派 (checked outside the engine)
CLOCK_LENGTH = timedelta(days=3)  # how long a started deadline runs in the walk
_SNAP_FIELDS = {f.name for f in fields(Snapshot)}

# trigger, actor, payload. The actor "lead" is the request's lead department as it stands at
# that step (a reassignment changes it); "task" is the department of the first open task
# the step can act on, and a payload's `"task_id": None` is that task's id: a step with no
# such task (a lead without co-departments) is left out of that walk.
Step = tuple[str, Any, dict[str, Any]]


def lifecycles(lead: str, co: tuple[str, ...]) -> list[tuple[float, list[Step]]]:
    """(weight, steps) per path a request takes in the latest workflow (v2: tasks, reviewed
    returns, reassignment, suspensions asked and decided, the enterprise's own 是否解决);
    weights roughly as a busy district sees them."""
    routed = {"lead_department": lead, "co_departments": list(co), "rule_id": None}
    manual = {"lead_department": lead, "co_departments": list(co)}
    other = next(code for code, _ in LEADS if code != lead)
    done = {"resolved": True, "content": "已协调供电公司增容"}
    assist: list[Step] = [
        ("task_sign", "task", {"task_id": None}),
        ("task_reply", "task", {"task_id": None, "content": "已配合现场核查"}),
    ]
    return [
        # routed at once, signed, the co-departments' tasks answered, replied, rated
        (
            0.38,
            [
                ("route", SYSTEM, routed),
                ("sign", "lead", {}),
                *assist,
                ("reply", "lead", done),
                ("rate", INTEGRATION, {"rating": "satisfied", "resolved": True}),
            ],
        ),
        # urged, needs more time, gets it
        (
            0.12,
            [
                ("route", SYSTEM, routed),
                ("urge", SUPERVISOR, {"note": "请尽快签收"}),
                ("sign", "lead", {}),
                (
                    "request_extension",
                    "lead",
                    {"extend_by": "3 working days", "reason": "需现场勘查"},
                ),
                ("decide_extension", SUPERVISOR, {"approved": True}),
                ("reply", "lead", done),
                ("rate", INTEGRATION, {"rating": "very_satisfied", "resolved": True}),
            ],
        ),
        # no route: dispatched by hand, suspended on approval and resumed, unsatisfied twice
        (
            0.10,
            [
                ("route", SYSTEM, {}),
                ("dispatch", DISPATCHER, manual),
                ("sign", "lead", {}),
                (
                    "request_suspension",
                    "lead",
                    {
                        "reason_code": "awaiting_materials",
                        "reason": "等待企业补充材料",
                        "length": "5 working days",
                    },
                ),
                ("decide_suspension", SUPERVISOR, {"approved": True}),
                ("resume", "lead", {}),
                ("reply", "lead", {"resolved": False, "content": "正在协调"}),
                ("rate", INTEGRATION, {"rating": "dissatisfied", "resolved": False}),
                ("reply", "lead", done),
                ("rate", INTEGRATION, {"rating": "very_dissatisfied", "resolved": False}),
            ],
        ),
        # returned, the return accepted, re-dispatched, supervised, never rated: auto-closed
        (
            0.10,
            [
                ("route", SYSTEM, routed),
                ("return", "lead", {"reason": "不属于本部门职责"}),
                ("accept_return", DISPATCHER, {}),
                ("dispatch", DISPATCHER, manual),
                ("sign", "lead", {}),
                ("supervise", SUPERVISOR, {"reason": "群众反映强烈", "level": 2}),
                ("reply", "lead", done),
                ("auto_close", SYSTEM, {}),
            ],
        ),
        # returned after signing, the return refused, handled
        (
            0.06,
            [
                ("route", SYSTEM, routed),
                ("sign", "lead", {}),
                ("return", "lead", {"reason": "需其他部门办理"}),
                ("refuse_return", DISPATCHER, {"reason": "属本部门职责"}),
                ("reply", "lead", done),
                ("rate", INTEGRATION, {"rating": "satisfied", "resolved": True}),
            ],
        ),
        # reassigned, delegated to a community, rated by phone follow-up
        (
            0.10,
            [
                ("route", SYSTEM, routed),
                ("reassign", DISPATCHER, {"lead_department": other, "reason": "改由主管部门办理"}),
                ("sign", "lead", {}),
                ("delegate", "lead", {"departments": [COMMUNITY], "note": "请社区上门核实"}),
                *assist,
                ("reply", "lead", done),
                ("rate", DISPATCHER, {"rating": "basically_satisfied"}),
            ],
        ),
        # overdue: escalated by the timer, then handled
        (
            0.09,
            [
                ("route", SYSTEM, routed),
                ("escalate", SYSTEM, {"reason": "sign overdue"}),
                ("sign", "lead", {}),
                ("reply", "lead", done),
                ("rate", INTEGRATION, {"rating": "basically_satisfied", "resolved": True}),
            ],
        ),
        # not admissible
        (0.05, [("route", SYSTEM, {}), ("reject", DISPATCHER, {"reason": "不属于受理范围"})]),
    ]


def advance(snap: Snapshot, outcome: Outcome, now: datetime, next_task: Iterator[int]) -> Snapshot:
    """The snapshot the request has after `outcome`, as the database would give it: its
    fields, its open deadlines (`clocks`) and its tasks."""
    changes: dict[str, Any] = {k: v for k, v in outcome.changes.items() if k in _SNAP_FIELDS}
    if "co_departments" in changes:
        changes["co_departments"] = tuple(changes["co_departments"])
    clocks = dict(snap.clocks)
    for d in outcome.deadlines:
        clock = clocks.get(d.kind)
        if d.op == "start":
            clocks[d.kind] = Clock("running", now + CLOCK_LENGTH)
        elif d.op == "stop":
            clocks.pop(d.kind, None)
        elif clock is not None and d.op in ("pause", "resume"):
            clocks[d.kind] = replace(clock, status="paused" if d.op == "pause" else "running")
        elif clock is not None and d.op == "extend":
            clocks[d.kind] = replace(
                clock, due_at=clock.due_at + CLOCK_LENGTH, extension_count=clock.extension_count + 1
            )
    tasks = dict(snap.tasks)
    for t in outcome.tasks:
        if t.op == "create":
            tasks[next(next_task)] = TaskView(t.department or "", t.kind or "assist", "pending")
        elif t.task_id in tasks:
            status = {"sign": "signed", "reply": "done", "cancel": "cancelled"}[t.op]
            tasks[t.task_id] = replace(tasks[t.task_id], status=status)
    return replace(snap, state=outcome.state, clocks=clocks, tasks=tasks, **changes)


def _task_for(snap: Snapshot, trigger: str) -> int | None:
    """The task a `task_sign` or `task_reply` acts on: the first waiting or open one."""
    wanted = ("pending",) if trigger == "task_sign" else ("pending", "signed")
    return next((i for i, t in snap.tasks.items() if t.status in wanted), None)


def build_mix(engine: Engine, requests: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """Walk `requests` lifecycles once (untimed) and keep every firing with its real snapshot."""
    rng = random.Random(seed)
    spec = engine.latest("service_request")
    name, version = spec.name, spec.version
    firings: list[tuple[Any, ...]] = []
    next_task = itertools.count(1)
    for i in range(requests):
        lead, co = LEADS[i % len(LEADS)]
        paths = lifecycles(lead, co)
        _, steps = rng.choices(paths, weights=[w for w, _ in paths])[0]
        snap = Snapshot(state=spec.initial)
        now = T0
        for trigger, who, payload in steps:
            actor = who
            if who == "lead":
                actor = Actor(f"key:{10 + i % 7}", "department", snap.lead_department)
            elif who == "task":
                task_id = _task_for(snap, trigger)
                if task_id is None:
                    continue  # no co-department: no task to act on
                actor = Actor("key:30", "department", snap.tasks[task_id].department)
                payload = {**payload, "task_id": task_id}
            now += timedelta(minutes=37)
            outcome = engine.fire(
                name, version, snap, trigger, actor=actor, payload=payload, now=now
            )
            firings.append((name, version, snap, trigger, actor, payload, now))
            snap = advance(snap, outcome, now, next_task)
    rng.shuffle(firings)  # requests interleave in real traffic
    return firings


def run_once(engine: Engine, firings: list[tuple[Any, ...]], seconds: float) -> tuple[int, float]:
    fire = engine.fire
    done = 0
    start = time.perf_counter()
    while True:
        for name, version, snap, trigger, actor, payload, now in firings:
            fire(name, version, snap, trigger, actor=actor, payload=payload, now=now)
        done += len(firings)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done, elapsed


def refusals_per_second(engine: Engine, seconds: float = 1.0) -> float:
    """A refused firing (no guard passes: a rating of no known level) costs a Conflict with
    `allowed` computed."""
    snap = Snapshot(state="replied", lead_department="GXJ")
    version = engine.latest("service_request").version
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            try:  # noqa: SIM105 - the bare try is what a caller pays
                engine.fire(
                    "service_request",
                    version,
                    snap,
                    "rate",
                    actor=INTEGRATION,
                    payload={"rating": "nonsense", "resolved": True},
                    now=T0,
                )
            except Conflict:
                pass
        done += 200
    return done / (time.perf_counter() - start)


class MachineCounter:
    """Counts `transitions.Machine` constructions (any subclass) while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._orig = transitions.core.Machine.__init__

    def __enter__(self) -> MachineCounter:
        orig = self._orig

        def counting_init(machine: Any, *args: Any, **kwargs: Any) -> None:
            self.count += 1
            orig(machine, *args, **kwargs)

        # a counting wrapper in place of the method: mypy checks neither the assignment to a method
        # nor the wrapper against Machine's long keyword signature
        transitions.core.Machine.__init__ = counting_init  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        transitions.core.Machine.__init__ = self._orig  # type: ignore[method-assign]


def live_machines() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, transitions.Machine))


def build_engine() -> Engine:
    """The real workflows with the default rules, as `huying.runtime` builds them."""
    settings = make_settings("sqlite:///:memory:")  # no database is touched
    specs, errors = load_workflows(settings)
    if errors:
        raise SystemExit(f"workflows invalid: {errors}")
    return Engine(specs, REGISTRY, settings.workflow_rules.model_dump())


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    ap.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported")
    ap.add_argument("--requests", type=int, default=5000, help="lifecycles walked to build the mix")
    ap.add_argument("--profile", action="store_true", help="cProfile one extra run, print the top")
    args = ap.parse_args()

    engine = build_engine()
    machines_before = {k: id(wf.machine) for k, wf in engine.workflows.items()}

    firings = build_mix(engine, args.requests)
    mix: dict[str, int] = {}
    for f in firings:
        mix[f[3]] = mix.get(f[3], 0) + 1
    distinct = len({id(f[2]) for f in firings})

    load_before = load_average()
    run_once(engine, firings[:2000], 0.3)  # warm up
    live_before = live_machines()
    rates: list[float] = []
    with MachineCounter() as counter:
        for _ in range(args.runs):
            done, elapsed = run_once(engine, firings, args.seconds)
            rates.append(done / elapsed)
    live_after = live_machines()
    same = machines_before == {k: id(wf.machine) for k, wf in engine.workflows.items()}
    rate = median(rates)
    refused = refusals_per_second(engine)

    print(f"# workflow core — {now_utc()} — {machine_line()}")
    print(f"workflows loaded: {', '.join(f'{n} v{v}' for n, v in engine.workflows)}")
    print(
        f"mix: {len(firings)} firings over {distinct} snapshots from {args.requests} lifecycles: "
        + ", ".join(
            f"{k} {v / len(firings):.0%}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])
        )
    )
    print("runs (transitions/s): " + ", ".join(f"{r:,.0f}" for r in rates))
    print(
        f"Machine constructions during {args.runs} runs: {counter.count}; live Machines "
        f"{live_before} before, {live_after} after; compiled machines unchanged: {same}"
    )
    print(f"load average: {load_before} before, {load_average()} after")
    print(f"refused firings (Conflict with allowed actions): {refused:,.0f}/s")
    ok = rate >= TARGET and counter.count == 0 and same
    print()
    print("| benchmark | result | target | met |")
    print("|---|---|---|---|")
    print(
        f"| workflow core, `Engine.fire` (median of {args.runs} × {args.seconds:g} s) | "
        f"{rate:,.0f} transitions/s | ≥ {TARGET:,}/s, no Machine per request | "
        f"{'met' if ok else 'NOT met'} ({counter.count} Machines built) |"
    )

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run_once(engine, firings, args.seconds)
        prof.disable()
        print()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
