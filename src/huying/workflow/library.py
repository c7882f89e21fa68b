"""The guards and actions that workflow files may name, registered in `REGISTRY`.

Each is a small pure function over the firing's `Context`: guards read the
snapshot, the payload and `ctx.now`; actions record field changes, events and
deadline effects. Configured numbers (reopen limit, returns before escalation,
the ladder's top, suspension and extension limits) come in through `ctx.rules`.
What needs the calendar or the config's lists (a length within its maximum, a
reason code that exists) is input, checked before the engine runs
(`huying.requests.supervision`).
"""

from __future__ import annotations

from datetime import datetime

from huying.workflow.context import Context, DeadlineEffect, TaskEffect
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
    return ctx.snapshot.reopen_count < int(ctx.rules.get("reopen_limit", 1))


@guard("extension_pending", "no extension request is pending")
def extension_pending(ctx: Context) -> bool:
    return ctx.snapshot.pending_extension is not None


@guard("no_extension_pending", "an extension request is already pending a decision")
def no_extension_pending(ctx: Context) -> bool:
    return ctx.snapshot.pending_extension is None


def _reply_runs(ctx: Context) -> bool:
    """The reply deadline is running and its due instant is still ahead: a request that is
    late (or about to be, this very instant) can be neither extended nor suspended."""
    clock = ctx.snapshot.clocks.get("reply")
    return clock is not None and clock.status == "running" and ctx.now < clock.due_at


@guard("extension_in_time", "the deadline has passed; an extension must be asked before it")
def extension_in_time(ctx: Context) -> bool:
    return _reply_runs(ctx)


@guard("under_extension_limit", "this deadline has had as many extensions as allowed")
def under_extension_limit(ctx: Context) -> bool:
    clock = ctx.snapshot.clocks.get("reply")
    count = clock.extension_count if clock is not None else 0
    return count < int(ctx.rules.get("extension_max_count", 1))


@guard(
    "suspension_in_time",
    "the reply deadline has passed (or is not running); an overdue request cannot be suspended",
)
def suspension_in_time(ctx: Context) -> bool:
    return _reply_runs(ctx)


@guard("under_suspension_limit", "the request has had as many suspensions as allowed")
def under_suspension_limit(ctx: Context) -> bool:
    return ctx.snapshot.suspension_count < int(ctx.rules.get("suspension_max_count", 2))


@guard("suspension_pending", "no suspension request is pending")
def suspension_pending(ctx: Context) -> bool:
    return ctx.snapshot.pending_suspension is not None


@guard("no_suspension_pending", "a suspension request is already pending a decision")
def no_suspension_pending(ctx: Context) -> bool:
    return ctx.snapshot.pending_suspension is None


@guard("suspension_without_approval", "a suspension needs a supervisor's approval")
def suspension_without_approval(ctx: Context) -> bool:
    return not ctx.rules.get("suspension_requires_approval", True)


@guard("approved", "the decision is not an approval", needs_payload=True)
def approved(ctx: Context) -> bool:
    return ctx.payload.get("approved") is True


@guard("refused", "the decision is not a refusal", needs_payload=True)
def refused(ctx: Context) -> bool:
    return ctx.payload.get("approved") is False


@guard("own_open_task", "the task is not an open task of your department", needs_payload=True)
def own_open_task(ctx: Context) -> bool:
    """The task named is open and the actor's department's (or the actor coordinates)."""
    task = ctx.snapshot.tasks.get(int(ctx.payload.get("task_id") or 0))
    if task is None or not task.open:
        return False
    return ctx.actor.role != "department" or task.department == ctx.actor.department


@guard("has_task_to_sign", "your department has no task waiting to be signed for")
def has_task_to_sign(ctx: Context) -> bool:
    return any(
        t.department == ctx.actor.department and t.status == "pending"
        for t in ctx.snapshot.tasks.values()
    )


@guard("task_pending", "the task is not waiting to be signed for", needs_payload=True)
def task_pending(ctx: Context) -> bool:
    task = ctx.snapshot.tasks.get(int(ctx.payload.get("task_id") or 0))
    return task is not None and task.status == "pending"


@guard("has_open_tasks", "the request has no open task")
def has_open_tasks(ctx: Context) -> bool:
    return any(t.open for t in ctx.snapshot.tasks.values())


@guard("task_open", "the task is done or cancelled", needs_payload=True)
def task_open(ctx: Context) -> bool:
    task = ctx.snapshot.tasks.get(int(ctx.payload.get("task_id") or 0))
    return task is not None and task.open


@guard("never_replied", "the request has been replied to; it can no longer be returned")
def never_replied(ctx: Context) -> bool:
    return ctx.snapshot.reopen_count == 0


@guard("returns_reviewed", "returns are not reviewed here")
def returns_reviewed(ctx: Context) -> bool:
    return bool(ctx.rules.get("returns_need_review", True))


@guard("returns_not_reviewed", "a return needs the dispatcher's review")
def returns_not_reviewed(ctx: Context) -> bool:
    return not ctx.rules.get("returns_need_review", True)


@guard("returned_from_dispatched", "the return did not come before signing")
def returned_from_dispatched(ctx: Context) -> bool:
    return ctx.snapshot.returned_from == "dispatched"


@guard("returned_from_in_progress", "the return did not come while in progress")
def returned_from_in_progress(ctx: Context) -> bool:
    return ctx.snapshot.returned_from == "in_progress"


# --- actions ----------------------------------------------------------------


def _escalate(
    ctx: Context,
    *,
    reason: str,
    level: int | None = None,
    rung: bool = False,
    emit: bool = True,
) -> None:
    """Raise the request's level. The ladder's rungs are levels 1 to `ladder_top`: a rung
    reached (`rung=True`) sets the level to that rung if it is higher; anything else (a
    supervision, the return or reopen limit) raises it by one, or to `level`. Never above
    the top, never down. `huying.requests.service` adds who is told (`notify`)."""
    top = int(ctx.rules.get("ladder_top", 0))
    current = ctx.get("escalation_level")
    candidate = (level or 0) if rung else max(current + 1, level or 0)
    new_level = max(min(current, top), min(candidate, top))
    ctx.changes["escalation_level"] = new_level
    ctx.data["level"] = new_level
    if emit and new_level >= 1:
        ctx.emit("request.escalated", level=new_level, previous_level=current, reason=reason)


@action("assign_departments")
def assign_departments(ctx: Context) -> None:
    lead = ctx.payload["lead_department"]
    co = tuple(c for c in ctx.payload.get("co_departments") or () if c != lead)
    ctx.changes["lead_department"] = lead
    ctx.changes["co_departments"] = co


def _cancel_open_tasks(ctx: Context) -> None:
    ctx.tasks += [
        TaskEffect("cancel", task_id=task_id)
        for task_id, task in ctx.snapshot.tasks.items()
        if task.open
    ]


@action("assign_with_tasks")
def assign_with_tasks(ctx: Context) -> None:
    """Dispatch (workflow v2): the lead and co-departments, and an `assist` task (协办)
    for each co-department, with its own task deadline."""
    assign_departments(ctx)
    ctx.tasks += [
        TaskEffect("create", department=code, kind="assist", note=ctx.payload.get("note"))
        for code in ctx.changes["co_departments"]
    ]


@action("reassign_departments")
def reassign_departments(ctx: Context) -> None:
    """改派: another lead (not a return). Open tasks end with the old assignment; the new
    co-departments get assist tasks; what the old lead asked for no longer waits; the new
    lead signs anew (a request that was already waiting for a signature gets a new sign
    deadline, as one from any other state does)."""
    previous = ctx.snapshot.lead_department
    _cancel_open_tasks(ctx)
    assign_with_tasks(ctx)
    ctx.data["previous_lead_department"] = previous
    for field_name in ("pending_extension", "pending_suspension", "suspension", "returned_from"):
        ctx.changes[field_name] = None
    if ctx.snapshot.state in ("dispatched", "return_review"):
        ctx.deadlines.append(DeadlineEffect("start", "sign"))
    ctx.deadlines.append(DeadlineEffect("stop", "suspension", outcome="cancelled"))


@action("record_return_request")
def record_return_request(ctx: Context) -> None:
    """退单 to review: where it came from, so a refusal sends it back there. It counts as a
    return (a `request_returns` row, `return_count`) only once accepted."""
    ctx.changes["returned_from"] = ctx.snapshot.state
    ctx.data["returning_department"] = ctx.snapshot.lead_department


@action("accept_return")
def accept_return(ctx: Context) -> None:
    """The dispatcher accepts a return: counted as the returning department's (with the
    escalation past the configured number), its tasks end, and it waits for dispatch."""
    ctx.changes["returned_from"] = None
    _cancel_open_tasks(ctx)
    record_return(ctx)


@action("refuse_return")
def refuse_return(ctx: Context) -> None:
    ctx.changes["returned_from"] = None


@action("create_delegate_tasks")
def create_delegate_tasks(ctx: Context) -> None:
    """下派: a `delegate` task for each department named (sub-units of the lead, checked
    before the engine runs); the lead stays accountable for the request."""
    ctx.tasks += [
        TaskEffect(
            "create",
            department=code,
            kind="delegate",
            note=ctx.payload.get("note"),
            limit=ctx.payload.get("limit"),
        )
        for code in ctx.payload["departments"]
    ]


@action("sign_task")
def sign_task(ctx: Context) -> None:
    ctx.tasks.append(TaskEffect("sign", task_id=int(ctx.payload["task_id"])))


@action("reply_task")
def reply_task(ctx: Context) -> None:
    ctx.tasks.append(
        TaskEffect("reply", task_id=int(ctx.payload["task_id"]), content=ctx.payload["content"])
    )


@action("cancel_task")
def cancel_task(ctx: Context) -> None:
    ctx.tasks.append(TaskEffect("cancel", task_id=int(ctx.payload["task_id"])))


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


def _asked_at(pending: dict[str, object]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(pending["requested_at"]))
    except (KeyError, ValueError):
        return None


@action("decide_extension")
def decide_extension(ctx: Context) -> None:
    """An approval moves the reply deadline's due instant; the planner lifts the overdue mark
    only when the extension was asked before the deadline passed."""
    pending = dict(ctx.snapshot.pending_extension or {})
    approved = bool(ctx.payload["approved"])
    extend_by = ctx.payload.get("extend_by") or pending.get("extend_by")
    ctx.changes["pending_extension"] = None
    ctx.data["requested"] = pending
    ctx.data["extend_by"] = extend_by if approved else None
    if approved and extend_by:
        ctx.deadlines.append(
            DeadlineEffect("extend", "reply", by=str(extend_by), asked_at=_asked_at(pending))
        )


@action("record_suspension_request")
def record_suspension_request(ctx: Context) -> None:
    ctx.changes["pending_suspension"] = {
        "reason_code": ctx.payload["reason_code"],
        "reason": ctx.payload.get("reason"),
        "length": ctx.payload["length"],
        "requested_by": ctx.actor.id,
        "requested_at": ctx.now.isoformat(),
    }


@action("start_suspension")
def start_suspension(ctx: Context) -> None:
    """Suspend: as asked and approved (`decide_suspension`) or at once when suspensions need no
    approval. The reply deadline pauses (the state says so); a `suspension` timer of the
    approved length starts, and when it falls due the worker resumes the request."""
    asked = dict(ctx.snapshot.pending_suspension or ctx.payload)
    length = str(asked["length"])
    ctx.changes["pending_suspension"] = None
    ctx.changes["suspension_count"] = ctx.snapshot.suspension_count + 1
    ctx.changes["suspension"] = {
        "reason_code": asked.get("reason_code"),
        "reason": asked.get("reason"),
        "length": length,
        "requested_by": asked.get("requested_by", ctx.actor.id),
        "since": ctx.now.isoformat(),
        "approved_by": ctx.actor.id if ctx.snapshot.pending_suspension else None,
    }
    ctx.data["requested"] = asked
    ctx.deadlines.append(DeadlineEffect("start", "suspension", by=length))


@action("refuse_suspension")
def refuse_suspension(ctx: Context) -> None:
    ctx.changes["pending_suspension"] = None
    ctx.data["requested"] = dict(ctx.snapshot.pending_suspension or {})


@action("end_suspension")
def end_suspension(ctx: Context) -> None:
    """Resume: by the worker when the approved length has passed, or earlier by the lead."""
    ctx.changes["suspension"] = None
    ctx.deadlines.append(DeadlineEffect("stop", "suspension", outcome="met"))


@action("record_reply")
def record_reply(ctx: Context) -> None:
    """The department's answer; a decision still waiting has nothing left to decide."""
    ctx.changes["resolved"] = bool(ctx.payload["resolved"])
    if ctx.snapshot.pending_extension is not None:
        ctx.changes["pending_extension"] = None
    if ctx.snapshot.pending_suspension is not None:
        ctx.changes["pending_suspension"] = None


@action("record_rating")
def record_rating(ctx: Context) -> None:
    """The rating, and the enterprise's own 是否解决 when it gave one."""
    ctx.changes["rating"] = ctx.payload["rating"]
    if ctx.payload.get("resolved") is not None:
        ctx.changes["enterprise_resolved"] = bool(ctx.payload["resolved"])


@action("reopen")
def reopen(ctx: Context) -> None:
    """Handle again: the answers of the round that ended no longer stand."""
    ctx.changes["reopen_count"] = ctx.snapshot.reopen_count + 1
    ctx.changes["resolved"] = None
    ctx.changes["enterprise_resolved"] = None
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
    _escalate(
        ctx,
        reason="deadline",
        level=int(level) if level is not None else None,
        rung=True,
        emit=False,
    )


@action("task_level")
def task_level(ctx: Context) -> None:
    """A task's ladder: the rung reached is the task department's, not the request's level;
    the event names the task and `huying.requests.service` adds who is told."""
    ctx.data["level"] = ctx.payload.get("level")


@action("raise_escalation")
def raise_escalation(ctx: Context) -> None:
    level = ctx.payload.get("level")
    _escalate(
        ctx,
        reason=str(ctx.payload.get("reason") or ctx.payload.get("note") or ctx.fired.trigger),
        level=int(level) if level is not None else None,
    )
