"""The registry of guards and actions a workflow file may name.

Workflow files refer to these by name only; the loader rejects any name that is
not registered here, so a file can never point at an arbitrary importable function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from huying.workflow.context import Context

GuardFn = Callable[[Context], bool]
ActionFn = Callable[[Context], None]


@dataclass(frozen=True)
class Guard:
    name: str
    fn: GuardFn
    refusal: str  # said when the guard stops the action, e.g. "no extension request is pending"
    needs_payload: bool  # False: decidable from the request alone, so `allowed()` can evaluate it


@dataclass
class Registry:
    guards: dict[str, Guard] = field(default_factory=dict)
    actions: dict[str, ActionFn] = field(default_factory=dict)

    def guard(
        self, name: str, refusal: str, *, needs_payload: bool = False
    ) -> Callable[[GuardFn], GuardFn]:
        def register(fn: GuardFn) -> GuardFn:
            if name in self.guards:
                raise ValueError(f"guard {name!r} registered twice")
            self.guards[name] = Guard(name, fn, refusal, needs_payload)
            return fn

        return register

    def action(self, name: str) -> Callable[[ActionFn], ActionFn]:
        def register(fn: ActionFn) -> ActionFn:
            if name in self.actions:
                raise ValueError(f"action {name!r} registered twice")
            self.actions[name] = fn
            return fn

        return register
