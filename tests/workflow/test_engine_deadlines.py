"""Deadline effects: every state change starts, stops (met or cancelled), pauses or resumes
the deadlines the two states declare, and nothing else."""

from __future__ import annotations

import pytest

from huying.workflow.context import DeadlineEffect
from huying.workflow.definition import StateSpec, TransitionSpec
from huying.workflow.engine import _deadline_effects

from .support import (
    ADMIN,
    DISPATCHER,
    GXJ,
    INTEGRATION,
    NAME,
    SUPERVISOR,
    SYSTEM,
    VERSION,
    effects,
    fire,
    make_engine,
    snap,
)


@pytest.fixture(scope="module")
def engine():
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
    engine, source, trigger, actor, payload, dest, expected
):
    out = fire(engine, snap(source), trigger, actor, **payload)
    assert out.state == dest
    assert effects(out) == expected


def test_the_table_covers_every_state_change_of_the_workflow(engine):
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
    engine, state, trigger, actor, payload
):
    assert fire(engine, snap(state), trigger, actor, **payload).deadlines == ()


def test_the_effects_follow_the_states_declarations_not_the_trigger_name():
    running_a = StateSpec("a", deadline="sign")
    running_b = StateSpec("b", deadline="reply")
    pausing = StateSpec("p", pauses="reply")
    idle = StateSpec("i")
    met = TransitionSpec("t", ("a",), "b", ("admin",))
    cancelled = TransitionSpec("t", ("a",), "b", ("admin",), deadline_outcome="cancelled")

    assert _deadline_effects(running_a, running_b, met) == [
        DeadlineEffect("stop", "sign", outcome="met"),
        DeadlineEffect("start", "reply"),
    ]
    assert _deadline_effects(running_a, idle, cancelled) == [
        DeadlineEffect("stop", "sign", outcome="cancelled")
    ]
    assert _deadline_effects(idle, running_a, met) == [DeadlineEffect("start", "sign")]
    assert _deadline_effects(running_b, pausing, met) == [DeadlineEffect("pause", "reply")]
    assert _deadline_effects(pausing, running_b, met) == [DeadlineEffect("resume", "reply")]
    # leaving a pausing state for anything but the paused deadline's state cancels it
    assert _deadline_effects(pausing, idle, met) == [
        DeadlineEffect("stop", "reply", outcome="cancelled")
    ]
    assert _deadline_effects(pausing, running_a, met) == [
        DeadlineEffect("stop", "reply", outcome="cancelled"),
        DeadlineEffect("start", "sign"),
    ]
    # two states running the same deadline: it keeps running
    assert _deadline_effects(running_b, StateSpec("b2", deadline="reply"), met) == []
    assert _deadline_effects(idle, StateSpec("i2"), met) == []
