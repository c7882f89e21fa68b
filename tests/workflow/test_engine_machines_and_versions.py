"""One shared `transitions.Machine` per definition, never one per request; and versions of a
workflow side by side, each request following the version it started on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import transitions

from huying.errors import Conflict, NotFound
from huying.workflow.context import Actor, Snapshot
from huying.workflow.definition import load_dir
from huying.workflow.engine import Engine
from huying.workflow.library import REGISTRY

from .support import (
    GXJ,
    INTEGRATION,
    NAME,
    NOW,
    SUPERVISOR,
    SYSTEM,
    apply,
    make_engine,
    real_document,
    real_specs,
    write_yaml,
)

# --- one machine per definition ------------------------------------------------------


@pytest.fixture
def machine_inits(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Counts every `transitions.Machine` constructed while the test runs."""
    calls: list[object] = []
    original = transitions.Machine.__init__

    def counting(self: transitions.Machine, *args: Any, **kwargs: Any) -> None:
        calls.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(transitions.Machine, "__init__", counting)
    return calls


def _one_life(engine: Engine, n: int) -> int:
    """Run request number n from submitted to closed; returns the number of fires."""
    s = Snapshot("submitted")
    steps: list[tuple[str, Actor, dict[str, Any]]] = [
        ("route", SYSTEM, {"lead_department": "GXJ"}),
        ("sign", GXJ, {}),
        ("urge", SUPERVISOR, {"note": f"#{n}"}),
        ("suspend", GXJ, {"reason": "r"}),
        ("resume", GXJ, {}),
        ("reply", GXJ, {"content": "c", "resolved": True}),
        ("rate", INTEGRATION, {"rating": "satisfied"}),
    ]
    for trigger, actor, payload in steps:
        s = apply(s, engine.fire(NAME, 1, s, trigger, actor=actor, payload=payload, now=NOW))
    assert s.state == "closed"
    return len(steps)


def test_building_the_engine_makes_one_machine_per_definition(machine_inits: list[object]) -> None:
    specs = real_specs()
    make_engine()
    assert len(machine_inits) == len(specs)


def test_firing_a_thousand_times_builds_no_machine(machine_inits: list[object]) -> None:
    engine = make_engine()
    built = len(machine_inits)
    fires = 0
    n = 0
    while fires < 1000:
        fires += _one_life(engine, n)
        n += 1
    assert len(machine_inits) == built


def test_refused_fires_and_allowed_lists_build_no_machine_either(
    machine_inits: list[object],
) -> None:
    engine = make_engine()
    built = len(machine_inits)
    for _ in range(200):
        engine.allowed(NAME, 1, Snapshot("in_progress", lead_department="GXJ"), GXJ)
        with pytest.raises(Conflict):
            engine.fire(NAME, 1, Snapshot("closed"), "urge", actor=SUPERVISOR, payload={}, now=NOW)
    assert len(machine_inits) == built


def test_every_request_is_moved_by_the_same_machine_object() -> None:
    engine = make_engine()
    machine = engine.workflows[(NAME, 1)].machine
    for n in range(50):
        _one_life(engine, n)
    assert engine.workflows[(NAME, 1)].machine is machine


def test_the_shared_machine_holds_no_request(machine_inits: list[object]) -> None:
    engine = make_engine()
    machine = engine.workflows[(NAME, 1)].machine
    _one_life(engine, 0)
    assert machine.models == []  # requests are not attached to it


# --- versions side by side -----------------------------------------------------------------


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    """The real v1 plus a v2 with one extra state, `reviewing`, between replied and closed."""
    write_yaml(tmp_path / "service_request.yaml", real_document())
    v2 = real_document()
    v2["version"] = 2
    v2["states"]["reviewing"] = {"label": "复核中"}
    v2["transitions"].append(
        {"trigger": "review", "source": "in_progress", "dest": "reviewing", "roles": ["supervisor"]}
    )
    v2["transitions"].append(
        {"trigger": "approve", "source": "reviewing", "dest": "replied", "roles": ["supervisor"]}
    )
    write_yaml(tmp_path / "service_request_v2.yaml", v2)
    return tmp_path


@pytest.fixture
def versioned_engine(two_versions: Path) -> Engine:
    specs, errors = load_dir(two_versions, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert errors == []
    assert set(specs) == {(NAME, 1), (NAME, 2)}
    return Engine(specs, REGISTRY, {"reopen_limit": 1, "return_escalate_after": 2})


def test_latest_returns_the_highest_version(versioned_engine: Engine) -> None:
    latest = versioned_engine.latest(NAME)
    assert latest.version == 2
    assert "reviewing" in latest.states


def test_each_version_has_its_own_machine(versioned_engine: Engine) -> None:
    m1 = versioned_engine.workflows[(NAME, 1)].machine
    m2 = versioned_engine.workflows[(NAME, 2)].machine
    assert m1 is not m2
    assert "reviewing" in m2.states and "reviewing" not in m1.states


def test_a_request_on_v1_keeps_following_v1(versioned_engine: Engine) -> None:
    s = Snapshot("in_progress", lead_department="GXJ")
    assert "review" not in versioned_engine.allowed(NAME, 1, s, SUPERVISOR)
    with pytest.raises(NotFound):  # v1 has no such action
        versioned_engine.fire(NAME, 1, s, "review", actor=SUPERVISOR, payload={}, now=NOW)
    out = versioned_engine.fire(
        NAME, 1, s, "reply", actor=GXJ, payload={"content": "c", "resolved": True}, now=NOW
    )
    assert out.state == "replied"


def test_a_request_on_v2_follows_v2(versioned_engine: Engine) -> None:
    s = Snapshot("in_progress", lead_department="GXJ")
    assert "review" in versioned_engine.allowed(NAME, 2, s, SUPERVISOR)
    out = versioned_engine.fire(NAME, 2, s, "review", actor=SUPERVISOR, payload={}, now=NOW)
    assert out.state == "reviewing"
    assert [d.op for d in out.deadlines] == ["stop"]  # reviewing runs no deadline
    s = apply(s, out)
    out = versioned_engine.fire(NAME, 2, s, "approve", actor=SUPERVISOR, payload={}, now=NOW)
    assert out.state == "replied"


def test_a_v1_snapshot_in_a_state_only_v2_has_is_refused_by_v1(versioned_engine: Engine) -> None:
    with pytest.raises(Conflict):
        versioned_engine.fire(
            NAME, 1, Snapshot("reviewing"), "urge", actor=SUPERVISOR, payload={}, now=NOW
        )
    out = versioned_engine.fire(
        NAME, 2, Snapshot("reviewing"), "urge", actor=SUPERVISOR, payload={}, now=NOW
    )
    assert out.state == "reviewing"  # `source: "*"` of v2 includes its new state


def test_spec_returns_the_exact_version_asked_for(versioned_engine: Engine) -> None:
    assert versioned_engine.spec(NAME, 1).version == 1
    assert "reviewing" not in versioned_engine.spec(NAME, 1).states
    assert versioned_engine.spec(NAME, 2).version == 2
