"""The Mermaid state diagram of a workflow."""

from __future__ import annotations

import re

import pytest

from huying.workflow.definition import WorkflowSpec
from huying.workflow.draw import mermaid

from .support import DESIGN_STATES, FINAL_STATES, NAME, VERSION, real_specs


@pytest.fixture(scope="module")
def spec() -> WorkflowSpec:
    return real_specs()[(NAME, VERSION)]


@pytest.fixture(scope="module")
def text(spec: WorkflowSpec) -> str:
    return mermaid(spec)


def test_it_is_a_mermaid_state_diagram_with_a_title(text: str) -> None:
    lines = text.splitlines()
    assert lines[:4] == [
        "---",
        "title: 企业诉求办理 (service_request v1)",
        "---",
        "stateDiagram-v2",
    ]
    assert text.endswith("\n")


@pytest.mark.parametrize("state", list(DESIGN_STATES))
def test_every_state_is_declared_with_its_label(text: str, spec: WorkflowSpec, state: str) -> None:
    label = spec.states[state].label
    assert re.search(rf"^    {state}: {state} {re.escape(label)}", text, re.M)


def test_deadlines_run_and_paused_are_shown_on_their_states(text: str) -> None:
    assert re.search(r"^    in_progress: .*⏱ reply$", text, re.M)
    assert re.search(r"^    suspended: .*⏸ reply$", text, re.M)
    assert re.search(r"^    submitted: submitted 已受理$", text, re.M)


def test_it_starts_at_the_initial_state_and_ends_at_each_final_one(text: str) -> None:
    assert "    [*] --> submitted" in text.splitlines()
    for state in FINAL_STATES:
        assert f"    {state} --> [*]" in text.splitlines()


def test_every_state_change_is_an_edge_labelled_with_trigger_and_roles(
    text: str, spec: WorkflowSpec
) -> None:
    for t in spec.transitions:
        if t.dest is None:
            continue
        for src in t.sources:
            assert f"    {src} --> {t.dest}: {t.trigger} ({', '.join(t.roles)})" in text


def test_actions_that_keep_the_state_are_listed_in_a_note(text: str) -> None:
    (note,) = [line for line in text.splitlines() if line.startswith("    note right of")]
    for trigger in ("urge", "supervise", "escalate", "request_extension", "decide_extension"):
        assert trigger in note
    assert "-->" not in note


def test_no_edge_leaves_a_final_state(text: str) -> None:
    for state in FINAL_STATES:
        assert not re.search(rf"^    {state} --> (?!\[\*\])", text, re.M)
