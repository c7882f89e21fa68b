"""Properties over random sequences of actions by random callers, fired from `submitted`:
the request never leaves the spec, never leaves a final state, every fire is consistent
with its timeline and with `allowed()`, and the deadlines always match the state."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from huying.errors import Conflict, Forbidden, InvalidInput, NotFound
from huying.workflow.context import Actor, Outcome, Snapshot

from .support import EVERYONE, NAME, NOW, RATINGS, VERSION, apply, make_engine

ENGINE = make_engine()
SPEC = ENGINE.spec(NAME, VERSION)
TRIGGERS = [*SPEC.triggers, "fly"]  # plus one the workflow does not have

payloads = st.fixed_dictionaries(
    {
        "lead_department": st.sampled_from([None, "GXJ", "RSJ"]),
        "co_departments": st.sampled_from([[], ["STREET"], ["STREET", "GXJ"]]),
        "rating": st.sampled_from([*RATINGS, "meh", None]),
        "approved": st.booleans(),
        "extend_by": st.sampled_from(["2 working days", "1 hour"]),
        "resolved": st.booleans(),
        "content": st.sampled_from(["答复", ""]),
        "reason": st.sampled_from(["理由", None]),
        "note": st.sampled_from(["备注", None, ""]),
        "target_id": st.integers(1, 9),
        "level": st.sampled_from([None, 1, 4]),
    }
)
# Steering favours the actions that move a request along (not reject/merge, which end it
# at once, nor the internal ones, which random steps already fire often).
MOVING = {
    t.trigger
    for t in SPEC.transitions
    if t.dest is not None and t.dest not in ("rejected", "merged")
} | {"request_extension", "decide_extension"}
random_step = st.tuples(st.sampled_from(TRIGGERS), st.sampled_from(EVERYONE))


def draw_step(data: st.DataObject, s: Snapshot) -> tuple[str, Actor, dict[str, Any]]:
    """Half the time any (trigger, caller); otherwise one that `allowed()` offers someone and
    that moves the request along, so that sequences reach the later states."""
    candidates = [
        (t, a) for a in EVERYONE for t in ENGINE.allowed(NAME, VERSION, s, a) if t in MOVING
    ]
    if bool(candidates) and data.draw(st.booleans(), label="steer"):
        trigger, actor = data.draw(st.sampled_from(candidates), label="offered")
    else:
        trigger, actor = data.draw(random_step, label="any")
    return trigger, actor, data.draw(payloads, label="payload")


class Clocks:
    """A model of the request's deadlines, driven only by the effects the engine returns."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}

    def apply(self, outcome: Outcome) -> None:
        for d in outcome.deadlines:
            now = self.status.get(d.kind)
            if d.op == "start":
                assert now not in ("running", "paused"), f"{d.kind} started twice"
                self.status[d.kind] = "running"
            elif d.op == "stop":
                assert now in ("running", "paused"), f"{d.kind} stopped while {now}"
                assert d.outcome in ("met", "cancelled")
                self.status[d.kind] = d.outcome
            elif d.op == "pause":
                assert now == "running", f"{d.kind} paused while {now}"
                self.status[d.kind] = "paused"
            elif d.op == "resume":
                assert now == "paused", f"{d.kind} resumed while {now}"
                self.status[d.kind] = "running"
            elif d.op == "extend":
                assert now in ("running", "paused"), f"{d.kind} extended while {now}"
                assert d.by
            else:  # pragma: no cover
                raise AssertionError(f"unknown deadline op {d.op}")

    def assert_match(self, state: str) -> None:
        s = SPEC.states[state]
        running = {k for k, v in self.status.items() if v == "running"}
        paused = {k for k, v in self.status.items() if v == "paused"}
        assert running == ({s.deadline} if s.deadline else set()), (state, self.status)
        assert paused == ({s.pauses} if s.pauses else set()), (state, self.status)


def _declared(trigger: str, source: str, dest: str) -> bool:
    for t in SPEC.transitions:
        if t.trigger == trigger and source in t.sources and (t.dest or source) == dest:
            return True
    return False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), length=st.integers(1, 40))
def test_random_actions_keep_the_request_inside_the_spec(data: st.DataObject, length: int) -> None:
    start = ENGINE.start(NAME, VERSION, actor=EVERYONE[0], now=NOW, data={})
    s = Snapshot(start.state)
    clocks = Clocks()
    clocks.apply(start)
    level = 0
    for _ in range(length):
        trigger, actor, payload = draw_step(data, s)
        before = s
        allowed = ENGINE.allowed(NAME, VERSION, s, actor)
        try:
            out = ENGINE.fire(NAME, VERSION, s, trigger, actor=actor, payload=payload, now=NOW)
        except (Conflict, Forbidden) as exc:
            assert trigger in SPEC.triggers
            assert exc.extra["allowed"] == allowed
            # a refusal because of the action's own fields is fine; otherwise allowed() agreed
            if trigger in allowed:
                assert isinstance(exc, Conflict) and "refused" in exc.detail
                assert exc.code == "refused" and exc.extra["refusals"]
            continue
        except InvalidInput as exc:  # a required field is missing (checked before guards)
            assert "required" in exc.detail, (trigger, exc.detail)
            assert exc.code == "missing_fields" and exc.extra["fields"], exc
            continue
        except Exception as exc:  # NotFound (UnknownAction) for the unknown trigger, nothing else
            assert trigger == "fly", repr(exc)
            assert type(exc).__name__ == "UnknownAction" and isinstance(exc, NotFound)
            continue

        assert trigger in allowed, (trigger, actor, before.state, allowed)
        assert not SPEC.states[before.state].final, "left a final state"
        assert out.state in SPEC.states
        assert _declared(trigger, before.state, out.state)
        assert out.trigger == out.timeline.action == trigger
        assert out.from_state == out.timeline.from_state == before.state
        assert out.state == out.timeline.to_state
        assert (out.timeline.actor, out.timeline.role, out.timeline.at) == (
            actor.id,
            actor.role,
            NOW,
        )
        assert "state" not in out.changes
        assert out.events and out.events[0].data["from_state"] == before.state
        assert out.events[0].data["to_state"] == out.state
        s = apply(s, out)
        clocks.apply(out)
        clocks.assert_match(s.state)
        assert s.escalation_level >= level, "the escalation level never goes down"
        level = s.escalation_level
        assert s.reopen_count <= ENGINE.rules["reopen_limit"]

    if SPEC.states[s.state].final:
        for actor in EVERYONE:
            assert ENGINE.allowed(NAME, VERSION, s, actor) == []
