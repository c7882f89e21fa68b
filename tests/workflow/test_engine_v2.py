"""Workflow version 2 through the engine alone: the guards of supervision (an extension or a
suspension only while the reply deadline runs and is not yet due, and within the counts of
the rules), suspensions asked and decided or at once, the system's resumption, the
enterprise's own `resolved` on a rating, and levels that are rungs."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import pytest

from huying.api.problems import status_of
from huying.errors import Forbidden, GuardRefused, MissingFields, NotAllowedNow
from huying.workflow.context import Actor, Clock, Outcome, Snapshot
from huying.workflow.engine import Engine

from .support import (
    ADMIN,
    DISPATCHER,
    GXJ,
    INTEGRATION,
    NAME,
    NOW,
    RSJ,
    SUPERVISOR,
    SYSTEM,
    apply,
    effects,
    event_types,
    make_engine,
    snap,
)

V2 = 2
DUE = NOW + timedelta(days=5)  # the reply deadline's due instant in these tests
SUSPEND = {
    "reason_code": "awaiting_materials",
    "reason": "等待企业补充材料",
    "length": "3 working days",
}
EXTEND = {"extend_by": "2 working days", "reason": "需现场勘查"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


def fire2(
    engine: Engine,
    snapshot: Snapshot,
    trigger: str,
    actor: Actor,
    now: datetime = NOW,
    **payload: Any,
) -> Outcome:
    """Fire on version 2 (support.fire fires on version 1)."""
    return engine.fire(NAME, V2, snapshot, trigger, actor=actor, payload=payload, now=now)


def working(**fields: Any) -> Snapshot:
    """A request in progress whose reply deadline runs and falls due at DUE."""
    clock = Clock(fields.pop("status", "running"), DUE, fields.pop("extension_count", 0))
    return snap("in_progress", clocks={"reply": clock}, **fields)


def refused(
    engine: Engine, snapshot: Snapshot, trigger: str, actor: Actor, now: datetime, **payload: Any
) -> GuardRefused:
    """The GuardRefused (409) that firing raises."""
    with pytest.raises(GuardRefused) as info:
        fire2(engine, snapshot, trigger, actor, now, **payload)
    assert status_of(info.value)[0] == 409
    return info.value


def pending_suspension(at: datetime = NOW) -> dict[str, Any]:
    return {**SUSPEND, "requested_by": GXJ.id, "requested_at": at.isoformat()}


def pending_extension(at: datetime = NOW) -> dict[str, Any]:
    return {**EXTEND, "requested_by": GXJ.id, "requested_at": at.isoformat()}


# --- request_extension: in time, within the count -------------------------------------------


def test_an_extension_asked_before_the_due_instant_waits_for_a_decision(engine: Engine) -> None:
    out = fire2(engine, working(), "request_extension", GXJ, DUE - timedelta(seconds=1), **EXTEND)
    assert out.state == "in_progress"
    assert out.changes["pending_extension"] == {
        "extend_by": "2 working days",
        "reason": "需现场勘查",
        "requested_by": GXJ.id,
        "requested_at": (DUE - timedelta(seconds=1)).isoformat(),
    }
    assert out.deadlines == ()
    assert event_types(out) == ["request.extension_requested"]


@pytest.mark.parametrize("late", [timedelta(0), timedelta(hours=1)], ids=["at_due", "after_due"])
def test_an_extension_asked_at_or_after_the_due_instant_is_refused(
    engine: Engine, late: timedelta
) -> None:
    err = refused(engine, working(), "request_extension", GXJ, DUE + late, **EXTEND)
    assert err.refusals == ("extension_in_time",)
    assert "the deadline has passed; an extension must be asked before it" in err.detail
    assert "request_extension" not in err.extra["allowed"]


@pytest.mark.parametrize(
    "snapshot",
    [
        working(status="missed"),  # the worker already marked it
        snap("in_progress"),  # no reply deadline open at all
    ],
    ids=["missed", "no_reply_clock"],
)
def test_an_extension_of_a_deadline_that_does_not_run_is_refused(
    engine: Engine, snapshot: Snapshot
) -> None:
    err = refused(engine, snapshot, "request_extension", GXJ, NOW, **EXTEND)
    assert err.refusals == ("extension_in_time",)


def test_an_extension_while_suspended_is_not_possible_on_version_2(engine: Engine) -> None:
    paused = snap("suspended", clocks={"reply": Clock("paused", DUE)})
    with pytest.raises(NotAllowedNow):
        fire2(engine, paused, "request_extension", GXJ, NOW, **EXTEND)


def test_the_extension_count_comes_from_the_rules(engine: Engine) -> None:
    once = working(extension_count=1)
    err = refused(engine, once, "request_extension", GXJ, NOW, **EXTEND)
    assert err.refusals == ("under_extension_limit",)
    assert "this deadline has had as many extensions as allowed" in err.detail
    twice = make_engine({"extension_max_count": 2})
    assert fire2(twice, once, "request_extension", GXJ, NOW, **EXTEND).changes["pending_extension"]
    err = refused(twice, working(extension_count=2), "request_extension", GXJ, NOW, **EXTEND)
    assert err.refusals == ("under_extension_limit",)


def test_a_second_extension_request_waits_for_the_first_decision(engine: Engine) -> None:
    err = refused(
        engine,
        working(pending_extension=pending_extension()),
        "request_extension",
        GXJ,
        NOW,
        **EXTEND,
    )
    assert err.refusals == ("no_extension_pending",)
    assert "an extension request is already pending a decision" in err.detail


def test_version_1_still_takes_an_extension_after_the_due_instant(engine: Engine) -> None:
    """The contrast: version 1's request_extension has no guard of time."""
    out = engine.fire(
        NAME,
        1,
        working(status="missed"),
        "request_extension",
        actor=GXJ,
        payload=EXTEND,
        now=DUE + timedelta(days=1),
    )
    assert out.changes["pending_extension"]["extend_by"] == "2 working days"


# --- decide_extension -------------------------------------------------------------------


def test_an_approval_extends_the_reply_deadline_and_says_when_it_was_asked(
    engine: Engine,
) -> None:
    asked = NOW + timedelta(hours=1)
    out = fire2(
        engine,
        working(pending_extension=pending_extension(asked)),
        "decide_extension",
        SUPERVISOR,
        DUE + timedelta(hours=3),  # decided after the due instant: allowed
        approved=True,
    )
    assert out.changes["pending_extension"] is None
    (effect,) = out.deadlines
    assert (effect.op, effect.kind, effect.by, effect.asked_at) == (
        "extend",
        "reply",
        "2 working days",
        asked,
    )
    assert out.timeline.data["extend_by"] == "2 working days"


def test_an_approval_may_grant_less_than_asked_and_a_refusal_moves_nothing(
    engine: Engine,
) -> None:
    waiting = working(pending_extension=pending_extension())
    less = fire2(
        engine, waiting, "decide_extension", ADMIN, NOW, approved=True, extend_by="1 working day"
    )
    assert effects(less) == [("extend", "reply", "1 working day")]
    no = fire2(engine, waiting, "decide_extension", SUPERVISOR, NOW, approved=False)
    assert no.deadlines == ()
    assert no.changes["pending_extension"] is None
    assert no.timeline.data["extend_by"] is None


# --- request_suspension: asked, in time, within the count --------------------------------


def test_a_suspension_asked_in_time_waits_for_a_decision_while_the_clock_runs(
    engine: Engine,
) -> None:
    out = fire2(engine, working(), "request_suspension", GXJ, DUE - timedelta(minutes=1), **SUSPEND)
    assert out.state == "in_progress"
    assert out.deadlines == ()  # the reply clock is not paused while the decision waits
    assert out.changes["pending_suspension"] == {
        "reason_code": "awaiting_materials",
        "reason": "等待企业补充材料",
        "length": "3 working days",
        "requested_by": GXJ.id,
        "requested_at": (DUE - timedelta(minutes=1)).isoformat(),
    }
    assert "suspension_count" not in out.changes  # counted when it starts
    assert event_types(out) == ["request.suspension_requested"]


@pytest.mark.parametrize("late", [timedelta(0), timedelta(days=2)], ids=["at_due", "after_due"])
def test_a_suspension_asked_at_or_after_the_due_instant_is_refused(
    engine: Engine, late: timedelta
) -> None:
    err = refused(engine, working(), "request_suspension", GXJ, DUE + late, **SUSPEND)
    assert err.refusals == ("suspension_in_time",)
    assert "an overdue request cannot be suspended" in err.detail


def test_an_overdue_request_cannot_be_suspended_even_before_a_new_clock_is_due(
    engine: Engine,
) -> None:
    err = refused(engine, working(status="missed"), "request_suspension", GXJ, NOW, **SUSPEND)
    assert err.refusals == ("suspension_in_time",)


def test_the_suspension_count_comes_from_the_rules(engine: Engine) -> None:
    err = refused(engine, working(suspension_count=2), "request_suspension", GXJ, NOW, **SUSPEND)
    assert err.refusals == ("under_suspension_limit",)
    assert "the request has had as many suspensions as allowed" in err.detail
    assert fire2(engine, working(suspension_count=1), "request_suspension", GXJ, NOW, **SUSPEND)
    three = make_engine({"suspension_max_count": 3})
    out = fire2(three, working(suspension_count=2), "request_suspension", GXJ, NOW, **SUSPEND)
    assert out.changes["pending_suspension"]["length"] == "3 working days"
    none = make_engine({"suspension_max_count": 0})
    err = refused(none, working(), "request_suspension", GXJ, NOW, **SUSPEND)
    assert err.refusals == ("under_suspension_limit",)


def test_a_second_suspension_request_waits_for_the_first_decision(engine: Engine) -> None:
    err = refused(
        engine,
        working(pending_suspension=pending_suspension()),
        "request_suspension",
        GXJ,
        NOW,
        **SUSPEND,
    )
    assert err.refusals == ("no_suspension_pending",)
    assert "a suspension request is already pending a decision" in err.detail


def test_only_the_lead_department_asks_for_a_suspension(engine: Engine) -> None:
    for who in (RSJ, SUPERVISOR, INTEGRATION):
        with pytest.raises(Forbidden):
            fire2(engine, working(), "request_suspension", who, NOW, **SUSPEND)


def test_a_suspension_needs_its_fields(engine: Engine) -> None:
    with pytest.raises(MissingFields) as info:
        fire2(engine, working(), "request_suspension", GXJ, NOW, reason="r")
    assert set(info.value.fields) == {"reason_code", "length"}


# --- suspension without approval ------------------------------------------------------------


def test_without_approval_a_suspension_starts_at_once(engine: Engine) -> None:
    at_once = make_engine({"suspension_requires_approval": False})
    out = fire2(at_once, working(suspension_count=1), "request_suspension", GXJ, NOW, **SUSPEND)
    assert out.state == "suspended"
    assert effects(out) == [("pause", "reply"), ("start", "suspension")]
    start = out.deadlines[-1]
    assert start.by == "3 working days"  # the asked length replaces any configured limit
    assert out.changes["pending_suspension"] is None
    assert out.changes["suspension_count"] == 2
    assert out.changes["suspension"] == {
        "reason_code": "awaiting_materials",
        "reason": "等待企业补充材料",
        "length": "3 working days",
        "requested_by": GXJ.id,
        "since": NOW.isoformat(),
        "approved_by": None,
    }
    assert event_types(out) == ["request.suspended"]


def test_without_approval_the_guards_of_time_and_count_still_hold(engine: Engine) -> None:
    at_once = make_engine({"suspension_requires_approval": False})
    err = refused(at_once, working(), "request_suspension", GXJ, DUE, **SUSPEND)
    assert "suspension_in_time" in err.refusals
    err = refused(at_once, working(suspension_count=2), "request_suspension", GXJ, NOW, **SUSPEND)
    assert "under_suspension_limit" in err.refusals


def test_with_approval_the_request_does_not_suspend_at_once(engine: Engine) -> None:
    out = fire2(engine, working(), "request_suspension", GXJ, NOW, **SUSPEND)
    assert out.state == "in_progress"
    assert "suspension" not in out.changes


# --- decide_suspension ------------------------------------------------------------------------


@pytest.mark.parametrize("who", [SUPERVISOR, DISPATCHER, ADMIN], ids=lambda a: a.role)
def test_an_approved_suspension_pauses_the_reply_clock_and_starts_its_timer(
    engine: Engine, who: Actor
) -> None:
    asked_at = NOW - timedelta(hours=2)
    waiting = working(pending_suspension=pending_suspension(asked_at), suspension_count=1)
    out = fire2(engine, waiting, "decide_suspension", who, NOW, approved=True, note="同意")
    assert (out.from_state, out.state) == ("in_progress", "suspended")
    assert effects(out) == [("pause", "reply"), ("start", "suspension")]
    assert out.deadlines[-1].by == "3 working days"
    assert out.changes["pending_suspension"] is None
    assert out.changes["suspension_count"] == 2
    assert out.changes["suspension"]["approved_by"] == who.id
    assert out.changes["suspension"]["requested_by"] == GXJ.id
    assert out.changes["suspension"]["since"] == NOW.isoformat()
    assert out.timeline.note == "同意"
    assert event_types(out) == ["request.suspended"]


def test_a_refused_suspension_moves_nothing(engine: Engine) -> None:
    waiting = working(pending_suspension=pending_suspension())
    out = fire2(
        engine, waiting, "decide_suspension", SUPERVISOR, NOW, approved=False, note="材料齐全"
    )
    assert out.state == "in_progress"
    assert out.deadlines == ()
    assert out.changes == {"pending_suspension": None}
    assert out.timeline.data["requested"]["reason_code"] == "awaiting_materials"
    assert event_types(out) == ["request.suspension_refused"]


def test_a_suspension_cannot_be_approved_once_the_reply_deadline_passed(engine: Engine) -> None:
    waiting = working(pending_suspension=pending_suspension())
    err = refused(engine, waiting, "decide_suspension", SUPERVISOR, DUE, approved=True)
    assert "suspension_in_time" in err.refusals
    assert "an overdue request cannot be suspended" in err.detail
    # it can still be refused, which clears the request
    out = fire2(engine, waiting, "decide_suspension", SUPERVISOR, DUE, approved=False)
    assert out.changes == {"pending_suspension": None}


def test_there_is_nothing_to_decide_without_a_pending_suspension(engine: Engine) -> None:
    for approved in (True, False):
        err = refused(engine, working(), "decide_suspension", SUPERVISOR, NOW, approved=approved)
        assert "suspension_pending" in err.refusals
        assert "no suspension request is pending" in err.detail


def test_a_department_does_not_decide_its_own_suspension(engine: Engine) -> None:
    with pytest.raises(Forbidden):
        fire2(
            engine,
            working(pending_suspension=pending_suspension()),
            "decide_suspension",
            GXJ,
            NOW,
            approved=True,
        )


# --- resume ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [SYSTEM, GXJ], ids=["system", "lead_department"])
def test_resume_restarts_the_reply_clock_and_ends_the_timer(engine: Engine, who: Actor) -> None:
    suspended = snap(
        "suspended",
        suspension_count=1,
        clocks={"reply": Clock("paused", DUE), "suspension": Clock("running", NOW)},
    )
    out = fire2(engine, suspended, "resume", who, NOW)
    assert (out.from_state, out.state) == ("suspended", "in_progress")
    assert effects(out) == [("resume", "reply"), ("stop", "suspension", "met")]
    assert out.changes["suspension"] is None
    assert (out.timeline.actor, out.timeline.role) == (who.id, who.role)
    assert event_types(out) == ["request.resumed"]


@pytest.mark.parametrize("who", [RSJ, INTEGRATION], ids=["other_department", "integration"])
def test_only_the_lead_or_the_system_resumes(engine: Engine, who: Actor) -> None:
    with pytest.raises(Forbidden):
        fire2(engine, snap("suspended"), "resume", who, NOW)


def test_the_lead_department_is_offered_resume_while_suspended(engine: Engine) -> None:
    """`resume` is the lead department's as well as the system's: the actions offered to the
    department (API `/actions`, the console's buttons) must list it, as firing accepts it."""
    assert fire2(engine, snap("suspended"), "resume", GXJ, NOW).state == "in_progress"
    assert engine.allowed(NAME, V2, snap("suspended"), GXJ, now=NOW) == ["resume"]
    assert "resume" not in engine.allowed(NAME, V2, snap("suspended"), SUPERVISOR, now=NOW)


# --- rate: the enterprise's own resolved ---------------------------------------------------


def test_an_integration_must_say_whether_it_was_resolved(engine: Engine) -> None:
    with pytest.raises(MissingFields) as info:
        fire2(engine, snap("replied", resolved=True), "rate", INTEGRATION, NOW, rating="satisfied")
    assert info.value.fields == ("resolved",)
    assert status_of(info.value)[0] == 422


@pytest.mark.parametrize("answer", [True, False])
def test_the_enterprise_answer_is_stored_beside_the_rating(engine: Engine, answer: bool) -> None:
    out = fire2(
        engine,
        snap("replied", resolved=True),
        "rate",
        INTEGRATION,
        NOW,
        rating="satisfied",
        resolved=answer,
    )
    assert out.state == "closed"
    assert out.changes["rating"] == "satisfied"
    assert out.changes["enterprise_resolved"] is answer
    assert "resolved" not in out.changes  # the department's claim stays as it was


@pytest.mark.parametrize("who", [DISPATCHER, ADMIN], ids=lambda a: a.role)
def test_staff_recording_a_phone_follow_up_may_leave_resolved_out(
    engine: Engine, who: Actor
) -> None:
    out = fire2(
        engine, snap("replied", resolved=True), "rate", who, NOW, rating="basically_satisfied"
    )
    assert out.state == "closed"
    assert "enterprise_resolved" not in out.changes
    with_answer = fire2(
        engine, snap("replied"), "rate", who, NOW, rating="satisfied", resolved=False
    )
    assert with_answer.changes["enterprise_resolved"] is False


def test_version_1_takes_an_integration_rating_without_resolved(engine: Engine) -> None:
    out = engine.fire(
        NAME,
        1,
        snap("replied"),
        "rate",
        actor=INTEGRATION,
        payload={"rating": "satisfied"},
        now=NOW,
    )
    assert out.state == "closed"
    assert "enterprise_resolved" not in out.changes


# --- allowed at an instant --------------------------------------------------------------


def test_allowed_hides_extension_and_suspension_once_the_reply_clock_is_due(
    engine: Engine,
) -> None:
    before = engine.allowed(NAME, V2, working(), GXJ, now=DUE - timedelta(seconds=1))
    assert {"request_extension", "request_suspension", "reply"} <= set(before)
    at_due = engine.allowed(NAME, V2, working(), GXJ, now=DUE)
    assert "request_extension" not in at_due
    assert "request_suspension" not in at_due
    assert "reply" in at_due
    # without an instant, guards about time pass
    assert "request_extension" in engine.allowed(NAME, V2, working(), GXJ)


def test_allowed_hides_what_the_counts_and_pending_requests_forbid(engine: Engine) -> None:
    spent = working(extension_count=1, suspension_count=2)
    allowed = engine.allowed(NAME, V2, spent, GXJ, now=NOW)
    assert "request_extension" not in allowed
    assert "request_suspension" not in allowed
    waiting = working(pending_suspension=pending_suspension())
    assert "request_suspension" not in engine.allowed(NAME, V2, waiting, GXJ, now=NOW)
    assert "decide_suspension" in engine.allowed(NAME, V2, waiting, SUPERVISOR, now=NOW)
    assert "decide_suspension" not in engine.allowed(NAME, V2, working(), SUPERVISOR, now=NOW)


# --- levels are rungs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "rung", "expected"),
    [
        (0, 1, 1),
        (1, 2, 2),
        (2, 1, 2),  # a lower rung of a later deadline does not lower it
        (3, 1, 3),
        (3, 3, 3),
    ],
)
def test_a_rung_reached_sets_the_level_to_it_if_higher(
    engine: Engine, level: int, rung: int, expected: int
) -> None:
    out = fire2(
        engine,
        working(escalation_level=level),
        "escalate",
        SYSTEM,
        NOW,
        deadline="reply",
        level=rung,
        rung=rung,
    )
    assert out.changes["escalation_level"] == expected
    assert out.timeline.data["level"] == expected
    (escalated,) = out.events
    assert escalated.type == "request.escalated"
    assert escalated.data["level"] == expected


def test_a_rung_above_the_top_stops_at_the_top(engine: Engine) -> None:
    out = fire2(engine, working(escalation_level=2), "escalate", SYSTEM, NOW, level=7)
    assert out.changes["escalation_level"] == 3  # RULES ladder_top


@pytest.mark.parametrize(
    ("level", "payload", "expected"),
    [
        (0, {}, 1),
        (2, {}, 3),
        (3, {}, 3),  # at the top it stays at the top
        (0, {"level": 2}, 2),
        (1, {"level": 9}, 3),  # the API refuses it first (422); the engine caps it anyway
        (2, {"level": 1}, 3),  # an explicit lower level still raises by one
    ],
)
def test_supervise_raises_by_one_or_to_a_level_never_above_the_top(
    engine: Engine, level: int, payload: dict[str, Any], expected: int
) -> None:
    out = fire2(engine, working(escalation_level=level), "supervise", SUPERVISOR, NOW, **payload)
    assert out.changes["escalation_level"] == expected
    escalated = [e for e in out.events if e.type == "request.escalated"]
    assert [(e.data["level"], e.data["previous_level"]) for e in escalated] == [(expected, level)]


def test_a_whole_v2_life_with_a_suspension(engine: Engine) -> None:
    """Asked, approved, resumed by the system, replied, rated by the enterprise."""
    s = snap("dispatched")
    s = apply(s, fire2(engine, s, "sign", GXJ, NOW))
    s = dataclasses.replace(s, clocks={"reply": Clock("running", DUE)})  # what the planner starts
    s = apply(s, fire2(engine, s, "request_suspension", GXJ, NOW, **SUSPEND))
    assert s.pending_suspension is not None
    s = apply(s, fire2(engine, s, "decide_suspension", DISPATCHER, NOW, approved=True))
    assert (s.state, s.suspension_count, s.pending_suspension) == ("suspended", 1, None)
    s = apply(s, fire2(engine, s, "resume", SYSTEM, NOW + timedelta(days=3)))
    s = apply(s, fire2(engine, s, "reply", GXJ, NOW, content="已办", resolved=True))
    out = fire2(engine, s, "rate", INTEGRATION, NOW, rating="very_satisfied", resolved=True)
    assert out.state == "closed"
    assert out.changes["enterprise_resolved"] is True
