"""Which states each list of the console shows, read from the loaded workflow specs (so a
new workflow version with other states needs no change here)."""

from __future__ import annotations

from huying.runtime import Runtime
from huying.web import labels


class StateNames(dict[str, str]):
    """Each state's Chinese label, and which states are final (a request there is done)."""

    def __init__(self, names: dict[str, str], final: frozenset[str]) -> None:
        super().__init__(names)
        self.final = final


def state_labels(rt: Runtime) -> StateNames:
    found: dict[str, str] = {}
    final: set[str] = set()
    for key in sorted(rt.workflows.workflows):
        for name, st in rt.workflows.workflows[key].spec.states.items():
            found[name] = labels.state(name, st.label)
            if st.final:
                final.add(name)
    return StateNames(found, frozenset(final))


def open_states(rt: Runtime) -> list[str]:
    seen: dict[str, None] = {}
    for key in sorted(rt.workflows.workflows, reverse=True):
        for name, st in rt.workflows.workflows[key].spec.states.items():
            if not st.final:
                seen[name] = None
    return list(seen)


def final_states(rt: Runtime) -> list[str]:
    """The states a request ends in (已办结, 不予受理, 已合并 …), newest workflow's first: the
    lists offer them so that a finished request can be found again."""
    seen: dict[str, None] = {}
    for key in sorted(rt.workflows.workflows, reverse=True):
        for name, st in rt.workflows.workflows[key].spec.states.items():
            if st.final:
                seen[name] = None
    running = set(open_states(rt))  # open in some version: listed with the open ones
    return [name for name in seen if name not in running]


def department_states(rt: Runtime) -> list[str]:
    """States in which the lead department has something to do (sign, reply, resume …)."""
    found = {
        src
        for wf in rt.workflows.workflows.values()
        for t in wf.spec.transitions
        if "lead_department" in t.roles
        for src in t.sources
    }
    return [s for s in open_states(rt) if s in found]


# The actions that make a request wait for a dispatcher: a first dispatch, a return to review.
QUEUE_ACTIONS = ("dispatch", "accept_return")


def queue_states(rt: Runtime) -> list[str]:
    """What waits for a dispatcher: the initial state and every state `dispatch` or
    `accept_return` leaves."""
    found = set()
    for wf in rt.workflows.workflows.values():
        found.add(wf.spec.initial)
        found.update(
            s for t in wf.spec.transitions if t.trigger in QUEUE_ACTIONS for s in t.sources
        )
    return [s for s in open_states(rt) if s in found]
