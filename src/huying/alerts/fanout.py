"""Fan-out: each new outbox event becomes one pending delivery per active subscription whose
patterns match its type.

The work queue is the events whose `fanned_out_at` is still empty (a partial index holds
just those), so a pass costs O(new events) however long the outbox grows. A batch is
claimed, its deliveries inserted and the events stamped in one transaction: a crash leaves
the batch for the next pass, and (event, subscription) is unique, so nothing is doubled.
On PostgreSQL workers skip each other's locked events; ``repository.claim_due`` holds back a
request's later events until its earlier ones are fanned out, so order survives that.

A subscription with a `scope_department` gets only the events of requests in that
department's subtree (lead, co-department or task there), as they stand when the batch is
fanned out, like the console and the API of someone bound to that department; events of no
request are not theirs.

A subscription with the public view gets only the events of public timeline entries
(`huying.alerts.public`); what it is sent of each is reduced when it is delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from huying.alerts import repository as repo
from huying.alerts.models import WebhookSubscription
from huying.alerts.patterns import matches
from huying.alerts.public import receives
from huying.directory import service as directory
from huying.runtime import Runtime


def fan_out(rt: Runtime, *, now: datetime, batch: int = 500) -> int:
    """One batch. Returns the number of events fanned out; call again while it equals `batch`."""
    with rt.transaction() as s:
        events = repo.claim_unfanned(s, batch=batch)
        if not events:
            return 0
        subscriptions = repo.subscriptions(s, active_only=True)
        reach = _reach(s, subscriptions, events)
        rows: list[dict[str, Any]] = [
            {
                "event_id": event_id,
                "subscription_id": sub.id,
                "request_id": request_id,
                "event_type": event_type,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for event_id, event_type, request_id, public_event in events
            for sub in subscriptions
            if matches(sub.event_types, event_type)
            and receives(sub.view, public_event=public_event)
            and (sub.scope_department is None or request_id in reach[sub.scope_department])
        ]
        repo.add_deliveries(s, rows)
        repo.mark_fanned_out(s, [event_id for event_id, *_ in events], now=now)
    return len(events)


def _reach(
    session: Session,
    subscriptions: Sequence[WebhookSubscription],
    events: Sequence[Row[int, str, int | None, bool]],
) -> dict[str, set[int]]:
    """For each department some subscription is scoped to, which of the batch's requests are
    in its subtree: one query per such department, none when no subscription is scoped."""
    scopes = {sub.scope_department for sub in subscriptions if sub.scope_department is not None}
    request_ids = {request_id for _, _, request_id, _ in events if request_id is not None}
    return {
        code: repo.requests_in(session, request_ids, directory.subtree(session=session, code=code))
        for code in scopes
    }
