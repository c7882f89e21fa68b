"""The event types subscriptions are checked against: every one Huying can emit."""

from __future__ import annotations

import ast
import inspect

from huying.alerts.catalogue import ACTION_EVENTS, event_types
from huying.alerts.patterns import unmatched
from huying.runtime import Runtime
from huying.workflow import library


def test_the_actions_emit_only_the_listed_event_types() -> None:
    tree = ast.parse(inspect.getsource(library))
    emitted = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "emit"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert emitted == ACTION_EVENTS
    calls = sum(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "emit"
        for n in ast.walk(tree)
    )
    assert calls == len(emitted)  # no event type computed at run time


def test_the_catalogue_holds_every_transition_event(rt: Runtime) -> None:
    known = event_types(rt.workflows)
    for compiled in rt.workflows.workflows.values():
        for t in compiled.spec.transitions:
            assert t.event_type in known
    assert {"request.dispatched", "request.overdue", "request.closed"} <= set(known)
    assert known == sorted(set(known))


def test_unmatched_patterns_in_the_order_given() -> None:
    known = ["request.dispatched", "request.overdue"]
    assert unmatched(["*", "request.*", "*.overdue", "request.dispatched"], known) == []
    assert unmatched(["deadline.*", "request.*", "request.dispatch"], known) == [
        "deadline.*",
        "request.dispatch",
    ]
