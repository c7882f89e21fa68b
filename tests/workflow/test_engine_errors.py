"""What the engine refuses, and how: Conflict for the state, Forbidden for the role or
department, NotFound for what does not exist; each says which actions are allowed."""

from __future__ import annotations

from typing import Any

import pytest

from huying.errors import (
    Conflict,
    Forbidden,
    GuardRefused,
    HuyingError,
    MissingFields,
    NotAllowedNow,
    NotFound,
    UnknownAction,
)
from huying.workflow.context import Actor, Snapshot
from huying.workflow.engine import Engine

from .support import (
    ADMIN,
    DISPATCHER,
    GXJ,
    INTEGRATION,
    NAME,
    NOW,
    RSJ,
    STREET,
    SUPERVISOR,
    SYSTEM,
    VERSION,
    fire,
    make_engine,
    snap,
)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


# --- Conflict: the state does not allow it -------------------------------------------


@pytest.mark.parametrize(
    ("state", "trigger", "actor"),
    [
        ("submitted", "sign", GXJ),
        ("awaiting_dispatch", "sign", GXJ),
        ("in_progress", "sign", GXJ),
        ("dispatched", "dispatch", DISPATCHER),
        ("in_progress", "resume", GXJ),
        ("suspended", "suspend", GXJ),
        ("suspended", "reply", GXJ),
        ("in_progress", "rate", INTEGRATION),
        ("in_progress", "reject", DISPATCHER),
        ("in_progress", "merge", DISPATCHER),
        ("replied", "route", SYSTEM),
        ("replied", "request_extension", GXJ),
    ],
)
def test_an_action_the_state_does_not_allow_is_a_conflict_listing_the_allowed_ones(
    engine: Engine, state: str, trigger: str, actor: Actor
) -> None:
    s = snap(state)
    with pytest.raises(Conflict) as caught:
        fire(engine, s, trigger, actor)
    assert repr(trigger) in caught.value.detail
    assert repr(state) in caught.value.detail
    assert caught.value.extra["allowed"] == engine.allowed(NAME, VERSION, s, actor)
    assert trigger not in caught.value.extra["allowed"]


def test_the_allowed_list_of_a_conflict_is_for_the_caller(engine: Engine) -> None:
    with pytest.raises(Conflict) as caught:
        fire(engine, snap("in_progress"), "sign", GXJ)
    assert caught.value.extra["allowed"] == ["request_extension", "suspend", "reply"]
    with pytest.raises(Forbidden) as forbidden:  # a supervisor never signs: 403 whatever the state
        fire(engine, snap("in_progress"), "sign", SUPERVISOR)
    assert forbidden.value.extra["allowed"] == ["urge", "supervise"]


@pytest.mark.parametrize("state", ["closed", "rejected", "merged"])
@pytest.mark.parametrize(
    ("trigger", "actor"),
    [("urge", SUPERVISOR), ("supervise", DISPATCHER), ("escalate", SYSTEM), ("rate", INTEGRATION)],
)
def test_nothing_happens_to_a_request_in_a_final_state(
    engine: Engine, state: str, trigger: str, actor: Actor
) -> None:
    with pytest.raises(Conflict) as caught:
        fire(engine, snap(state), trigger, actor)
    assert caught.value.extra["allowed"] == []


def test_a_guard_that_refuses_is_a_conflict_naming_its_reason(engine: Engine) -> None:
    with pytest.raises(Conflict) as caught:
        fire(engine, snap("replied"), "rate", INTEGRATION, rating="unknown")
    detail = caught.value.detail
    assert detail.startswith("action 'rate' refused: ")
    assert "the rating is not in the top three levels" in detail
    assert "the rating is not in the bottom two levels" in detail
    assert detail.count("the rating is not in the bottom two levels") == 1  # said once
    assert caught.value.extra["allowed"] == ["rate"]  # integration may rate, not urge


# --- Forbidden: the role or the department may not ------------------------------------


@pytest.mark.parametrize(
    ("state", "trigger", "actor"),
    [
        ("awaiting_dispatch", "dispatch", GXJ),
        ("awaiting_dispatch", "dispatch", SUPERVISOR),
        ("awaiting_dispatch", "dispatch", INTEGRATION),
        ("submitted", "reject", GXJ),
        ("dispatched", "merge", INTEGRATION),
        ("dispatched", "sign", DISPATCHER),
        ("dispatched", "sign", ADMIN),
        ("in_progress", "reply", SUPERVISOR),
        ("in_progress", "decide_extension", GXJ),
        ("replied", "rate", GXJ),
        ("replied", "rate", SUPERVISOR),
        ("in_progress", "urge", GXJ),
        ("in_progress", "supervise", INTEGRATION),
    ],
)
def test_a_role_that_may_not_take_the_action_is_forbidden(
    engine: Engine, state: str, trigger: str, actor: Actor
) -> None:
    s = snap(state, pending_extension={"extend_by": "1 day"})
    with pytest.raises(Forbidden) as caught:
        fire(engine, s, trigger, actor)
    assert repr(actor.role) in caught.value.detail
    assert repr(trigger) in caught.value.detail
    assert caught.value.extra["allowed"] == engine.allowed(NAME, VERSION, s, actor)


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        ("submitted", "route"),
        ("replied", "auto_close"),
        ("in_progress", "escalate"),
        ("dispatched", "escalate"),
    ],
)
@pytest.mark.parametrize("actor", [ADMIN, DISPATCHER, SUPERVISOR, INTEGRATION, GXJ])
def test_system_actions_are_forbidden_to_people_even_admins(
    engine: Engine, state: str, trigger: str, actor: Actor
) -> None:
    with pytest.raises(Forbidden):
        fire(engine, snap(state), trigger, actor)


def test_an_actor_merely_claiming_the_id_system_is_not_the_system(engine: Engine) -> None:
    impostor = Actor("system", "admin")
    with pytest.raises(Forbidden):
        fire(engine, snap("replied"), "auto_close", impostor)


@pytest.mark.parametrize(
    ("state", "trigger", "payload"),
    [
        ("dispatched", "sign", {}),
        ("dispatched", "return", {"reason": "x"}),
        ("in_progress", "reply", {"content": "c", "resolved": True}),
        ("in_progress", "suspend", {"reason": "x"}),
        ("suspended", "resume", {}),
        ("in_progress", "request_extension", {"extend_by": "1 day", "reason": "r"}),
    ],
)
@pytest.mark.parametrize("actor", [STREET, RSJ], ids=["co_department", "other_department"])
def test_a_department_that_is_not_the_lead_department_is_forbidden(
    engine: Engine, state: str, trigger: str, payload: dict[str, Any], actor: Actor
) -> None:
    with pytest.raises(Forbidden) as caught:
        fire(engine, snap(state), trigger, actor, **payload)
    assert caught.value.extra["allowed"] == []


def test_department_staff_without_a_department_are_not_the_lead(engine: Engine) -> None:
    nobody = Actor("user:x", "department", None)
    with pytest.raises(Forbidden):
        fire(engine, snap("dispatched"), "sign", nobody)


def test_no_department_leads_a_request_that_has_no_lead_department(engine: Engine) -> None:
    with pytest.raises(Forbidden):
        fire(engine, Snapshot("dispatched", lead_department=None), "sign", GXJ)


def test_the_lead_role_follows_the_snapshot_not_the_actor(engine: Engine) -> None:
    led_by_rsj = snap("dispatched", lead_department="RSJ")
    assert fire(engine, led_by_rsj, "sign", RSJ).state == "in_progress"
    with pytest.raises(Forbidden):
        fire(engine, led_by_rsj, "sign", GXJ)


# --- NotFound: what does not exist -------------------------------------------------------


@pytest.mark.parametrize("trigger", ["fly", "delete", "Sign", "to_closed", "trigger", ""])
def test_an_unknown_action_is_not_found(engine: Engine, trigger: str) -> None:
    s = snap("in_progress")
    with pytest.raises(NotFound) as caught:
        fire(engine, s, trigger, GXJ)
    assert repr(trigger) in caught.value.detail
    assert caught.value.extra["allowed"] == engine.allowed(NAME, VERSION, s, GXJ)


def test_an_unknown_action_is_not_found_even_in_a_final_state(engine: Engine) -> None:
    with pytest.raises(NotFound):
        fire(engine, snap("closed"), "fly", ADMIN)


def test_an_unknown_workflow_or_version_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound, match="version 99"):
        engine.fire(NAME, 99, snap("in_progress"), "reply", actor=GXJ, payload={}, now=NOW)
    with pytest.raises(NotFound, match="nope"):
        engine.latest("nope")
    with pytest.raises(NotFound):
        engine.allowed("nope", 1, snap("in_progress"), GXJ)
    with pytest.raises(NotFound):
        engine.start("nope", 1, actor=GXJ, now=NOW, data={})


def test_every_refusal_is_a_huying_error_with_a_detail(engine: Engine) -> None:
    for trigger, actor in (("fly", GXJ), ("sign", GXJ), ("reply", SUPERVISOR)):
        with pytest.raises(HuyingError) as caught:
            fire(engine, snap("in_progress"), trigger, actor)
        assert caught.value.detail
        assert "allowed" in caught.value.extra


# --- check(): the pre-check without guards -------------------------------------------------


def test_check_passes_when_state_and_role_allow_even_if_a_guard_would_refuse(
    engine: Engine,
) -> None:
    s = snap("in_progress")  # no extension pending: decide_extension's guard refuses
    wf = engine.check(NAME, VERSION, s, "decide_extension", actor=SUPERVISOR)
    assert wf is engine.workflows[(NAME, VERSION)]


def test_check_raises_the_same_errors_as_fire(engine: Engine) -> None:
    with pytest.raises(NotFound):
        engine.check(NAME, VERSION, snap("in_progress"), "fly", actor=GXJ)
    with pytest.raises(Conflict):
        engine.check(NAME, VERSION, snap("in_progress"), "sign", actor=GXJ)
    with pytest.raises(Forbidden):
        engine.check(NAME, VERSION, snap("in_progress"), "reply", actor=RSJ)


# --- codes and fields: what a client reads instead of the detail ----------------------------


def test_each_refusal_has_its_code_and_fields(engine: Engine) -> None:
    with pytest.raises(UnknownAction) as unknown:
        fire(engine, snap("in_progress"), "fly", GXJ)
    assert unknown.value.code == "unknown_action"
    with pytest.raises(NotAllowedNow) as not_now:
        fire(engine, snap("in_progress"), "sign", GXJ)
    assert not_now.value.code == "not_allowed_now"
    assert not_now.value.all_codes[:2] == ["not_allowed_now", "conflict"]
    with pytest.raises(GuardRefused) as refused:
        fire(engine, snap("replied"), "rate", INTEGRATION, rating="unknown")
    assert refused.value.code == "refused"
    assert refused.value.extra["refusals"] == ["rating_satisfied", "rating_unsatisfied"]
    pending = snap("in_progress", pending_extension={"extend_by": "1 day"})
    with pytest.raises(GuardRefused) as refused:
        fire(engine, pending, "request_extension", GXJ, extend_by="1 day", reason="r")
    assert refused.value.refusals == ("no_extension_pending",)
    with pytest.raises(NotFound) as missing_workflow:
        engine.latest("nope")
    assert missing_workflow.value.code == "unknown_workflow"


def test_missing_fields_are_named(engine: Engine) -> None:
    with pytest.raises(MissingFields) as caught:
        fire(engine, snap("in_progress"), "suspend", GXJ)
    assert caught.value.code == "missing_fields"
    assert caught.value.extra["fields"] == ["reason"]
    assert caught.value.detail == "suspend: reason required"
