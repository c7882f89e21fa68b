"""The engine: one shared `transitions.Machine` per workflow definition, never one per request.

`fire()` takes a request's snapshot, the trigger, the actor, the payload and `now`,
and returns an `Outcome` (new state, field changes, the timeline row, deadline
effects, events) or raises `UnknownAction` (404), `Forbidden` (403), `NotAllowedNow` or
`GuardRefused` (409), or `MissingFields` (422); the refusals say which actions are allowed.
It touches no database and no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from transitions import Machine

from huying.errors import (
    Forbidden,
    GuardRefused,
    MissingFields,
    NotAllowedNow,
    NotFound,
    UnknownAction,
)
from huying.workflow.context import (
    Actor,
    Context,
    DeadlineEffect,
    EventDraft,
    Outcome,
    Snapshot,
    TimelineDraft,
)
from huying.workflow.definition import (
    PUBLIC_BY_DEFAULT,
    StateSpec,
    TransitionSpec,
    WorkflowSpec,
)
from huying.workflow.registry import Registry

# The first of these the payload has becomes the timeline row's note; the rest stay in its data.
NOTE_FIELDS = ("reason", "content", "note")
# `allowed` without an instant: guards that compare with `now` pass, as the ones that need the
# payload do (the firing decides).
_ANY_TIME = datetime.min.replace(tzinfo=UTC)


class _Token:
    """The stand-in model `transitions` moves; one per firing, costs one attribute."""

    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def role_matches(roles: tuple[str, ...], actor: Actor, snapshot: Snapshot) -> bool:
    """`lead_department` is the department role bound to the request's lead department;
    `task_department`, bound to the department of one of its open tasks."""
    if actor.role in roles:
        return True
    if actor.role != "department" or actor.department is None:
        return False
    if "lead_department" in roles and actor.department == snapshot.lead_department:
        return True
    return "task_department" in roles and any(
        t.department == actor.department and t.open for t in snapshot.tasks.values()
    )


def _role_may_ever(roles: tuple[str, ...], actor: Actor) -> bool:
    """Whether the actor's role could take a transition with these roles on some request."""
    return actor.role in roles or (
        actor.role == "department" and bool({"lead_department", "task_department"} & set(roles))
    )


class CompiledWorkflow:
    def __init__(self, spec: WorkflowSpec, registry: Registry) -> None:
        self.spec = spec
        self.registry = registry
        self.machine = Machine(
            model=None,
            states=list(spec.states),
            initial=spec.initial,
            transitions=[self._transition(t) for t in spec.transitions],
            send_event=True,
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        # (state, trigger) -> the transitions in file order, for pre-checks and `allowed`
        self.table: dict[tuple[str, str], list[TransitionSpec]] = {}
        for t in spec.transitions:
            for src in t.sources:
                self.table.setdefault((src, t.trigger), []).append(t)

    def _transition(self, t: TransitionSpec) -> dict[str, Any]:
        registry = self.registry

        def roles_ok(event: Any) -> bool:
            ctx: Context = event.kwargs["ctx"]
            return role_matches(t.roles, ctx.actor, ctx.snapshot)

        def guard(name: str) -> Callable[[Any], bool]:
            g = registry.guards[name]

            def check(event: Any) -> bool:
                ctx: Context = event.kwargs["ctx"]
                ok = g.fn(ctx)
                if not ok:
                    ctx.refusals.append(g.name)
                return ok

            return check

        actions = [registry.actions[a] for a in t.actions]

        def apply(event: Any) -> None:
            ctx: Context = event.kwargs["ctx"]
            ctx.fired = t
            for action in actions:
                action(ctx)

        return {
            "trigger": t.trigger,
            "source": list(t.sources),
            "dest": t.dest,
            "conditions": [roles_ok, *(guard(g) for g in t.guards)],
            "after": [apply],
        }


class Engine:
    def __init__(
        self,
        specs: Mapping[tuple[str, int], WorkflowSpec],
        registry: Registry,
        rules: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.rules = dict(rules or {})
        self.workflows = {key: CompiledWorkflow(spec, registry) for key, spec in specs.items()}

    def latest(self, name: str) -> WorkflowSpec:
        versions = [k for k in self.workflows if k[0] == name]
        if not versions:
            raise NotFound(f"no workflow named {name!r}", code="unknown_workflow")
        return self.workflows[max(versions)].spec

    def spec(self, name: str, version: int) -> WorkflowSpec:
        return self._compiled(name, version).spec

    def state_names(self) -> frozenset[str]:
        """Every state of every loaded workflow (a request of any version may be in one)."""
        return frozenset(state for c in self.workflows.values() for state in c.spec.states)

    def _compiled(self, name: str, version: int) -> CompiledWorkflow:
        try:
            return self.workflows[(name, version)]
        except KeyError:
            raise NotFound(
                f"workflow {name} version {version} is not loaded", code="unknown_workflow"
            ) from None

    def start(
        self, name: str, version: int, *, actor: Actor, now: datetime, data: Mapping[str, Any]
    ) -> Outcome:
        """The outcome of creating a request: it enters the initial state."""
        spec = self._compiled(name, version).spec
        initial = spec.states[spec.initial]
        effects = (DeadlineEffect("start", initial.deadline),) if initial.deadline else ()
        return Outcome(
            trigger="submit",
            from_state=None,
            state=spec.initial,
            changes={},
            timeline=TimelineDraft(
                "submit", None, spec.initial, actor.id, actor.role, now, None, dict(data), True
            ),
            deadlines=effects,
            events=(),
        )

    def allowed(
        self,
        name: str,
        version: int,
        snapshot: Snapshot,
        actor: Actor,
        *,
        now: datetime | None = None,
    ) -> list[str]:
        """The triggers this actor may take at `now`: state and role allow it, and every
        guard that can be decided without the action's fields passes (without `now`, guards
        about time pass too)."""
        wf = self._compiled(name, version)
        result: list[str] = []
        ctx = Context(snapshot, actor, {}, now or _ANY_TIME, self.rules)
        for trigger in wf.spec.triggers:
            for t in wf.table.get((snapshot.state, trigger), ()):
                if not role_matches(t.roles, actor, snapshot):
                    continue
                guards = [wf.registry.guards[g] for g in t.guards]
                if all(g.needs_payload or g.fn(ctx) for g in guards):
                    result.append(trigger)
                    break
        return result

    def check(
        self,
        name: str,
        version: int,
        snapshot: Snapshot,
        trigger: str,
        *,
        actor: Actor,
        now: datetime | None = None,
    ) -> CompiledWorkflow:
        """Whether the state and the actor's role allow the trigger at all (guards aside):
        UnknownAction for an action the workflow does not have, NotAllowedNow for one the
        state does not allow, Forbidden for one the role may not take."""
        return self._checked(name, version, snapshot, trigger, actor=actor, now=now)[0]

    def _checked(
        self,
        name: str,
        version: int,
        snapshot: Snapshot,
        trigger: str,
        *,
        actor: Actor,
        now: datetime | None,
    ) -> tuple[CompiledWorkflow, list[TransitionSpec]]:
        """`check`, and the transitions of the trigger from this state the actor's role may
        take, in file order."""
        wf = self._compiled(name, version)
        candidates = wf.table.get((snapshot.state, trigger))
        if not candidates:
            allowed = self.allowed(name, version, snapshot, actor, now=now)
            if trigger not in wf.spec.triggers:
                raise UnknownAction(f"unknown action {trigger!r}", allowed=allowed)
            if not any(
                _role_may_ever(t.roles, actor) for t in wf.spec.transitions if t.trigger == trigger
            ):
                raise Forbidden(
                    f"role {actor.role!r} may not take action {trigger!r}", allowed=allowed
                )
            raise NotAllowedNow(
                f"action {trigger!r} is not possible in state {snapshot.state!r}",
                allowed=allowed,
            )
        mine = [t for t in candidates if role_matches(t.roles, actor, snapshot)]
        if not mine:
            task_only = all(
                "task_department" in t.roles and "lead_department" not in t.roles
                for t in candidates
            )
            why = (
                "your department has no open task on this request"
                if task_only and actor.role == "department"
                else f"role {actor.role!r} may not take action {trigger!r} on this request"
            )
            raise Forbidden(why, allowed=self.allowed(name, version, snapshot, actor, now=now))
        return wf, mine

    def fire(
        self,
        name: str,
        version: int,
        snapshot: Snapshot,
        trigger: str,
        *,
        actor: Actor,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> Outcome:
        wf, candidates = self._checked(name, version, snapshot, trigger, actor=actor, now=now)
        missing = [
            f
            for f in dict.fromkeys(f for t in candidates for f in t.requires)
            if payload.get(f) is None or payload.get(f) == ""
        ]
        if missing:
            raise MissingFields(f"{trigger}: {', '.join(missing)} required", fields=missing)
        ctx = Context(snapshot, actor, payload, now, self.rules)
        token = _Token(snapshot.state)
        if not wf.machine.events[trigger].trigger(token, ctx=ctx):
            refusals = _telling(list(dict.fromkeys(ctx.refusals)), wf.registry)
            said = dict.fromkeys(wf.registry.guards[g].refusal for g in refusals)
            reason = "; ".join(said) or "its conditions are not met"
            raise GuardRefused(
                f"action {trigger!r} refused: {reason}",
                refusals=refusals,
                allowed=self.allowed(name, version, snapshot, actor, now=now),
            )
        fired: TransitionSpec = ctx.fired
        return self._outcome(wf.spec, fired, ctx, trigger, snapshot.state, token.state)

    @staticmethod
    def _outcome(
        spec: WorkflowSpec,
        t: TransitionSpec,
        ctx: Context,
        trigger: str,
        source: str,
        dest: str,
    ) -> Outcome:
        effects = (
            _deadline_effects(spec.states[source], spec.states[dest], t) if dest != source else []
        )
        effects.extend(ctx.deadlines)
        payload = ctx.payload
        note_field = next((f for f in NOTE_FIELDS if payload.get(f)), None)
        note = payload[note_field] if note_field else None
        data = {
            k: v
            for k, v in payload.items()
            if v is not None and k != note_field and not (k in NOTE_FIELDS and not v)
        }
        data.update(ctx.data)
        event_data: dict[str, Any] = {"action": trigger, "from_state": source, "to_state": dest}
        event_data.update(data)
        if note:
            event_data["note"] = note
        events = (EventDraft(t.event_type, event_data), *ctx.events)
        return Outcome(
            trigger=trigger,
            from_state=source,
            state=dest,
            changes=ctx.changes,
            timeline=TimelineDraft(
                trigger,
                source,
                dest,
                ctx.actor.id,
                ctx.actor.role,
                ctx.now,
                note,
                data,
                _public(t, payload),
            ),
            deadlines=tuple(effects),
            events=events,
            tasks=tuple(ctx.tasks),
        )


def _public(t: TransitionSpec, payload: Mapping[str, Any]) -> bool:
    """Whether the transition's timeline row is in the public view (see `public` in the
    workflow file; `PUBLIC_BY_DEFAULT` where the file says nothing)."""
    rule = t.public if t.public is not None else PUBLIC_BY_DEFAULT.get(t.trigger, False)
    if isinstance(rule, str):
        return payload.get(rule) is True
    return rule


def _telling(refusals: list[str], registry: Registry) -> list[str]:
    """The refusals worth saying. Guards on the payload mostly choose between transitions
    of one trigger (approved or refused, satisfied or not): when a guard of the request
    itself refused too, that one says why, and "the decision is not a refusal" is noise."""
    about_request = [g for g in refusals if not registry.guards[g].needs_payload]
    return about_request or refusals


def _deadline_effects(src: StateSpec, dst: StateSpec, t: TransitionSpec) -> list[DeadlineEffect]:
    """What leaving `src` for `dst` does to the deadlines the two states declare. A
    deadline `dst` keeps goes on running into it; one `src` kept goes on into a `dst` that
    runs it, and ends (cancelled) anywhere else."""
    effects: list[DeadlineEffect] = []
    if src.deadline and src.deadline != dst.deadline and src.deadline not in dst.keeps:
        if dst.pauses == src.deadline:
            effects.append(DeadlineEffect("pause", src.deadline))
        else:
            effects.append(DeadlineEffect("stop", src.deadline, outcome=t.deadline_outcome))
    if src.pauses and src.pauses != dst.deadline:
        effects.append(DeadlineEffect("stop", src.pauses, outcome="cancelled"))
    effects += [
        DeadlineEffect("stop", kept, outcome="cancelled")
        for kept in src.keeps
        if kept != dst.deadline and kept not in dst.keeps
    ]
    if dst.deadline and dst.deadline != src.deadline and dst.deadline not in src.keeps:
        effects.append(
            DeadlineEffect("resume" if src.pauses == dst.deadline else "start", dst.deadline)
        )
    return effects
