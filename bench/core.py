"""The pure workflow core: `Engine.fire` transitions per second, in process.

    .venv/bin/python bench/core.py [--seconds 3] [--runs 5] [--requests 5000] [--profile]

The real workflows are loaded (`huying.runtime.load_workflows` + `REGISTRY`) into one
`huying.workflow.engine.Engine`. Request lifecycles are walked once, untimed, to get a
realistic mix of (snapshot, trigger, actor, payload) firings — route, dispatch, sign, return,
urge, supervise, escalate, suspend/resume, extension request/decision, reply, rate (satisfied,
reopen, close unresolved), auto_close, reject — each on the snapshot the request really has
at that step. The timed loop then fires that shuffled list over and over for `--seconds`;
the figure is the median of `--runs` runs. Target (DESIGN.md): >= 20,000 transitions/s.

It also checks that no `transitions.Machine` is built while firing: `Machine.__init__` is
counted during the timed runs, and the compiled machines are the same objects before and after.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
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
from huying.workflow.context import SYSTEM, Actor, Outcome, Snapshot
from huying.workflow.engine import Engine
from huying.workflow.library import REGISTRY

TARGET = 20_000
T0 = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)
DISPATCHER = Actor("key:2", "dispatcher")
SUPERVISOR = Actor("key:3", "supervisor")
INTEGRATION = Actor("key:4", "integration")
LEADS = (("GXJ", ("STREET",)), ("RSJ", ()), ("STREET", ("RSJ",)))
_SNAP_FIELDS = {f.name for f in fields(Snapshot)}

Step = tuple[str, Any, dict[str, Any]]  # trigger, actor ("lead" = the lead department), payload


def lifecycles(lead: str, co: tuple[str, ...]) -> list[tuple[float, list[Step]]]:
    """(weight, steps) per path a request takes; weights roughly as a busy district sees them."""
    routed = {"lead_department": lead, "co_departments": list(co), "rule_id": None}
    manual = {"lead_department": lead, "co_departments": list(co)}
    return [
        # routed at once, signed, replied, rated satisfied: the common case
        (
            0.50,
            [
                ("route", SYSTEM, routed),
                ("sign", "lead", {}),
                ("reply", "lead", {"resolved": True, "content": "已协调供电公司增容"}),
                ("rate", INTEGRATION, {"rating": "satisfied"}),
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
                ("reply", "lead", {"resolved": True}),
                ("rate", INTEGRATION, {"rating": "very_satisfied"}),
            ],
        ),
        # no route: dispatched by hand, suspended and resumed, unsatisfied twice
        (
            0.12,
            [
                ("route", SYSTEM, {}),
                ("dispatch", DISPATCHER, manual),
                ("sign", "lead", {}),
                ("suspend", "lead", {"reason": "等待企业补充材料"}),
                ("resume", "lead", {}),
                ("reply", "lead", {"resolved": False}),
                ("rate", INTEGRATION, {"rating": "dissatisfied"}),
                ("reply", "lead", {"resolved": True}),
                ("rate", INTEGRATION, {"rating": "very_dissatisfied"}),
            ],
        ),
        # returned, re-dispatched, supervised, never rated: auto-closed
        (
            0.12,
            [
                ("route", SYSTEM, routed),
                ("return", "lead", {"reason": "不属于本部门职责"}),
                ("dispatch", DISPATCHER, manual),
                ("sign", "lead", {}),
                ("supervise", SUPERVISOR, {"reason": "群众反映强烈", "level": 2}),
                ("reply", "lead", {"resolved": True}),
                ("auto_close", SYSTEM, {}),
            ],
        ),
        # overdue: escalated by the timer, then handled
        (
            0.09,
            [
                ("route", SYSTEM, routed),
                ("escalate", SYSTEM, {"reason": "sign overdue"}),
                ("sign", "lead", {}),
                ("reply", "lead", {"resolved": True}),
                ("rate", INTEGRATION, {"rating": "basically_satisfied"}),
            ],
        ),
        # not admissible
        (0.05, [("route", SYSTEM, {}), ("reject", DISPATCHER, {"reason": "不属于受理范围"})]),
    ]


def advance(snap: Snapshot, outcome: Outcome) -> Snapshot:
    changes = {k: v for k, v in outcome.changes.items() if k in _SNAP_FIELDS}
    if "co_departments" in changes:
        changes["co_departments"] = tuple(changes["co_departments"])
    return replace(snap, state=outcome.state, **changes)


def build_mix(engine: Engine, requests: int, seed: int = 7) -> list[tuple[Any, ...]]:
    """Walk `requests` lifecycles once (untimed) and keep every firing with its real snapshot."""
    rng = random.Random(seed)
    spec = engine.latest("service_request")
    name, version = spec.name, spec.version
    firings: list[tuple[Any, ...]] = []
    for i in range(requests):
        lead, co = LEADS[i % len(LEADS)]
        paths = lifecycles(lead, co)
        _, steps = rng.choices(paths, weights=[w for w, _ in paths])[0]
        lead_actor = Actor(f"key:{10 + i % len(LEADS)}", "department", lead)
        snap = Snapshot(state=spec.initial)
        now = T0
        for trigger, actor, payload in steps:
            actor = lead_actor if actor == "lead" else actor
            now += timedelta(minutes=37)
            outcome = engine.fire(
                name, version, snap, trigger, actor=actor, payload=payload, now=now
            )
            firings.append((name, version, snap, trigger, actor, payload, now))
            snap = advance(snap, outcome)
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
    """A refused firing (guard fails: rating missing) costs a Conflict with `allowed` computed."""
    snap = Snapshot(state="replied", lead_department="GXJ")
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            try:  # noqa: SIM105 - the bare try is what a caller pays
                engine.fire(
                    "service_request",
                    1,
                    snap,
                    "rate",
                    actor=INTEGRATION,
                    payload={"rating": "nonsense"},
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


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one timed run")
    ap.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported")
    ap.add_argument("--requests", type=int, default=5000, help="lifecycles walked to build the mix")
    ap.add_argument("--profile", action="store_true", help="cProfile one extra run, print the top")
    args = ap.parse_args()

    settings = make_settings("sqlite:///:memory:")  # no database is touched
    specs, errors = load_workflows(settings)
    if errors:
        raise SystemExit(f"workflows invalid: {errors}")
    engine = Engine(specs, REGISTRY, settings.workflow_rules.model_dump())
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
