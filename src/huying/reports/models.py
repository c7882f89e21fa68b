"""The rates' pass one folded a month at a time (`huying.reports.rollups`): which months are
folded and clean (`report_months`), and their groups (`report_rollups`)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table

from huying.db import Base, BigID, UTCDateTime

# The counts of `huying.reports.repository.conditions` but the escalations, a column each
# (tests/reports/test_rollups.py holds the two the same: a new condition needs a migration
# that adds its column, and a fold of every month again).
COUNTED = (
    "dispatched",
    "sign_due",
    "signed",
    "signed_on_time",
    "replied",
    "replied_on_time",
    "closed",
    "resolved_confirmed",
    "resolved_claimed",
    "rated",
    "satisfied",
    "reopened",
    "returned",
    "overdue_now",
)

# The grid grouping is folded by the first 9 characters of the grid code (the street, and the
# reports' default `grid_len`): a report by a prefix as long or shorter sums the rows, one by a
# longer prefix reads its requests. By the whole code, each department's rows of each of a
# district's hundreds of cells outnumbered the requests they stood for (bench/reports.py).
FOLDED_GRID_LEN = 9

# A month folded: [starts_at, ends_at) in UTC, the calendar month in the calendar's zone.
# `dirty`: a request received in it was inserted, changed or deleted since (the trigger on
# `requests`, migration 20261208), so its rows no longer hold and it is read from `requests`.
# `folded_at` NULL: marked clean by a fold that has not written its rows yet (not read).
report_months = Table(
    "report_months",
    Base.metadata,
    Column("starts_at", UTCDateTime(), primary_key=True),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("dirty", Boolean, nullable=False),
    Column("folded_at", UTCDateTime()),
)

# A folded month's rows for each grouping, by lead department and group key (for the grid, its
# first `FOLDED_GRID_LEN` characters: a report cuts its prefix): per escalation level, how many requests and how many meet
# each condition (no bucket); per bucket of a fact's histogram, how many requests have their
# seconds in it (`<fact>_n`) and their sum (every count 0).
report_rollups = Table(
    "report_rollups",
    Base.metadata,
    Column("id", BigID, primary_key=True, autoincrement=True),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("grouping", String(16), nullable=False),
    Column("department", String(64)),
    Column("key", String(64)),
    Column("sign_bucket", Integer),
    Column("reply_bucket", Integer),
    Column("escalation_level", Integer, nullable=False),
    Column("received", Integer, nullable=False),
    *[Column(name, Integer, nullable=False) for name in COUNTED],
    Column("sign_sum", BigInteger),
    Column("reply_sum", BigInteger),
    Column("sign_n", Integer, nullable=False),
    Column("reply_n", Integer, nullable=False),
    Index("ix_report_rollups_grouping_starts_at", "grouping", "starts_at"),
)
