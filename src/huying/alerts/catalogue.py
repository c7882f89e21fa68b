"""The event types Huying emits: what a subscription's patterns must match at least one of.

Each transition of every loaded workflow emits its event (`request.<trigger>` unless the
file names another); the registered actions of `huying.workflow.library` emit a few more,
listed here (tests/alerts/test_catalogue.py checks the list against that module).
"""

from __future__ import annotations

from huying.workflow.engine import Engine

ACTION_EVENTS = frozenset({"request.escalated", "request.reopened", "request.closed"})
ACTION_LABELS = {
    "request.escalated": "升级",
    "request.reopened": "重新办理",
    "request.closed": "办结",
}


def event_types(engine: Engine) -> list[str]:
    """Every event type a request of any loaded workflow version may emit, sorted."""
    from_transitions = {
        t.event_type for compiled in engine.workflows.values() for t in compiled.spec.transitions
    }
    return sorted(from_transitions | ACTION_EVENTS)


def labels(engine: Engine) -> dict[str, str]:
    """Each event type's name for people: the label of the first transition that emits it
    (预警, 超期, 升级, 派单 …), else a fallback for those that actions emit; types without
    either are left out."""
    found: dict[str, str] = {}
    for compiled in engine.workflows.values():
        for t in compiled.spec.transitions:
            if t.label and t.event_type not in found:
                found[t.event_type] = t.label
    return {**ACTION_LABELS, **found}
