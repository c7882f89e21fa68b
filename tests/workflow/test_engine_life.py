"""A request's life through the engine, action by action: the new state, the field
changes, the deadline effects, the timeline draft and the events of each firing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from huying.errors import Conflict, InvalidInput
from huying.workflow.context import Actor, Snapshot
from huying.workflow.definition import WorkflowSpec
from huying.workflow.engine import Engine

from .support import (
    ADMIN,
    DISPATCHER,
    GXJ,
    INTEGRATION,
    NAME,
    NOW,
    RULES,
    SUPERVISOR,
    SYSTEM,
    VERSION,
    apply,
    effects,
    event_types,
    fire,
    make_engine,
    snap,
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


@pytest.fixture(scope="module")
def spec(engine: Engine) -> WorkflowSpec:
    return engine.spec(NAME, VERSION)


def _transition_event(spec: WorkflowSpec, trigger: str, dest: str | None) -> str:
    """The event type the YAML declares for the transition `trigger` into `dest`."""
    (event,) = {t.event_type for t in spec.transitions if t.trigger == trigger and t.dest == dest}
    return event


# --- start and routing ------------------------------------------------------------------


def test_start_enters_the_initial_state_with_a_submit_timeline_row(engine: Engine) -> None:
    out = engine.start(NAME, VERSION, actor=INTEGRATION, now=NOW, data={"source": "grid"})
    assert (out.trigger, out.from_state, out.state) == ("submit", None, "submitted")
    assert out.deadlines == ()  # submitted runs no deadline
    tl = out.timeline
    assert (tl.action, tl.from_state, tl.to_state) == ("submit", None, "submitted")
    assert (tl.actor, tl.role, tl.at) == ("key:grid", "integration", NOW)
    assert tl.data == {"source": "grid"}


def test_route_with_a_lead_department_dispatches_and_starts_the_sign_deadline(
    engine: Engine, spec: WorkflowSpec
) -> None:
    out = fire(
        engine,
        Snapshot("submitted"),
        "route",
        SYSTEM,
        lead_department="GXJ",
        co_departments=["STREET", "GXJ"],
    )
    assert out.state == "dispatched"
    assert out.changes["lead_department"] == "GXJ"
    assert out.changes["co_departments"] == ("STREET",)  # the lead is not its own co-department
    assert effects(out) == [("start", "sign")]
    assert event_types(out)[0] == _transition_event(spec, "route", "dispatched")
    assert out.timeline.data["lead_department"] == "GXJ"


@pytest.mark.parametrize("payload", [{}, {"lead_department": None}, {"lead_department": ""}])
def test_route_without_a_lead_department_waits_for_a_dispatcher(
    engine: Engine, spec: WorkflowSpec, payload: dict[str, Any]
) -> None:
    out = fire(engine, Snapshot("submitted"), "route", SYSTEM, **payload)
    assert out.state == "awaiting_dispatch"
    assert "lead_department" not in out.changes
    assert effects(out) == [("start", "dispatch")]
    assert event_types(out)[0] == _transition_event(spec, "route", "awaiting_dispatch")


def test_dispatch_names_the_lead_and_co_departments(engine: Engine, spec: WorkflowSpec) -> None:
    out = fire(
        engine,
        Snapshot("awaiting_dispatch"),
        "dispatch",
        DISPATCHER,
        lead_department="GXJ",
        co_departments=["STREET"],
        note="供电相关",
    )
    assert out.state == "dispatched"
    assert out.changes == {"lead_department": "GXJ", "co_departments": ("STREET",)}
    assert effects(out) == [("stop", "dispatch", "met"), ("start", "sign")]
    assert out.timeline.note == "供电相关"
    assert event_types(out)[0] == _transition_event(spec, "dispatch", "dispatched")


def test_dispatch_without_a_lead_department_is_refused_naming_the_field(engine: Engine) -> None:
    with pytest.raises(InvalidInput) as caught:
        fire(engine, Snapshot("awaiting_dispatch"), "dispatch", DISPATCHER, co_departments=["X"])
    assert "lead_department" in caught.value.detail


# --- sign, return ----------------------------------------------------------------------


def test_the_lead_department_signs(engine: Engine, spec: WorkflowSpec) -> None:
    out = fire(engine, snap("dispatched"), "sign", GXJ)
    assert out.state == "in_progress"
    assert effects(out) == [("stop", "sign", "met"), ("start", "reply")]
    assert event_types(out)[0] == _transition_event(spec, "sign", "in_progress")
    assert (out.timeline.actor, out.timeline.role) == ("user:gxj", "department")


def test_return_sends_it_back_to_the_dispatchers_and_counts_it(
    engine: Engine, spec: WorkflowSpec
) -> None:
    out = fire(engine, snap("dispatched"), "return", GXJ, reason="不属于本部门职责")
    assert out.state == "awaiting_dispatch"
    assert out.changes["return_count"] == 1
    assert out.changes["lead_department"] is None
    assert out.changes["co_departments"] == ()
    assert "escalation_level" not in out.changes
    assert effects(out) == [("stop", "sign", "cancelled"), ("start", "dispatch")]
    assert out.timeline.note == "不属于本部门职责"
    assert out.timeline.data["returned_by"] == "GXJ"
    assert event_types(out) == [_transition_event(spec, "return", "awaiting_dispatch")]


@pytest.mark.parametrize("previous_returns", [0, 1])
def test_returns_up_to_the_configured_number_do_not_escalate(
    engine: Engine, previous_returns: int
) -> None:
    out = fire(engine, snap("dispatched", return_count=previous_returns), "return", GXJ, reason="x")
    assert out.changes["return_count"] == previous_returns + 1
    assert "escalation_level" not in out.changes
    assert "request.escalated" not in event_types(out)


@pytest.mark.parametrize("previous_returns", [2, 5])
def test_returns_past_the_configured_number_escalate(engine: Engine, previous_returns: int) -> None:
    out = fire(
        engine,
        snap("dispatched", return_count=previous_returns, escalation_level=1),
        "return",
        GXJ,
        reason="x",
    )
    assert out.changes["return_count"] == previous_returns + 1
    assert out.changes["escalation_level"] == 2
    (escalated,) = [e for e in out.events if e.type == "request.escalated"]
    assert escalated.data["level"] == 2
    assert escalated.data["previous_level"] == 1


def test_the_return_threshold_comes_from_the_rules() -> None:
    strict = make_engine({"return_escalate_after": 0, "reopen_limit": 1})
    out = fire(strict, snap("dispatched"), "return", GXJ, reason="x")
    assert out.changes["escalation_level"] == 1


# --- extensions --------------------------------------------------------------------------


def test_request_extension_records_a_pending_extension_without_changing_state(
    engine: Engine, spec: WorkflowSpec
) -> None:
    out = fire(
        engine,
        snap("in_progress"),
        "request_extension",
        GXJ,
        extend_by="3 working days",
        reason="需现场勘查",
    )
    assert out.state == "in_progress"
    pending = out.changes["pending_extension"]
    assert pending["extend_by"] == "3 working days"
    assert pending["reason"] == "需现场勘查"
    assert pending["requested_by"] == "user:gxj"
    assert pending["requested_at"] == NOW.isoformat()
    assert out.deadlines == ()
    assert out.timeline.note == "需现场勘查"
    assert out.timeline.data == {"extend_by": "3 working days"}
    assert event_types(out) == [_transition_event(spec, "request_extension", None)]


def test_an_approved_extension_moves_the_reply_deadline_and_clears_the_pending_one(
    engine: Engine,
) -> None:
    s = snap("in_progress")
    s = apply(s, fire(engine, s, "request_extension", GXJ, extend_by="3 working days", reason="r"))
    out = fire(engine, s, "decide_extension", SUPERVISOR, approved=True)
    assert out.state == "in_progress"
    assert out.changes["pending_extension"] is None
    assert effects(out) == [("extend", "reply", "3 working days")]
    assert out.timeline.data["extend_by"] == "3 working days"
    assert out.timeline.data["requested"]["reason"] == "r"
    assert apply(s, out).pending_extension is None


def test_a_supervisor_may_grant_a_different_length_than_asked(engine: Engine) -> None:
    s = snap("in_progress", pending_extension={"extend_by": "5 working days"})
    out = fire(engine, s, "decide_extension", SUPERVISOR, approved=True, extend_by="2 working days")
    assert effects(out) == [("extend", "reply", "2 working days")]


def test_a_denied_extension_clears_the_pending_one_and_moves_nothing(engine: Engine) -> None:
    s = snap("in_progress", pending_extension={"extend_by": "5 working days"})
    out = fire(engine, s, "decide_extension", ADMIN, approved=False, note="理由不充分")
    assert out.changes["pending_extension"] is None
    assert out.deadlines == ()
    assert out.timeline.data["extend_by"] is None
    assert out.timeline.note == "理由不充分"


def test_an_extension_may_be_requested_and_decided_while_suspended(engine: Engine) -> None:
    s = snap("suspended")
    s = apply(s, fire(engine, s, "request_extension", GXJ, extend_by="1 working day", reason="r"))
    out = fire(engine, s, "decide_extension", SUPERVISOR, approved=True)
    assert out.state == "suspended"
    assert effects(out) == [("extend", "reply", "1 working day")]


def test_a_second_extension_request_while_one_is_pending_is_refused_with_the_reason(
    engine: Engine,
) -> None:
    s = snap("in_progress", pending_extension={"extend_by": "3 working days"})
    with pytest.raises(Conflict) as caught:
        fire(engine, s, "request_extension", GXJ, extend_by="1 working day", reason="again")
    assert "an extension request is already pending a decision" in caught.value.detail
    assert "request_extension" not in caught.value.extra["allowed"]
    assert "reply" in caught.value.extra["allowed"]


def test_deciding_when_nothing_is_pending_is_refused_with_the_reason(engine: Engine) -> None:
    with pytest.raises(Conflict) as caught:
        fire(engine, snap("in_progress"), "decide_extension", SUPERVISOR, approved=True)
    assert "no extension request is pending" in caught.value.detail
    assert "decide_extension" not in caught.value.extra["allowed"]


# --- suspend, resume ------------------------------------------------------------------------


def test_suspend_pauses_the_reply_deadline(engine: Engine, spec: WorkflowSpec) -> None:
    out = fire(engine, snap("in_progress"), "suspend", GXJ, reason="等待企业补充材料")
    assert out.state == "suspended"
    assert effects(out) == [("pause", "reply")]
    assert out.timeline.note == "等待企业补充材料"
    assert event_types(out)[0] == _transition_event(spec, "suspend", "suspended")


def test_resume_resumes_the_reply_deadline(engine: Engine, spec: WorkflowSpec) -> None:
    out = fire(engine, snap("suspended"), "resume", GXJ)
    assert out.state == "in_progress"
    assert effects(out) == [("resume", "reply")]
    assert event_types(out)[0] == _transition_event(spec, "resume", "in_progress")


# --- reply, rate, auto_close ------------------------------------------------------------------


@pytest.mark.parametrize("resolved", [True, False])
def test_reply_records_whether_it_is_resolved_and_starts_the_feedback_deadline(
    engine: Engine, resolved: bool
) -> None:
    out = fire(
        engine, snap("in_progress"), "reply", GXJ, content="已协调供电局增容", resolved=resolved
    )
    assert out.state == "replied"
    assert out.changes["resolved"] is resolved
    assert effects(out) == [("stop", "reply", "met"), ("start", "feedback")]
    assert out.timeline.note == "已协调供电局增容"
    assert out.timeline.data == {"resolved": resolved}


@pytest.mark.parametrize(
    ("state", "trigger", "actor", "payload", "field"),
    [
        ("in_progress", "reply", GXJ, {"content": "答复"}, "resolved"),
        ("in_progress", "reply", GXJ, {"resolved": True}, "content"),
        ("dispatched", "merge", DISPATCHER, {"note": "dup"}, "target_id"),
        ("in_progress", "request_extension", GXJ, {"reason": "r"}, "extend_by"),
        ("in_progress", "decide_extension", SUPERVISOR, {"note": "ok"}, "approved"),
        ("awaiting_dispatch", "reject", DISPATCHER, {}, "reason"),
        ("dispatched", "return", GXJ, {"note": "not ours"}, "reason"),
    ],
)
def test_an_action_missing_a_required_field_is_refused_naming_the_field(
    engine: Engine, state: str, trigger: str, actor: Actor, payload: dict[str, Any], field: str
) -> None:
    s = snap(
        state, pending_extension={"extend_by": "1 day"} if trigger == "decide_extension" else None
    )
    with pytest.raises((Conflict, InvalidInput)) as caught:
        fire(engine, s, trigger, actor, **payload)
    assert field in caught.value.detail


@pytest.mark.parametrize(
    ("state", "trigger", "actor"),
    [("awaiting_dispatch", "reject", DISPATCHER), ("dispatched", "return", GXJ)],
)
def test_a_reason_given_together_with_a_note_is_kept_on_the_timeline(
    engine: Engine, state: str, trigger: str, actor: Actor
) -> None:
    out = fire(engine, snap(state), trigger, actor, reason="属于诉讼事项", note="见附件")
    tl = out.timeline
    kept = [tl.note, tl.data.get("reason")]
    assert "属于诉讼事项" in kept
    assert "见附件" in [tl.note, tl.data.get("note")]
    assert "属于诉讼事项" in out.events[0].data.values()


@pytest.mark.parametrize("rating", ["very_satisfied", "satisfied", "basically_satisfied"])
def test_a_satisfied_rating_closes_the_request(
    engine: Engine, spec: WorkflowSpec, rating: str | None
) -> None:
    s = snap("replied", resolved=True)
    out = fire(engine, s, "rate", INTEGRATION, rating=rating, note="感谢")
    assert out.state == "closed"
    assert out.changes["rating"] == rating
    assert out.changes["closed_at"] == NOW
    assert "reopen_count" not in out.changes
    assert effects(out) == [("stop", "feedback", "met")]
    types = event_types(out)
    assert types[0] == _transition_event(spec, "rate", "closed")
    (closed,) = [e for e in out.events if e.type == "request.closed"]
    assert closed.data == {"resolved": True, "rating": rating}


@pytest.mark.parametrize("rating", ["dissatisfied", "very_dissatisfied"])
def test_an_unsatisfied_rating_reopens_it_with_a_new_reply_deadline(
    engine: Engine, rating: str | None
) -> None:
    s = snap("replied", resolved=True)
    out = fire(engine, s, "rate", INTEGRATION, rating=rating)
    assert out.state == "in_progress"
    assert out.changes["reopen_count"] == 1
    assert out.changes["rating"] == rating
    assert out.changes["resolved"] is None
    assert effects(out) == [("stop", "feedback", "met"), ("start", "reply")]
    (reopened,) = [e for e in out.events if e.type == "request.reopened"]
    assert reopened.data["reopen_count"] == 1


def test_past_the_reopen_limit_an_unsatisfied_rating_closes_it_unresolved_and_escalates(
    engine: Engine,
) -> None:
    s = snap("replied", resolved=True, reopen_count=1, escalation_level=0)
    out = fire(engine, s, "rate", DISPATCHER, rating="very_dissatisfied", note="电话回访")
    assert out.state == "closed"
    assert out.changes["resolved"] is False
    assert out.changes["rating"] == "very_dissatisfied"
    assert out.changes["escalation_level"] == 1
    assert "reopen_count" not in out.changes
    types = event_types(out)
    assert "request.escalated" in types and "request.closed" in types
    (closed,) = [e for e in out.events if e.type == "request.closed"]
    assert closed.data == {"resolved": False, "rating": "very_dissatisfied"}


def test_the_reopen_limit_comes_from_the_rules() -> None:
    generous = make_engine({"return_escalate_after": 2, "reopen_limit": 3})
    s = snap("replied", reopen_count=2)
    assert fire(generous, s, "rate", INTEGRATION, rating="dissatisfied").state == "in_progress"
    s = snap("replied", reopen_count=3)
    assert fire(generous, s, "rate", INTEGRATION, rating="dissatisfied").state == "closed"


def test_reopening_repeats_until_the_limit_then_closes(engine: Engine) -> None:
    s = snap("in_progress")
    states = []
    for _ in range(3):
        s = apply(s, fire(engine, s, "reply", GXJ, content="c", resolved=True))
        s = apply(s, fire(engine, s, "rate", INTEGRATION, rating="dissatisfied"))
        states.append(s.state)
        if s.state == "closed":
            break
    assert states == ["in_progress", "closed"]  # reopen_limit 1: one reopen, then closed
    assert s.reopen_count == 1
    assert s.resolved is False
    assert s.escalation_level == 1


@pytest.mark.parametrize("rating", ["meh", None, "SATISFIED"])
def test_a_rating_outside_the_five_levels_is_refused(engine: Engine, rating: str | None) -> None:
    with pytest.raises((Conflict, InvalidInput)) as caught:
        fire(engine, snap("replied"), "rate", INTEGRATION, rating=rating)
    assert "rating" in caught.value.detail


def test_auto_close_closes_unrated_when_the_feedback_deadline_passes(
    engine: Engine, spec: WorkflowSpec
) -> None:
    out = fire(engine, snap("replied", resolved=True), "auto_close", SYSTEM)
    assert out.state == "closed"
    assert "rating" not in out.changes
    assert out.changes["closed_at"] == NOW
    assert effects(out) == [("stop", "feedback", "met")]
    assert event_types(out)[0] == _transition_event(spec, "auto_close", "closed")
    (closed,) = [e for e in out.events if e.type == "request.closed"]
    assert closed.data == {"resolved": True, "rating": None}


# --- reject and merge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "stopped"),
    [("submitted", []), ("awaiting_dispatch", [("stop", "dispatch", "cancelled")])],
)
def test_reject_closes_it_and_cancels_the_running_deadline(
    engine: Engine, spec: WorkflowSpec, state: str, stopped: list[tuple[str, ...]]
) -> None:
    out = fire(engine, Snapshot(state), "reject", DISPATCHER, reason="属于诉讼事项")
    assert out.state == "rejected"
    assert effects(out) == stopped
    assert out.changes["closed_at"] == NOW
    assert out.timeline.note == "属于诉讼事项"
    assert event_types(out)[0] == _transition_event(spec, "reject", "rejected")


@pytest.mark.parametrize(
    ("state", "stopped"),
    [
        ("submitted", []),
        ("awaiting_dispatch", [("stop", "dispatch", "cancelled")]),
        ("dispatched", [("stop", "sign", "cancelled")]),
    ],
)
def test_merge_points_at_the_target_and_cancels_the_running_deadline(
    engine: Engine, spec: WorkflowSpec, state: str, stopped: list[tuple[str, ...]]
) -> None:
    out = fire(engine, snap(state), "merge", ADMIN, target_id=42)
    assert out.state == "merged"
    assert out.changes["merged_into_id"] == 42
    assert effects(out) == stopped
    assert event_types(out)[0] == _transition_event(spec, "merge", "merged")


# --- urge, supervise, escalate -------------------------------------------------------------------

OPEN = ["submitted", "awaiting_dispatch", "dispatched", "in_progress", "suspended", "replied"]


@pytest.mark.parametrize("state", OPEN)
@pytest.mark.parametrize("actor", [SUPERVISOR, DISPATCHER, ADMIN])
def test_urge_works_in_every_open_state_without_changing_anything(
    engine: Engine, spec: WorkflowSpec, state: str, actor: Actor
) -> None:
    s = snap(state, escalation_level=1)
    out = fire(engine, s, "urge", actor, note="请尽快办理")
    assert out.state == state
    assert out.changes == {}
    assert out.deadlines == ()
    assert event_types(out) == [_transition_event(spec, "urge", None)]
    assert out.events[0].data["note"] == "请尽快办理"
    assert (out.timeline.from_state, out.timeline.to_state) == (state, state)


@pytest.mark.parametrize("state", OPEN)
@pytest.mark.parametrize("actor", [SUPERVISOR, DISPATCHER, ADMIN])
def test_supervise_works_in_every_open_state_and_raises_the_escalation_level(
    engine: Engine, spec: WorkflowSpec, state: str, actor: Actor
) -> None:
    s = snap(state, escalation_level=1)
    out = fire(engine, s, "supervise", actor, note="列入督办")
    assert out.state == state
    assert out.changes == {"escalation_level": 2}
    assert out.deadlines == ()
    types = event_types(out)
    assert types[0] == _transition_event(spec, "supervise", None)
    assert "request.escalated" in types


def test_supervise_may_raise_to_at_least_a_named_level(engine: Engine) -> None:
    out = fire(engine, snap("in_progress", escalation_level=1), "supervise", SUPERVISOR, level=3)
    assert out.changes["escalation_level"] == 3
    out = fire(engine, snap("in_progress", escalation_level=2), "supervise", SUPERVISOR, level=1)
    assert out.changes["escalation_level"] == 3  # never lowers: one above the current


def test_levels_are_rungs_never_above_the_ladders_top(engine: Engine) -> None:
    top = RULES["ladder_top"]
    out = fire(engine, snap("in_progress", escalation_level=top), "supervise", SUPERVISOR)
    assert out.changes["escalation_level"] == top
    (escalated,) = [e for e in out.events if e.type == "request.escalated"]
    assert escalated.data["level"] == top  # a supervision at the top still alerts its rung
    # A later deadline's ladder raises the level only when it reaches a higher rung.
    out = fire(engine, snap("in_progress", escalation_level=2), "escalate", SYSTEM, level=1)
    assert out.changes["escalation_level"] == 2
    # Old rows above the top come back to it.
    out = fire(engine, snap("in_progress", escalation_level=6), "escalate", SYSTEM, level=1)
    assert out.changes["escalation_level"] == top


@pytest.mark.parametrize("state", OPEN)
def test_escalate_raises_the_level_in_every_open_state_without_changing_state(
    engine: Engine, spec: WorkflowSpec, state: str
) -> None:
    out = fire(engine, snap(state, escalation_level=2), "escalate", SYSTEM, level=3)
    assert out.state == state
    assert out.changes["escalation_level"] == 3
    assert out.deadlines == ()
    types = event_types(out)
    assert types[0] == _transition_event(spec, "escalate", None)
    assert "request.escalated" in types


# --- timeline drafts ---------------------------------------------------------------------------------


def test_the_timeline_draft_carries_action_states_actor_role_time_and_note(engine: Engine) -> None:
    later = NOW + timedelta(hours=3)
    out = fire(engine, snap("dispatched"), "sign", GXJ, now=later, note="已签收")
    tl = out.timeline
    assert tl.action == "sign"
    assert (tl.from_state, tl.to_state) == ("dispatched", "in_progress")
    assert (tl.actor, tl.role) == ("user:gxj", "department")
    assert tl.at == later
    assert tl.note == "已签收"
    assert tl.data == {}


@pytest.mark.parametrize(
    ("trigger", "state", "actor", "payload", "note"),
    [
        ("urge", "in_progress", SUPERVISOR, {"note": "请尽快"}, "请尽快"),
        ("return", "dispatched", GXJ, {"reason": "非本部门"}, "非本部门"),
        ("reply", "in_progress", GXJ, {"content": "已解决", "resolved": True}, "已解决"),
        ("urge", "in_progress", SUPERVISOR, {}, None),
        ("urge", "in_progress", SUPERVISOR, {"note": ""}, None),
    ],
)
def test_the_timeline_note_comes_from_note_reason_or_content(
    engine: Engine,
    trigger: str,
    state: str,
    actor: Actor,
    payload: dict[str, Any],
    note: str | None,
) -> None:
    out = fire(engine, snap(state), trigger, actor, **payload)
    assert out.timeline.note == note
    assert not {"note", "reason", "content"} & set(out.timeline.data)


def test_the_timeline_data_keeps_the_other_fields_but_drops_empty_ones(engine: Engine) -> None:
    out = fire(
        engine,
        Snapshot("awaiting_dispatch"),
        "dispatch",
        DISPATCHER,
        lead_department="GXJ",
        co_departments=[],
        note=None,
    )
    assert out.timeline.data == {"lead_department": "GXJ", "co_departments": []}
    assert out.timeline.note is None


def test_the_first_event_describes_the_state_change(engine: Engine) -> None:
    out = fire(engine, snap("dispatched"), "sign", GXJ, note="ok")
    first = out.events[0]
    assert first.data["action"] == "sign"
    assert first.data["from_state"] == "dispatched"
    assert first.data["to_state"] == "in_progress"
    assert first.data["note"] == "ok"


def test_firing_does_not_touch_the_snapshot_it_was_given(engine: Engine) -> None:
    s = snap("replied", reopen_count=0)
    fire(engine, s, "rate", INTEGRATION, rating="dissatisfied")
    assert s == snap("replied", reopen_count=0)


# --- the whole life ----------------------------------------------------------------------------------


def test_a_full_life_from_submit_to_closed(engine: Engine) -> None:
    s = Snapshot(engine.start(NAME, VERSION, actor=INTEGRATION, now=NOW, data={}).state)
    path = [s.state]
    steps: list[tuple[str, Actor, dict[str, Any]]] = [
        ("route", SYSTEM, {}),
        ("dispatch", DISPATCHER, {"lead_department": "GXJ"}),
        ("return", GXJ, {"reason": "非本部门"}),
        ("dispatch", DISPATCHER, {"lead_department": "GXJ", "co_departments": ["STREET"]}),
        ("sign", GXJ, {}),
        ("request_extension", GXJ, {"extend_by": "2 working days", "reason": "r"}),
        ("decide_extension", SUPERVISOR, {"approved": True}),
        ("suspend", GXJ, {"reason": "等材料"}),
        ("resume", GXJ, {}),
        ("urge", SUPERVISOR, {}),
        ("reply", GXJ, {"content": "c", "resolved": False}),
        ("rate", INTEGRATION, {"rating": "dissatisfied"}),
        ("reply", GXJ, {"content": "c2", "resolved": True}),
        ("rate", INTEGRATION, {"rating": "satisfied"}),
    ]
    for trigger, actor, payload in steps:
        out = engine.fire(NAME, VERSION, s, trigger, actor=actor, payload=payload, now=NOW)
        assert out.timeline.from_state == s.state
        s = apply(s, out)
        path.append(s.state)
    assert path == [
        "submitted",
        "awaiting_dispatch",
        "dispatched",
        "awaiting_dispatch",
        "dispatched",
        "in_progress",
        "in_progress",
        "in_progress",
        "suspended",
        "in_progress",
        "in_progress",
        "replied",
        "in_progress",
        "replied",
        "closed",
    ]
    assert (s.return_count, s.reopen_count, s.rating, s.resolved) == (1, 1, "satisfied", True)
    assert engine.allowed(NAME, VERSION, s, ADMIN) == []
