"""The reports' per-request facts, derived again from stored deadlines.

`huying.requests.service.record_facts` writes them as they happen; `backfill` sets them for
requests that are already stored (the migration that added the columns runs it). Both read
the same deadlines the same way:

- the signing is the first sign deadline to end `met` or `missed` (a return or a merge cancels
  it instead; in workflow v1 a signed request is never dispatched again, so there is one);
- the first reply round is the first reply deadline to end `met` or `missed` (the smallest
  id: a reopen starts a later round, after the earlier one ended);

and the working seconds between its start and its end, on the business calendar, rounded to
the second half up (`huying.requests.service.seconds_rounded`). SQLite keeps instants to about
a millisecond in this arithmetic, so there a back-filled figure can differ from the recorded one
by a second.
Working time is counted in SQL with `huying.reports.worktime`'s day table, so a million
requests take one UPDATE per fact (`huying.reports.repository.set_facts`) rather than a million
round trips.
"""

from __future__ import annotations

from sqlalchemy import Connection

from huying.calendar import BusinessCalendar
from huying.reports import repository, worktime


def backfill(conn: Connection, calendar: BusinessCalendar) -> int:
    """Set the four facts of every request from its deadlines; returns how many facts of
    requests were set: signings plus first replies."""
    lo, hi = repository.ended_deadlines_span(conn)
    if lo is None or hi is None:
        return 0
    days = worktime.build_day_table(calendar, lo, max(lo, hi)).as_values().cte("workdays")
    for kind in ("sign", "reply"):
        repository.set_facts(conn, days, kind)
    return repository.facts_set(conn)
