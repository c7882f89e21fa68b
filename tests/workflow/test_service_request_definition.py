"""The shipped workflows/service_request.yaml: it loads, validates, and says what the design says."""

from __future__ import annotations

import pytest

from huying.workflow.definition import ROLES, WorkflowSpec, load_file, validate
from huying.workflow.library import REGISTRY

from .support import (
    DESIGN_ACTIONS,
    DESIGN_STATES,
    FINAL_STATES,
    NAME,
    OPEN_STATES,
    VERSION,
    WORKFLOWS,
    real_specs,
)


@pytest.fixture(scope="module")
def spec() -> WorkflowSpec:
    return real_specs()[(NAME, VERSION)]


def test_every_file_in_the_real_folder_loads_without_problems() -> None:
    specs = real_specs()
    assert (NAME, VERSION) in specs


def test_the_real_file_passes_validation_on_its_own(spec: WorkflowSpec) -> None:
    loaded = load_file(
        WORKFLOWS / "service_request.yaml", guards=REGISTRY.guards, actions=REGISTRY.actions
    )
    assert loaded.key == (NAME, VERSION)
    assert validate(loaded, guards=REGISTRY.guards, actions=REGISTRY.actions) == []


def test_it_starts_in_submitted(spec: WorkflowSpec) -> None:
    assert spec.initial == "submitted"


def test_it_has_exactly_the_states_of_the_design(spec: WorkflowSpec) -> None:
    assert set(spec.states) == set(DESIGN_STATES)


@pytest.mark.parametrize("state", list(DESIGN_STATES))
def test_each_state_runs_and_pauses_the_deadline_the_design_table_says(
    spec: WorkflowSpec, state: str
) -> None:
    final, runs, pauses = DESIGN_STATES[state]
    s = spec.states[state]
    assert (s.final, s.deadline, s.pauses) == (final, runs, pauses)


def test_every_action_of_the_design_exists(spec: WorkflowSpec) -> None:
    assert set(spec.triggers) >= DESIGN_ACTIONS


def _sources_and_dests(
    spec: WorkflowSpec, trigger: str
) -> tuple[set[str], set[str | None], set[str]]:
    ts = [t for t in spec.transitions if t.trigger == trigger]
    return (
        {s for t in ts for s in t.sources},
        {t.dest for t in ts},
        {r for t in ts for r in t.roles},
    )


@pytest.mark.parametrize(
    ("trigger", "sources", "dests", "roles"),
    [
        ("route", {"submitted"}, {"dispatched", "awaiting_dispatch"}, {"system"}),
        ("dispatch", {"awaiting_dispatch"}, {"dispatched"}, {"dispatcher"}),
        ("reject", {"submitted", "awaiting_dispatch"}, {"rejected"}, {"dispatcher"}),
        ("merge", {"submitted", "awaiting_dispatch", "dispatched"}, {"merged"}, {"dispatcher"}),
        ("sign", {"dispatched"}, {"in_progress"}, {"lead_department"}),
        ("return", {"dispatched"}, {"awaiting_dispatch"}, {"lead_department"}),
        ("request_extension", {"in_progress"}, {None}, {"lead_department"}),
        ("decide_extension", {"in_progress"}, {None}, {"supervisor"}),
        ("suspend", {"in_progress"}, {"suspended"}, {"lead_department"}),
        ("resume", {"suspended"}, {"in_progress"}, {"lead_department"}),
        ("reply", {"in_progress"}, {"replied"}, {"lead_department"}),
        ("rate", {"replied"}, {"closed", "in_progress"}, {"integration"}),
        ("auto_close", {"replied"}, {"closed"}, {"system"}),
        ("urge", set(OPEN_STATES), {None}, {"supervisor", "dispatcher"}),
        ("supervise", set(OPEN_STATES), {None}, {"supervisor", "dispatcher"}),
        ("escalate", set(OPEN_STATES), {None}, {"system"}),
    ],
)
def test_each_action_goes_where_the_design_says_for_whom_it_says(
    spec: WorkflowSpec, trigger: str, sources: set[str], dests: set[str | None], roles: set[str]
) -> None:
    got_sources, got_dests, got_roles = _sources_and_dests(spec, trigger)
    assert got_sources >= sources
    assert got_dests == dests
    assert got_roles >= roles


@pytest.mark.parametrize("trigger", ["route", "auto_close", "escalate"])
def test_timer_and_routing_actions_are_for_the_system_alone(
    spec: WorkflowSpec, trigger: str
) -> None:
    _, _, roles = _sources_and_dests(spec, trigger)
    assert roles == {"system"}


def test_no_transition_leaves_a_final_state(spec: WorkflowSpec) -> None:
    for t in spec.transitions:
        assert not set(t.sources) & set(FINAL_STATES), t.trigger


def test_every_role_named_is_a_known_role(spec: WorkflowSpec) -> None:
    assert {r for t in spec.transitions for r in t.roles} <= ROLES


def test_every_guard_and_action_named_is_registered(spec: WorkflowSpec) -> None:
    assert {g for t in spec.transitions for g in t.guards} <= set(REGISTRY.guards)
    assert {a for t in spec.transitions for a in t.actions} <= set(REGISTRY.actions)


def test_every_transition_names_its_event_type(spec: WorkflowSpec) -> None:
    for t in spec.transitions:
        assert t.event_type.startswith("request."), t.trigger


def test_reject_and_merge_cancel_the_running_deadline_rather_than_meet_it(
    spec: WorkflowSpec,
) -> None:
    for t in spec.transitions:
        if t.trigger in ("reject", "merge", "return"):
            assert t.deadline_outcome == "cancelled", t.trigger
