"""Fan-out: each new outbox event becomes one pending delivery per active subscription whose
patterns match its type.

The work queue is the events whose `fanned_out_at` is still empty (a partial index holds
just those), so a pass costs O(new events) however long the outbox grows. A batch is
claimed, its deliveries inserted and the events stamped in one transaction: a crash leaves
the batch for the next pass, and (event, subscription) is unique, so nothing is doubled.
On PostgreSQL workers skip each other's locked events; ``repository.claim_due`` holds back a
request's later events until its earlier ones are fanned out, so order survives that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from huying.alerts import repository as repo
from huying.alerts.patterns import matches
from huying.runtime import Runtime


def fan_out(rt: Runtime, *, now: datetime, batch: int = 500) -> int:
    """One batch. Returns the number of events fanned out; call again while it equals `batch`."""
    with rt.transaction() as s:
        events = repo.claim_unfanned(s, batch=batch)
        if not events:
            return 0
        subscriptions = repo.subscriptions(s, active_only=True)
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
            for event_id, event_type, request_id in events
            for sub in subscriptions
            if matches(sub.event_types, event_type)
        ]
        repo.add_deliveries(s, rows)
        repo.mark_fanned_out(s, [event_id for event_id, _, _ in events], now=now)
    return len(events)
