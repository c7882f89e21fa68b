"""Workflow definitions: parsed from YAML into frozen specs, and validated before anything runs."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

ROLES = frozenset(
    {
        "system",
        "admin",
        "dispatcher",
        "supervisor",
        "lead_department",
        "task_department",
        "integration",
    }
)
# The time limits every urgency configures, in the order a request meets them.
DEADLINE_KINDS = ("dispatch", "sign", "reply", "feedback")
# Limits with a default where an urgency names none: a return's review, a task's own limit.
OPTIONAL_KINDS = ("review", "task")
STATE_KINDS = (*DEADLINE_KINDS, "review")  # what a state may run
ANY_OPEN = "*"  # `source: "*"` means every state that is not final
# What a transition without `public` shows in the public view: where the request is and
# who handles it, the signature, the reply, the rating, the end; an extension only approved.
PUBLIC_BY_DEFAULT: dict[str, bool | str] = {
    "route": True,
    "dispatch": True,
    "reject": True,
    "sign": True,
    "reply": True,
    "rate": True,
    "auto_close": True,
    "decide_extension": "approved",
}


@dataclass(frozen=True)
class StateSpec:
    name: str
    final: bool = False
    deadline: str | None = None  # the deadline that runs while the request is in this state
    pauses: str | None = None  # the deadline that is paused (not stopped) while in this state
    # deadlines that keep running when the request enters this state from one that runs
    # them (a return under review: the department's clock goes on), and go on when it
    # returns there
    keeps: tuple[str, ...] = ()
    label: str = ""


@dataclass(frozen=True)
class TransitionSpec:
    trigger: str
    sources: tuple[str, ...]
    dest: str | None  # None: internal, the state does not change
    roles: tuple[str, ...]
    guards: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    event: str | None = None  # the outbox event type; default "request.<trigger>"
    deadline_outcome: Literal["met", "cancelled"] = "met"
    label: str = ""
    requires: tuple[str, ...] = ()  # payload fields that must be present and not empty
    # In the public view (integrations, the receipt page, Open311): true, false, or the
    # name of a payload field that must be true (`public: approved`); unset: the default
    # for the trigger (`PUBLIC_BY_DEFAULT`, for files written before the key existed).
    public: bool | str | None = None

    @property
    def event_type(self) -> str:
        return self.event or f"request.{self.trigger}"


@dataclass(frozen=True)
class WorkflowSpec:
    name: str
    version: int
    title: str
    initial: str
    states: Mapping[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]
    source: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.version)

    @property
    def triggers(self) -> list[str]:
        return list(dict.fromkeys(t.trigger for t in self.transitions))


class WorkflowInvalid(Exception):
    """A definition that cannot run; `problems` names each thing that is wrong."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


def _as_tuple(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    problems.append(f"{where}: expected a name or a list of names, got {value!r}")
    return ()


_STATE_KEYS = {"final", "deadline", "pauses", "keeps", "label"}
_TRANSITION_KEYS = {
    "trigger",
    "source",
    "dest",
    "roles",
    "guards",
    "actions",
    "event",
    "deadline_outcome",
    "label",
    "requires",
    "public",
}


_TOP_KEYS = {"name", "version", "title", "initial", "states", "transitions"}


def parse(data: Any, *, source: str = "<memory>") -> tuple[WorkflowSpec | None, list[str]]:
    """Parse a loaded YAML document into a spec; structural problems are returned, not raised."""
    if not isinstance(data, dict):
        return None, [
            "the document must be a mapping with name, version, initial, states, transitions"
        ]
    problems: list[str] = []
    name, version, initial = _parse_header(data, problems)
    states = _parse_states(data.get("states"), problems)
    open_states = tuple(s.name for s in states.values() if not s.final)
    transitions = _parse_transitions(data.get("transitions"), open_states, problems)
    if problems:
        return None, problems
    assert isinstance(name, str) and isinstance(version, int) and isinstance(initial, str)
    spec = WorkflowSpec(
        name=name,
        version=version,
        title=str(data.get("title", name)),
        initial=initial,
        states=states,
        transitions=tuple(transitions),
        source=source,
    )
    return spec, []


def _parse_header(data: dict[Any, Any], problems: list[str]) -> tuple[Any, Any, Any]:
    """The name, version and initial state as written; whether each has the right form, and
    whether the document has keys beyond the known top-level ones."""
    name, version, initial = data.get("name"), data.get("version"), data.get("initial")
    if not isinstance(name, str) or not name.isidentifier():
        problems.append(f"name: expected an identifier, got {name!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"version: expected a whole number >= 1, got {version!r}")
    if not isinstance(initial, str):
        problems.append(f"initial: expected a state name, got {initial!r}")
    unknown_top = set(data) - _TOP_KEYS
    if unknown_top:
        problems.append(f"unknown top-level keys: {', '.join(sorted(unknown_top))}")
    return name, version, initial


def _parse_states(raw_states: Any, problems: list[str]) -> dict[str, StateSpec]:
    """The `states` mapping as specs; a state that is not a mapping is left out, and a setting
    of the wrong type is reported and read as absent."""
    if not isinstance(raw_states, dict) or not raw_states:
        problems.append("states: expected a mapping of state name to its settings")
        return {}
    states: dict[str, StateSpec] = {}
    for state_name, raw in raw_states.items():
        raw = raw or {}
        where = f"states.{state_name}"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        if extra := set(raw) - _STATE_KEYS:
            problems.append(f"{where}: unknown keys {', '.join(sorted(extra))}")
        final = raw.get("final", False)
        if not isinstance(final, bool):
            problems.append(f"{where}.final: expected true or false, got {final!r}")
        for key in ("deadline", "pauses"):
            if raw.get(key) is not None and not isinstance(raw.get(key), str):
                problems.append(
                    f"{where}.{key}: expected a deadline kind name, got {raw.get(key)!r}"
                )
        states[str(state_name)] = StateSpec(
            name=str(state_name),
            final=final is True,
            deadline=raw.get("deadline") if isinstance(raw.get("deadline"), str) else None,
            pauses=raw.get("pauses") if isinstance(raw.get("pauses"), str) else None,
            keeps=_as_tuple(raw.get("keeps"), f"{where}.keeps", problems),
            label=str(raw.get("label", "")),
        )
    return states


def _parse_transitions(
    raw_transitions: Any, open_states: tuple[str, ...], problems: list[str]
) -> list[TransitionSpec]:
    """The `transitions` list as specs, in file order; one that is not a mapping or has no
    valid trigger is left out."""
    if not isinstance(raw_transitions, list) or not raw_transitions:
        problems.append("transitions: expected a list")
        return []
    transitions: list[TransitionSpec] = []
    for i, raw in enumerate(raw_transitions):
        spec = _parse_transition(raw, f"transitions[{i}]", open_states, problems)
        if spec is not None:
            transitions.append(spec)
    return transitions


def _parse_transition(
    raw: Any, where: str, open_states: tuple[str, ...], problems: list[str]
) -> TransitionSpec | None:
    """One transition: `source: "*"` becomes every open state, and a dest, event or outcome
    of the wrong form is reported and replaced by its default."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping")
        return None
    if extra := set(raw) - _TRANSITION_KEYS:
        problems.append(f"{where}: unknown keys {', '.join(sorted(extra))}")
    trigger = raw.get("trigger")
    if not isinstance(trigger, str) or not trigger.isidentifier():
        problems.append(f"{where}.trigger: expected an identifier, got {trigger!r}")
        return None
    where = f"{where} ({trigger})"
    sources = _as_tuple(raw.get("source"), f"{where}.source", problems)
    if sources == (ANY_OPEN,):
        sources = open_states
    dest = raw.get("dest")
    if dest is not None and not isinstance(dest, str):
        problems.append(f"{where}.dest: expected a state name or nothing (internal), got {dest!r}")
        dest = None
    event = raw.get("event")
    if event is not None and not (isinstance(event, str) and event.strip()):
        problems.append(
            f"{where}.event: expected an event type such as request.signed, got {event!r}"
        )
        event = None
    public = raw.get("public")
    if (
        public is not None
        and not isinstance(public, bool)
        and not (isinstance(public, str) and public.isidentifier())
    ):
        problems.append(f"{where}.public: expected true, false or a payload field name")
        public = None
    outcome = raw.get("deadline_outcome", "met")
    if outcome not in ("met", "cancelled"):
        problems.append(f"{where}.deadline_outcome: expected met or cancelled, got {outcome!r}")
        outcome = "met"
    return TransitionSpec(
        trigger=trigger,
        sources=sources,
        dest=dest,
        roles=_as_tuple(raw.get("roles"), f"{where}.roles", problems),
        guards=_as_tuple(raw.get("guards"), f"{where}.guards", problems),
        actions=_as_tuple(raw.get("actions"), f"{where}.actions", problems),
        event=event,
        deadline_outcome=outcome,
        label=str(raw.get("label", "")),
        requires=_as_tuple(raw.get("requires"), f"{where}.requires", problems),
        public=public,
    )


def validate(spec: WorkflowSpec, *, guards: Iterable[str], actions: Iterable[str]) -> list[str]:
    """Everything wrong with a parsed spec, given the guard and action names the code registered."""
    problems: list[str] = []
    if spec.initial not in spec.states:
        problems.append(f"initial state {spec.initial!r} is not among the states")
    problems += _state_problems(spec)
    known_guards, known_actions = set(guards), set(actions)
    for t in spec.transitions:
        problems += _transition_problems(spec, t, known_guards, known_actions)
    if problems:
        return problems
    return _graph_problems(spec)


def _state_problems(spec: WorkflowSpec) -> list[str]:
    """Deadlines on states: a known kind, paused only where some state runs it, none on a
    final state."""
    problems: list[str] = []
    paused_kinds = {s.deadline for s in spec.states.values() if s.deadline}
    for s in spec.states.values():
        if s.deadline and s.deadline not in STATE_KINDS:
            problems.append(
                f"state {s.name!r}: unknown deadline kind {s.deadline!r} "
                f"(known: {', '.join(sorted(STATE_KINDS))})"
            )
        for kept in s.keeps:
            if kept not in paused_kinds:
                problems.append(f"state {s.name!r} keeps {kept!r}, which no state runs")
        if s.pauses and s.pauses not in paused_kinds:
            problems.append(f"state {s.name!r} pauses {s.pauses!r}, which no state runs")
        if s.final and (s.deadline or s.pauses or s.keeps):
            problems.append(f"final state {s.name!r} cannot run or pause a deadline")
    return problems


def _transition_problems(
    spec: WorkflowSpec, t: TransitionSpec, known_guards: set[str], known_actions: set[str]
) -> list[str]:
    """One transition's names: known open source states, a known destination, at least one
    known role, and only registered guards and actions."""
    problems: list[str] = []
    states = spec.states
    where = f"transition {t.trigger!r}"
    if not t.sources:
        problems.append(f"{where}: no source state")
    for src in t.sources:
        if src not in states:
            problems.append(f"{where}: unknown source state {src!r}")
        elif states[src].final:
            problems.append(f"{where}: leaves final state {src!r}")
    if t.dest is not None and t.dest not in states:
        problems.append(f"{where}: unknown destination state {t.dest!r}")
    if not t.roles:
        problems.append(f"{where}: no role may take it (roles is empty)")
    for role in t.roles:
        if role not in ROLES:
            problems.append(f"{where}: unknown role {role!r} (known: {', '.join(sorted(ROLES))})")
    for g in t.guards:
        if g not in known_guards:
            problems.append(f"{where}: guard {g!r} is not registered")
    for a in t.actions:
        if a not in known_actions:
            problems.append(f"{where}: action {a!r} is not registered")
    return problems


def _graph_problems(spec: WorkflowSpec) -> list[str]:
    """The shape of a spec whose names are all right: every state reachable from the initial
    one, at least one final state, and every open state with a way out that can end."""
    problems: list[str] = []
    states = spec.states
    edges: dict[str, set[str]] = {name: set() for name in states}
    for t in spec.transitions:
        if t.dest is not None:
            for src in t.sources:
                if src != t.dest:
                    edges[src].add(t.dest)
    reachable = _closure([spec.initial], edges)
    for name in states:
        if name not in reachable:
            problems.append(f"state {name!r} is unreachable from {spec.initial!r}")
    finals = [n for n, s in states.items() if s.final]
    if not finals:
        problems.append("no final state")
    reverse: dict[str, set[str]] = {name: set() for name in states}
    for src, dests in edges.items():
        for d in dests:
            reverse[d].add(src)
    can_finish = _closure(finals, reverse)
    for name, s in states.items():
        if s.final:
            continue
        if not edges[name]:
            problems.append(f"non-final state {name!r} has no way out")
        elif name not in can_finish:
            problems.append(f"non-final state {name!r} can never reach a final state")
    return problems


def _closure(start: Iterable[str], edges: Mapping[str, set[str]]) -> set[str]:
    seen = set(start)
    queue = deque(seen)
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def load_file(path: Path, *, guards: Iterable[str], actions: Iterable[str]) -> WorkflowSpec:
    """Parse and validate one workflow file; raise WorkflowInvalid listing every problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorkflowInvalid(str(path), [f"cannot be read as YAML: {exc}"]) from None
    spec, problems = parse(data, source=str(path))
    if spec is not None:
        problems = validate(spec, guards=guards, actions=actions)
    if problems or spec is None:
        raise WorkflowInvalid(str(path), problems)
    return spec


def load_dir(
    folder: Path, *, guards: Iterable[str], actions: Iterable[str]
) -> tuple[dict[tuple[str, int], WorkflowSpec], list[WorkflowInvalid]]:
    """Every *.yaml/*.yml in a folder: the valid specs, and the errors of the invalid ones."""
    guards, actions = list(guards), list(actions)
    specs: dict[tuple[str, int], WorkflowSpec] = {}
    errors: list[WorkflowInvalid] = []
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        errors.append(WorkflowInvalid(str(folder), ["no workflow files (*.yaml) found"]))
    for path in files:
        try:
            spec = load_file(path, guards=guards, actions=actions)
        except WorkflowInvalid as exc:
            errors.append(exc)
            continue
        if spec.key in specs:
            errors.append(
                WorkflowInvalid(
                    str(path),
                    [
                        f"{spec.name} version {spec.version} is also defined in {specs[spec.key].source}"
                    ],
                )
            )
            continue
        specs[spec.key] = spec
    return specs, errors
