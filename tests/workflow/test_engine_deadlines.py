"""Deadline effects: every state change starts, stops (met or cancelled), pauses or resumes
the deadlines the two states declare, and nothing else."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from huying.workflow.context import Actor, DeadlineEffect, Snapshot
from huying.workflow.definition import parse, validate
from huying.workflow.engine import Engine
from huying.workflow.library import REGISTRY

from .support import (
    ADMIN,
    DISPATCHER,
    GXJ,
    INTEGRATION,
    NAME,
    NOW,
    SUPERVISOR,
    SYSTEM,
    VERSION,
    effects,
    fire,
    make_engine,
    snap,
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


# (from state, trigger, actor, payload, to state, deadline effects), one row per state change
STATE_CHANGES = [
    ("submitted", "route", SYSTEM, {"lead_department": "GXJ"}, "dispatched", [("start", "sign")]),
    ("submitted", "route", SYSTEM, {}, "awaiting_dispatch", [("start", "dispatch")]),
    ("submitted", "reject", DISPATCHER, {"reason": "r"}, "rejected", []),
    ("submitted", "merge", DISPATCHER, {"target_id": 1}, "merged", []),
    (
        "awaiting_dispatch",
        "dispatch",
        DISPATCHER,
        {"lead_department": "GXJ"},
        "dispatched",
        [("stop", "dispatch", "met"), ("start", "sign")],
    ),
    (
        "awaiting_dispatch",
        "reject",
        ADMIN,
        {"reason": "r"},
        "rejected",
        [("stop", "dispatch", "cancelled")],
    ),
    (
        "awaiting_dispatch",
        "merge",
        ADMIN,
        {"target_id": 1},
        "merged",
        [("stop", "dispatch", "cancelled")],
    ),
    (
        "dispatched",
        "sign",
        GXJ,
        {},
        "in_progress",
        [("stop", "sign", "met"), ("start", "reply")],
    ),
    (
        "dispatched",
        "return",
        GXJ,
        {"reason": "r"},
        "awaiting_dispatch",
        [("stop", "sign", "cancelled"), ("start", "dispatch")],
    ),
    (
        "dispatched",
        "merge",
        DISPATCHER,
        {"target_id": 1},
        "merged",
        [("stop", "sign", "cancelled")],
    ),
    ("in_progress", "suspend", GXJ, {"reason": "r"}, "suspended", [("pause", "reply")]),
    ("suspended", "resume", GXJ, {}, "in_progress", [("resume", "reply")]),
    (
        "in_progress",
        "reply",
        GXJ,
        {"content": "c", "resolved": True},
        "replied",
        [("stop", "reply", "met"), ("start", "feedback")],
    ),
    (
        "replied",
        "rate",
        INTEGRATION,
        {"rating": "satisfied"},
        "closed",
        [("stop", "feedback", "met")],
    ),
    (
        "replied",
        "rate",
        INTEGRATION,
        {"rating": "dissatisfied"},
        "in_progress",
        [("stop", "feedback", "met"), ("start", "reply")],
    ),
    ("replied", "auto_close", SYSTEM, {}, "closed", [("stop", "feedback", "met")]),
]


@pytest.mark.parametrize(
    ("source", "trigger", "actor", "payload", "dest", "expected"),
    STATE_CHANGES,
    ids=[f"{r[0]}-{r[1]}-{r[4]}" for r in STATE_CHANGES],
)
def test_each_state_change_has_the_deadline_effects_its_states_declare(
    engine: Engine,
    source: str,
    trigger: str,
    actor: Actor,
    payload: dict[str, Any],
    dest: str,
    expected: list[tuple[str, ...]],
) -> None:
    out = fire(engine, snap(source), trigger, actor, **payload)
    assert out.state == dest
    assert effects(out) == expected


def test_the_table_covers_every_state_change_of_the_workflow(engine: Engine) -> None:
    spec = engine.spec(NAME, VERSION)
    declared = {(src, t.trigger, t.dest) for t in spec.transitions if t.dest for src in t.sources}
    covered = {(r[0], r[1], r[4]) for r in STATE_CHANGES}
    assert declared <= covered


@pytest.mark.parametrize(
    ("state", "trigger", "actor", "payload"),
    [
        ("in_progress", "urge", SUPERVISOR, {}),
        ("suspended", "supervise", DISPATCHER, {}),
        ("dispatched", "escalate", SYSTEM, {}),
        ("in_progress", "request_extension", GXJ, {"extend_by": "1 day", "reason": "r"}),
    ],
)
def test_actions_that_keep_the_state_leave_the_deadlines_alone(
    engine: Engine, state: str, trigger: str, actor: Actor, payload: dict[str, Any]
) -> None:
    assert fire(engine, snap(state), trigger, actor, **payload).deadlines == ()


def _custom_engine() -> Engine:
    """A workflow of its own, to show the effects come from the states' declarations."""
    admin = ["admin"]
    doc = {
        "name": "clocks",
        "version": 1,
        "initial": "idle",
        "states": {
            "idle": {},
            "signing": {"deadline": "sign"},
            "replying": {"deadline": "reply"},
            "replying_too": {"deadline": "reply"},
            "paused": {"pauses": "reply"},
            "done": {"final": True},
        },
        "transitions": [
            {"trigger": "go", "source": "idle", "dest": "signing", "roles": admin},
            {"trigger": "quit", "source": "idle", "dest": "done", "roles": admin},
            {"trigger": "ahead", "source": "signing", "dest": "replying", "roles": admin},
            {
                "trigger": "drop",
                "source": "signing",
                "dest": "done",
                "roles": admin,
                "deadline_outcome": "cancelled",
            },
            {"trigger": "hold", "source": "replying", "dest": "paused", "roles": admin},
            {"trigger": "go_on", "source": "paused", "dest": "replying", "roles": admin},
            {"trigger": "give_up", "source": "paused", "dest": "done", "roles": admin},
            {"trigger": "back", "source": "paused", "dest": "signing", "roles": admin},
            {"trigger": "hand_over", "source": "replying", "dest": "replying_too", "roles": admin},
            {"trigger": "finish", "source": "replying_too", "dest": "done", "roles": admin},
        ],
    }
    spec, problems = parse(doc)
    assert spec is not None and problems == []
    assert validate(spec, guards=REGISTRY.guards, actions=REGISTRY.actions) == []
    return Engine({spec.key: spec}, REGISTRY)


@pytest.mark.parametrize(
    ("source", "trigger", "expected"),
    [
        ("idle", "go", [("start", "sign")]),
        ("idle", "quit", []),
        ("signing", "ahead", [("stop", "sign", "met"), ("start", "reply")]),
        ("signing", "drop", [("stop", "sign", "cancelled")]),
        ("replying", "hold", [("pause", "reply")]),
        ("paused", "go_on", [("resume", "reply")]),
        # leaving a pausing state other than back to the paused deadline cancels it
        ("paused", "give_up", [("stop", "reply", "cancelled")]),
        ("paused", "back", [("stop", "reply", "cancelled"), ("start", "sign")]),
        # two states running the same deadline: it just keeps running
        ("replying", "hand_over", []),
        ("replying_too", "finish", [("stop", "reply", "met")]),
    ],
)
def test_the_effects_follow_the_states_declarations_in_any_workflow(
    source: str, trigger: str, expected: list[tuple[str, ...]]
) -> None:
    engine = _custom_engine()
    out = engine.fire("clocks", 1, Snapshot(source), trigger, actor=ADMIN, payload={}, now=NOW)
    assert effects(out) == expected


def test_start_starts_the_deadline_of_an_initial_state_that_runs_one() -> None:
    engine = _custom_engine()
    spec = engine.spec("clocks", 1)
    doc_spec = dataclasses.replace(spec, name="clocks2", initial="signing")
    engine = Engine({doc_spec.key: doc_spec}, REGISTRY)
    out = engine.start("clocks2", 1, actor=ADMIN, now=NOW, data={})
    assert out.state == "signing"
    assert out.deadlines == (DeadlineEffect("start", "sign"),)
