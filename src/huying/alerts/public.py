"""The public view of webhook events: what a subscription with `view: public` receives.

Such a subscription stands for someone outside the offices (the grid system, the
enterprise's own channel): like an integration reading a request
(`huying.requests.presenters.public_view`), it gets only the events of public timeline
entries (`Event.public`, set from the timeline row the event reports, as the workflow file
marks it) and, of each, only the public fields: where the request is and who handles it,
the reply, the rating, an approved extension. Never the leaders an escalation notifies,
the escalation level or the overdue mark, refusals, returns or what a request for an
extension or a suspension said. Fields are kept by name, so one added later stays out until
it is named here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FULL, PUBLIC = "full", "public"

# The request summary every event carries (`huying.requests.service._event_payload`).
REQUEST_FIELDS = ("id", "number", "state", "category", "enterprise_uscc", "lead_department")
# The event's own fields: the step, and the public ones of its payload. A note of a public
# entry is public (the reply's text, a rejection's reason, the enterprise's comment).
DATA_FIELDS = frozenset(
    {
        "action",
        "from_state",
        "to_state",
        "note",
        "lead_department",
        "rating",
        "resolved",
        "extend_by",
        "source",
    }
)


def receives(view: str, *, public_event: bool) -> bool:
    """Whether a subscription of this view receives an event: a public one only the events
    of public entries, a full one every event."""
    return view != PUBLIC or public_event


def public_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """An event's data as the public view shows it: the named fields only."""
    shown = {k: v for k, v in data.items() if k in DATA_FIELDS}
    summary = data.get("request")
    if isinstance(summary, Mapping):
        shown["request"] = {k: summary[k] for k in REQUEST_FIELDS if k in summary}
    return shown
