"""Shared helpers for the pure workflow-core tests: the real definition, actors, a clock
value, a minimal valid workflow document to break, and a way to apply an outcome to a
snapshot the way the request service does."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from huying.workflow.context import Actor, Outcome, Snapshot
from huying.workflow.definition import WorkflowSpec, load_dir, parse, validate
from huying.workflow.engine import Engine
from huying.workflow.library import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "src/huying/data/workflows"
NAME, VERSION = "service_request", 1
RULES: dict[str, Any] = {
    "return_escalate_after": 2,
    "reopen_limit": 1,
    "ladder_top": 3,
    "suspension_max_count": 2,
    "suspension_requires_approval": True,
    "extension_max_count": 1,
}
NOW = datetime(2026, 11, 18, 2, 0, tzinfo=UTC)  # 2026-11-18 10:00 Shanghai, a Wednesday

# The states and actions the design (DESIGN.md, "Workflow") names for version 1.
DESIGN_STATES = {
    "submitted": (False, None, None),
    "awaiting_dispatch": (False, "dispatch", None),
    "dispatched": (False, "sign", None),
    "in_progress": (False, "reply", None),
    "suspended": (False, None, "reply"),
    "replied": (False, "feedback", None),
    "closed": (True, None, None),
    "rejected": (True, None, None),
    "merged": (True, None, None),
}  # name: (final, deadline it runs, deadline it pauses)
OPEN_STATES = [s for s, (final, _, _) in DESIGN_STATES.items() if not final]
FINAL_STATES = [s for s, (final, _, _) in DESIGN_STATES.items() if final]
DESIGN_ACTIONS = {
    "route",
    "dispatch",
    "reject",
    "merge",
    "sign",
    "return",
    "request_extension",
    "decide_extension",
    "suspend",
    "resume",
    "reply",
    "rate",
    "auto_close",
    "urge",
    "supervise",
    "escalate",
}
RATINGS = (
    "very_satisfied",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "very_dissatisfied",
)

# --- actors -------------------------------------------------------------------------

SYSTEM = Actor("system", "system")
ADMIN = Actor("user:admin", "admin")
DISPATCHER = Actor("user:dispatcher", "dispatcher")
SUPERVISOR = Actor("user:supervisor", "supervisor")
INTEGRATION = Actor("key:grid", "integration")
GXJ = Actor("user:gxj", "department", "GXJ")  # the lead department in most tests
STREET = Actor("user:street", "department", "STREET")  # a co-department, never the lead
RSJ = Actor("user:rsj", "department", "RSJ")  # an unrelated department
PEOPLE = [ADMIN, DISPATCHER, SUPERVISOR, INTEGRATION, GXJ, STREET, RSJ]
EVERYONE = [SYSTEM, *PEOPLE]


def snap(state: str, **fields: Any) -> Snapshot:
    """A request in `state`; led by GXJ (with STREET co-handling) once it has left dispatch."""
    if state not in ("submitted", "awaiting_dispatch"):
        fields.setdefault("lead_department", "GXJ")
        fields.setdefault("co_departments", ("STREET",))
    return Snapshot(state=state, **fields)


def real_specs() -> dict[tuple[str, int], WorkflowSpec]:
    specs, errors = load_dir(WORKFLOWS, guards=REGISTRY.guards, actions=REGISTRY.actions)
    assert not errors, [(e.source, e.problems) for e in errors]
    return specs


def make_engine(rules: dict[str, Any] | None = None) -> Engine:
    """The real workflows with the default rules, `rules` overriding some of them."""
    return Engine(real_specs(), REGISTRY, {**RULES, **(rules or {})})


def fire(
    engine: Engine,
    snapshot: Snapshot,
    trigger: str,
    actor: Actor,
    now: datetime = NOW,
    **payload: Any,
) -> Outcome:
    return engine.fire(NAME, VERSION, snapshot, trigger, actor=actor, payload=payload, now=now)


SNAPSHOT_FIELDS = {f.name for f in dataclasses.fields(Snapshot)}


def apply(snapshot: Snapshot, outcome: Outcome) -> Snapshot:
    """The snapshot after persisting an outcome (what the request service does)."""
    changes = {k: v for k, v in outcome.changes.items() if k in SNAPSHOT_FIELDS}
    return dataclasses.replace(snapshot, state=outcome.state, **changes)


def event_types(outcome: Outcome) -> list[str]:
    return [e.type for e in outcome.events]


def effects(outcome: Outcome) -> list[tuple[Any, ...]]:
    """Deadline effects as short tuples: (op, kind) plus the outcome of a stop or the
    length of an extension."""
    out: list[tuple[Any, ...]] = []
    for d in outcome.deadlines:
        if d.op == "stop":
            out.append((d.op, d.kind, d.outcome))
        elif d.op == "extend":
            out.append((d.op, d.kind, d.by))
        else:
            out.append((d.op, d.kind))
    return out


# --- a minimal valid workflow document, for validation tests to break ---------------

MINI: dict[str, Any] = {
    "name": "mini",
    "version": 1,
    "title": "A minimal workflow",
    "initial": "new",
    "states": {
        "new": {"label": "new"},
        "working": {"deadline": "reply"},
        "paused": {"pauses": "reply"},
        "done": {"final": True},
        "dropped": {"final": True},
    },
    "transitions": [
        {"trigger": "take", "source": "new", "dest": "working", "roles": ["lead_department"]},
        {"trigger": "drop", "source": "new", "dest": "dropped", "roles": ["dispatcher"]},
        {"trigger": "pause", "source": "working", "dest": "paused", "roles": ["lead_department"]},
        {"trigger": "resume", "source": "paused", "dest": "working", "roles": "lead_department"},
        {
            "trigger": "finish",
            "source": "working",
            "dest": "done",
            "roles": ["lead_department"],
            "actions": ["record_reply"],
        },
        {"trigger": "poke", "source": "*", "roles": ["supervisor", "admin"]},
    ],
}


def mini(**top: Any) -> dict[str, Any]:
    """A deep copy of MINI with top-level keys replaced."""
    doc = copy.deepcopy(MINI)
    doc.update(top)
    return doc


def problems_of(doc: Any) -> list[str]:
    """Every problem parse + validate find in a document (as the loader does)."""
    spec, problems = parse(doc, source="<test>")
    if spec is None:
        return problems
    return validate(spec, guards=REGISTRY.guards, actions=REGISTRY.actions)


def write_yaml(path: Path, doc: Any) -> Path:
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def real_document() -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / "service_request.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data
