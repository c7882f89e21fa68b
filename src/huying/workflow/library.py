"""The guards and actions that workflow files may name, registered in `REGISTRY`.

Each is a small pure function over the firing's `Context`: guards read the
snapshot and the payload; actions record field changes, events and deadline
effects. Configured numbers (reopen limit, returns before escalation) come in
through `ctx.rules`.
"""

from __future__ import annotations

from huying.workflow.context import Context, DeadlineEffect
from huying.workflow.registry import Registry

RATINGS = (
    "very_satisfied",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "very_dissatisfied",
)
SATISFIED = frozenset(RATINGS[:3])

REGISTRY = Registry()
guard, action = REGISTRY.guard, REGISTRY.action


# --- guards -----------------------------------------------------------------


@guard("has_lead_department", "no lead department is named", needs_payload=True)
def has_lead_department(ctx: Context) -> bool:
    return bool(ctx.payload.get("lead_department"))


@guard("rating_satisfied", "the rating is not in the top three levels", needs_payload=True)
def rating_satisfied(ctx: Context) -> bool:
    return ctx.payload.get("rating") in SATISFIED


@guard("rating_unsatisfied", "the rating is not in the bottom two levels", needs_payload=True)
def rating_unsatisfied(ctx: Context) -> bool:
    rating = ctx.payload.get("rating")
    return rating in RATINGS and rating not in SATISFIED


@guard("under_reopen_limit", "the reopen limit is reached")
def under_reopen_limit(ctx: Context) -> bool:
    return ctx.snapshot.reopen_count < ctx.rules.get("reopen_limit", 1)


@guard("extension_pending", "no extension request is pending")
def extension_pending(ctx: Context) -> bool:
    return ctx.snapshot.pending_extension is not None


@guard("no_extension_pending", "an extension request is already pending a decision")
def no_extension_pending(ctx: Context) -> bool:
    return ctx.snapshot.pending_extension is None


# --- actions ----------------------------------------------------------------


def _escalate(ctx: Context, *, reason: str, level: int | None = None, emit: bool = True) -> None:
    current = ctx.get("escalation_level")
    new_level = max(current + 1, level or 0)
    ctx.changes["escalation_level"] = new_level
    ctx.data["level"] = new_level
    if emit:
        ctx.emit("request.escalated", level=new_level, previous_level=current, reason=reason)


@action("assign_departments")
def assign_departments(ctx: Context) -> None:
    lead = ctx.payload["lead_department"]
    co = tuple(c for c in ctx.payload.get("co_departments") or () if c != lead)
    ctx.changes["lead_department"] = lead
    ctx.changes["co_departments"] = co


@action("record_return")
def record_return(ctx: Context) -> None:
    count = ctx.snapshot.return_count + 1
    ctx.changes["return_count"] = count
    ctx.data["returned_by"] = ctx.snapshot.lead_department
    ctx.changes["lead_department"] = None
    ctx.changes["co_departments"] = ()
    if count > ctx.rules.get("return_escalate_after", 2):
        _escalate(ctx, reason=f"returned {count} times")


@action("record_extension_request")
def record_extension_request(ctx: Context) -> None:
    ctx.changes["pending_extension"] = {
        "extend_by": ctx.payload["extend_by"],
        "reason": ctx.payload.get("reason"),
        "requested_by": ctx.actor.id,
        "requested_at": ctx.now.isoformat(),
    }


@action("decide_extension")
def decide_extension(ctx: Context) -> None:
    pending = ctx.snapshot.pending_extension or {}
    approved = bool(ctx.payload["approved"])
    extend_by = ctx.payload.get("extend_by") or pending.get("extend_by")
    ctx.changes["pending_extension"] = None
    ctx.data["requested"] = dict(pending)
    ctx.data["extend_by"] = extend_by if approved else None
    if approved and extend_by:
        ctx.deadlines.append(DeadlineEffect("extend", "reply", by=str(extend_by)))


@action("record_reply")
def record_reply(ctx: Context) -> None:
    ctx.changes["resolved"] = bool(ctx.payload["resolved"])


@action("record_rating")
def record_rating(ctx: Context) -> None:
    ctx.changes["rating"] = ctx.payload["rating"]


@action("reopen")
def reopen(ctx: Context) -> None:
    ctx.changes["reopen_count"] = ctx.snapshot.reopen_count + 1
    ctx.changes["resolved"] = None
    ctx.emit("request.reopened", reopen_count=ctx.snapshot.reopen_count + 1)


@action("close_request")
def close_request(ctx: Context) -> None:
    ctx.changes["closed_at"] = ctx.now
    ctx.emit("request.closed", resolved=ctx.get("resolved"), rating=ctx.get("rating"))


@action("close_unresolved")
def close_unresolved(ctx: Context) -> None:
    ctx.changes["resolved"] = False
    _escalate(ctx, reason="still unsatisfied after the reopen limit")


@action("record_merge")
def record_merge(ctx: Context) -> None:
    ctx.changes["merged_into_id"] = ctx.payload["target_id"]


@action("raise_level")
def raise_level(ctx: Context) -> None:
    """A timer's escalation: the transition's own event (request.escalated) carries it."""
    level = ctx.payload.get("level")
    _escalate(ctx, reason="deadline", level=int(level) if level is not None else None, emit=False)


@action("raise_escalation")
def raise_escalation(ctx: Context) -> None:
    level = ctx.payload.get("level")
    _escalate(
        ctx,
        reason=str(ctx.payload.get("reason") or ctx.payload.get("note") or ctx.fired.trigger),
        level=int(level) if level is not None else None,
    )
