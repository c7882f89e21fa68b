"""Validation of workflow definitions: every kind of mistake is caught, and the problem
names the thing that is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from huying.settings import settings_from_mapping
from huying.workflow.definition import WorkflowInvalid, load_dir, load_file
from huying.workflow.library import REGISTRY

from .support import MINI, mini, problems_of, real_document, write_yaml


def _one_matching(problems: list[str], *needles: str) -> str:
    """The problem that contains every needle; fails listing them all when none does."""
    hits = [p for p in problems if all(n in p for n in needles)]
    assert hits, f"no problem mentions {needles!r}; problems: {problems!r}"
    return hits[0]


def _with_transition(doc: dict[str, Any], **transition: Any) -> dict[str, Any]:
    doc["transitions"].append(transition)
    return doc


def _with_state(doc: dict[str, Any], name: str, **settings: Any) -> dict[str, Any]:
    doc["states"][name] = settings
    return doc


def test_the_minimal_document_the_other_tests_break_is_valid() -> None:
    assert problems_of(mini()) == []


# --- states and transitions that do not fit together ---------------------------------


def test_an_unknown_source_state_is_named() -> None:
    doc = _with_transition(mini(), trigger="jump", source="nowhere", dest="done", roles=["admin"])
    _one_matching(problems_of(doc), "jump", "unknown source state", "'nowhere'")


def test_one_unknown_source_among_known_ones_is_named() -> None:
    doc = _with_transition(
        mini(), trigger="jump", source=["new", "limbo"], dest="done", roles=["admin"]
    )
    problems = problems_of(doc)
    _one_matching(problems, "jump", "unknown source state", "'limbo'")
    assert not any("'new'" in p for p in problems)


def test_an_unknown_destination_state_is_named() -> None:
    doc = _with_transition(mini(), trigger="jump", source="new", dest="nirvana", roles=["admin"])
    _one_matching(problems_of(doc), "jump", "unknown destination state", "'nirvana'")


def test_an_unknown_initial_state_is_named() -> None:
    _one_matching(problems_of(mini(initial="start")), "initial state", "'start'")


def test_an_unreachable_state_is_named() -> None:
    doc = _with_state(mini(), "orphan")
    _with_transition(doc, trigger="adopt", source="orphan", dest="done", roles=["admin"])
    problems = problems_of(doc)
    assert problems == [_one_matching(problems, "'orphan'", "unreachable")]


def test_an_unreachable_final_state_is_named_too() -> None:
    doc = _with_state(mini(), "archived", final=True)
    _one_matching(problems_of(doc), "'archived'", "unreachable")


def test_a_non_final_state_with_no_transition_out_is_named() -> None:
    doc = _with_state(mini(), "stuck")
    _with_transition(doc, trigger="park", source="new", dest="stuck", roles=["admin"])
    problem = _one_matching(problems_of(doc), "'stuck'", "no way out")
    assert "non-final" in problem


def test_a_state_whose_only_transitions_stay_in_it_has_no_way_out() -> None:
    doc = _with_state(mini(), "stuck")
    _with_transition(doc, trigger="park", source="new", dest="stuck", roles=["admin"])
    _with_transition(doc, trigger="nudge", source="stuck", roles=["admin"])  # internal
    _with_transition(doc, trigger="spin", source="stuck", dest="stuck", roles=["admin"])  # self
    _one_matching(problems_of(doc), "'stuck'", "no way out")


def test_a_trap_of_open_states_that_can_never_finish_is_named_state_by_state() -> None:
    doc = mini()
    _with_state(doc, "ping")
    _with_state(doc, "pong")
    _with_transition(doc, trigger="serve", source="new", dest="ping", roles=["admin"])
    _with_transition(doc, trigger="hit", source="ping", dest="pong", roles=["admin"])
    _with_transition(doc, trigger="hit_back", source="pong", dest="ping", roles=["admin"])
    problems = problems_of(doc)
    _one_matching(problems, "'ping'", "never reach a final state")
    _one_matching(problems, "'pong'", "never reach a final state")
    assert not any("'new'" in p or "'working'" in p for p in problems)


def test_a_workflow_without_any_final_state_is_refused() -> None:
    doc = mini()
    doc["states"]["done"] = {}
    doc["states"]["dropped"] = {}
    _one_matching(problems_of(doc), "no final state")


def test_a_final_state_with_an_outgoing_transition_is_named() -> None:
    doc = _with_transition(mini(), trigger="revive", source="done", dest="new", roles=["admin"])
    _one_matching(problems_of(doc), "revive", "final state", "'done'")


def test_source_star_means_every_open_state_and_never_a_final_one(tmp_path: Path) -> None:
    spec = load_file(
        write_yaml(tmp_path / "m.yaml", MINI), guards=REGISTRY.guards, actions=REGISTRY.actions
    )
    (poke,) = [t for t in spec.transitions if t.trigger == "poke"]
    assert set(poke.sources) == {"new", "working", "paused"}


# --- names the code must know --------------------------------------------------------


def test_an_unregistered_guard_is_named() -> None:
    doc = mini()
    doc["transitions"][0]["guards"] = ["is_friday"]
    _one_matching(problems_of(doc), "take", "guard", "'is_friday'", "not registered")


def test_an_unregistered_action_is_named() -> None:
    doc = mini()
    doc["transitions"][0]["actions"] = ["send_flowers"]
    _one_matching(problems_of(doc), "take", "action", "'send_flowers'", "not registered")


@pytest.mark.parametrize(
    "dotted",
    [
        "os.system",
        "subprocess.call",
        "builtins.eval",
        # even a real, importable guard function, named by its path, is not a registered name
        "huying.workflow.library.has_lead_department",
    ],
)
def test_a_guard_named_by_a_dotted_import_path_is_rejected_as_unregistered(dotted: str) -> None:
    doc = mini()
    doc["transitions"][0]["guards"] = [dotted]
    _one_matching(problems_of(doc), f"guard {dotted!r}", "not registered")


@pytest.mark.parametrize("dotted", ["os.system", "shutil.rmtree", "huying.workflow.library.reopen"])
def test_an_action_named_by_a_dotted_import_path_is_rejected_as_unregistered(dotted: str) -> None:
    doc = mini()
    doc["transitions"][0]["actions"] = dotted  # a single name, not a list
    _one_matching(problems_of(doc), f"action {dotted!r}", "not registered")


def test_an_action_name_used_as_a_guard_is_not_a_registered_guard() -> None:
    doc = mini()
    doc["transitions"][0]["guards"] = ["close_request"]
    _one_matching(problems_of(doc), "guard 'close_request'", "not registered")


def test_the_transitions_library_spelling_conditions_is_an_unknown_key_not_a_guard() -> None:
    doc = mini()
    doc["transitions"][0]["conditions"] = ["os.system"]
    doc["transitions"][0]["before"] = "os.system"
    problem = _one_matching(problems_of(doc), "transitions[0]", "unknown keys")
    assert "conditions" in problem and "before" in problem


def test_an_unknown_role_is_named() -> None:
    doc = mini()
    doc["transitions"][1]["roles"] = ["dispatcher", "janitor"]
    problem = _one_matching(problems_of(doc), "drop", "unknown role", "'janitor'")
    assert "'dispatcher'" not in problem.split("(known")[0]


def test_a_transition_no_role_may_take_is_refused() -> None:
    doc = mini()
    doc["transitions"][1]["roles"] = []
    _one_matching(problems_of(doc), "drop", "roles is empty")


def test_roles_that_are_not_names_are_refused() -> None:
    doc = mini()
    doc["transitions"][1]["roles"] = [1, 2]
    _one_matching(problems_of(doc), "drop", "roles", "expected a name or a list of names")


def test_an_unknown_deadline_kind_is_named() -> None:
    doc = mini()
    doc["states"]["working"]["deadline"] = "lunch"
    _one_matching(problems_of(doc), "'working'", "unknown deadline kind", "'lunch'")


def test_pausing_a_deadline_no_state_runs_is_named() -> None:
    doc = mini()
    doc["states"]["paused"]["pauses"] = "sign"
    _one_matching(problems_of(doc), "'paused'", "'sign'", "no state runs")


def test_a_final_state_cannot_run_a_deadline() -> None:
    doc = mini()
    doc["states"]["done"]["deadline"] = "feedback"
    _one_matching(problems_of(doc), "final state 'done'", "deadline")


def test_a_deadline_outcome_other_than_met_or_cancelled_is_named() -> None:
    doc = mini()
    doc["transitions"][1]["deadline_outcome"] = "missed"
    _one_matching(problems_of(doc), "drop", "deadline_outcome", "'missed'")


def test_a_transition_without_a_source_is_refused() -> None:
    doc = mini()
    del doc["transitions"][1]["source"]
    _one_matching(problems_of(doc), "drop", "no source state")


def test_a_trigger_that_is_not_an_identifier_is_named() -> None:
    doc = _with_transition(mini(), trigger="go-now", source="new", dest="done", roles=["admin"])
    _one_matching(problems_of(doc), "trigger", "'go-now'")


def test_a_destination_that_is_not_a_name_is_refused() -> None:
    doc = _with_transition(mini(), trigger="jump", source="new", dest=["done"], roles=["admin"])
    _one_matching(problems_of(doc), "jump", "dest")


# --- the document itself ---------------------------------------------------------------


@pytest.mark.parametrize("version", [0, -1, "1", "v1", 1.5, True, None])
def test_a_version_that_is_not_a_whole_number_from_1_is_named(version: object) -> None:
    _one_matching(problems_of(mini(version=version)), "version", repr(version))


@pytest.mark.parametrize("name", ["service-request", "service request", "", 3, None, "1st"])
def test_a_name_that_is_not_an_identifier_is_named(name: object) -> None:
    _one_matching(problems_of(mini(name=name)), "name", repr(name))


def test_unknown_top_level_keys_are_named() -> None:
    doc = mini(colour="blue", states_v2={})
    problem = _one_matching(problems_of(doc), "unknown top-level keys")
    assert "colour" in problem and "states_v2" in problem


def test_unknown_keys_in_a_state_are_named() -> None:
    doc = mini()
    doc["states"]["working"]["timeout"] = "3 days"
    _one_matching(problems_of(doc), "states.working", "unknown keys", "timeout")


def test_unknown_keys_in_a_transition_are_named() -> None:
    doc = mini()
    doc["transitions"][2]["on_enter"] = "notify"
    _one_matching(problems_of(doc), "transitions[2]", "unknown keys", "on_enter")


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert problems_of(["name", "version"]) == [
        "the document must be a mapping with name, version, initial, states, transitions"
    ]


def test_missing_states_and_transitions_are_named() -> None:
    problems = problems_of({"name": "x", "version": 1, "initial": "a"})
    _one_matching(problems, "states")
    _one_matching(problems, "transitions")


def test_a_state_whose_settings_are_not_a_mapping_is_named() -> None:
    doc = mini()
    doc["states"]["working"] = "reply"
    _one_matching(problems_of(doc), "states.working", "expected a mapping")


def test_several_structural_problems_are_reported_together() -> None:
    doc = mini(name="bad name", version=0, extra=1)
    doc["transitions"][0]["when"] = "always"
    problems = problems_of(doc)
    _one_matching(problems, "name")
    _one_matching(problems, "version")
    _one_matching(problems, "unknown top-level keys", "extra")
    _one_matching(problems, "transitions[0]", "when")


def test_several_semantic_problems_are_reported_together() -> None:
    doc = mini()
    doc["transitions"][0]["guards"] = ["nope_guard"]
    doc["transitions"][1]["roles"] = ["nobody"]
    doc["transitions"][2]["dest"] = "nowhere"
    problems = problems_of(doc)
    _one_matching(problems, "'nope_guard'")
    _one_matching(problems, "'nobody'")
    _one_matching(problems, "'nowhere'")


def test_the_real_document_broken_in_one_place_names_that_place() -> None:
    doc = real_document()
    for t in doc["transitions"]:
        if t["trigger"] == "sign":
            t["dest"] = "signed"
    _one_matching(problems_of(doc), "'sign'", "unknown destination state", "'signed'")


# --- files and folders -------------------------------------------------------------------


def test_a_file_that_is_not_valid_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nstates: {a: [1, 2\n", encoding="utf-8")
    with pytest.raises(WorkflowInvalid) as caught:
        load_file(path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert caught.value.source == str(path)
    _one_matching(caught.value.problems, "cannot be read as YAML")
    assert str(path) in str(caught.value)


def test_load_file_raises_listing_every_problem(tmp_path: Path) -> None:
    doc = mini()
    doc["transitions"][0]["guards"] = ["g1"]
    doc["transitions"][0]["actions"] = ["a1"]
    path = write_yaml(tmp_path / "two.yaml", doc)
    with pytest.raises(WorkflowInvalid) as caught:
        load_file(path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    _one_matching(caught.value.problems, "'g1'")
    _one_matching(caught.value.problems, "'a1'")


def test_load_file_returns_the_spec_with_its_source(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "mini.yaml", MINI)
    spec = load_file(path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert spec.key == ("mini", 1)
    assert spec.source == str(path)
    assert spec.title == "A minimal workflow"


def test_names_are_checked_against_the_registry_passed_in(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "m.yaml", MINI)
    with pytest.raises(WorkflowInvalid) as caught:
        load_file(path, guards=REGISTRY.guards, actions=[])
    _one_matching(caught.value.problems, "action 'record_reply'", "not registered")


def test_the_same_name_and_version_in_two_files_is_refused_naming_both(tmp_path: Path) -> None:
    first = write_yaml(tmp_path / "a_first.yaml", MINI)
    second = write_yaml(tmp_path / "b_second.yml", mini(title="again"))
    specs, errors = load_dir(tmp_path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert list(specs) == [("mini", 1)]
    assert specs[("mini", 1)].source == str(first)
    assert [e.source for e in errors] == [str(second)]
    _one_matching(errors[0].problems, "mini version 1", str(first))


def test_two_versions_of_one_name_in_one_folder_load_side_by_side(tmp_path: Path) -> None:
    write_yaml(tmp_path / "v1.yaml", MINI)
    write_yaml(tmp_path / "v2.yaml", mini(version=2))
    specs, errors = load_dir(tmp_path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert errors == []
    assert set(specs) == {("mini", 1), ("mini", 2)}


def test_a_folder_keeps_the_valid_files_and_reports_each_invalid_one(tmp_path: Path) -> None:
    write_yaml(tmp_path / "good.yaml", MINI)
    bad_role = mini(name="bad_role")
    bad_role["transitions"][1]["roles"] = ["janitor"]
    write_yaml(tmp_path / "bad_role.yaml", bad_role)
    (tmp_path / "bad_yaml.yml").write_text("{{{", encoding="utf-8")
    (tmp_path / "ignored.txt").write_text("not a workflow", encoding="utf-8")
    specs, errors = load_dir(tmp_path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert list(specs) == [("mini", 1)]
    by_file = {Path(e.source).name: e.problems for e in errors}
    assert set(by_file) == {"bad_role.yaml", "bad_yaml.yml"}
    _one_matching(by_file["bad_role.yaml"], "'janitor'")
    _one_matching(by_file["bad_yaml.yml"], "YAML")


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    specs, errors = load_dir(tmp_path, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert specs == {}
    _one_matching(errors[0].problems, "no workflow files")


def test_huying_refuses_to_start_on_an_invalid_workflow(tmp_path: Path) -> None:
    from huying.runtime import build_runtime

    doc = mini(name="service_request")
    doc["transitions"][0]["guards"] = ["os.system"]
    write_yaml(tmp_path / "service_request.yaml", doc)
    settings = settings_from_mapping(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'never.db'}"},
            "workflows": {"path": str(tmp_path)},
        },
        base_dir=tmp_path,
    )
    with pytest.raises(WorkflowInvalid) as caught:
        build_runtime(settings)
    _one_matching(caught.value.problems, "'os.system'", "not registered")
    assert not (tmp_path / "never.db").exists()


# --- values of the wrong type: a problem each, never a crash or a silent coercion -------


@pytest.mark.parametrize(("key", "value"), [("deadline", ["reply"]), ("pauses", {"k": "reply"})])
def test_a_deadline_that_is_not_a_name_is_a_problem_not_a_crash(key: str, value: object) -> None:
    doc = mini()
    doc["states"]["working" if key == "deadline" else "paused"][key] = value
    _one_matching(problems_of(doc), key)


@pytest.mark.parametrize("event", [["request.a", "request.b"], 42, {"type": "x"}])
def test_an_event_type_that_is_not_a_string_is_named(event: object) -> None:
    doc = mini()
    doc["transitions"][0]["event"] = event
    _one_matching(problems_of(doc), "take", "event")


def test_final_must_be_true_or_false_not_a_string() -> None:
    doc = mini()
    # meant as "not final"; bool("false") would silently make it final and the file pass
    doc["states"]["dropped"] = {"final": "false"}
    _one_matching(problems_of(doc), "dropped", "final")
