"""The event types Huying emits: what a subscription's patterns must match at least one of.

Each transition of every loaded workflow emits its event (`request.<trigger>` unless the
file names another); the registered actions of `huying.workflow.library` emit a few more,
listed here (tests/alerts/test_catalogue.py checks the list against that module).
"""

from __future__ import annotations

from huying.workflow.engine import Engine

ACTION_EVENTS = frozenset({"request.escalated", "request.reopened", "request.closed"})


def event_types(engine: Engine) -> list[str]:
    """Every event type a request of any loaded workflow version may emit, sorted."""
    from_transitions = {
        t.event_type for compiled in engine.workflows.values() for t in compiled.spec.transitions
    }
    return sorted(from_transitions | ACTION_EVENTS)
