"""request report facts: signing and first reply, recorded when they happen

The rates report read them from the deadlines, joining two of them per request and counting
working time per row; over a year of a district's requests that took seconds. The facts now
live on the request, written by the action that makes them, and a period is found by the new
index on `created_at`. Requests already stored get their facts from their deadlines here
(`huying.reports.facts.backfill`, on the business calendar of the settings).

Revision ID: 5b2f0c9d7e41
Revises: c87d14a1e27b
Create Date: 2026-11-21 00:40:00
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import context, op

if TYPE_CHECKING:
    from huying.calendar import BusinessCalendar

revision: str = "5b2f0c9d7e41"
down_revision: str | None = "c87d14a1e27b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("requests", sa.Column("sign_on_time", sa.Boolean(), nullable=True))
    op.add_column("requests", sa.Column("sign_working_seconds", sa.Integer(), nullable=True))
    op.add_column("requests", sa.Column("first_reply_on_time", sa.Boolean(), nullable=True))
    op.add_column("requests", sa.Column("first_reply_working_seconds", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_requests_created_at"), "requests", ["created_at"], unique=False)

    conn = op.get_bind()
    if conn.execute(sa.text("SELECT 1 FROM deadlines LIMIT 1")).first() is None:
        return  # nothing to derive (a new installation); no calendar needed
    # The live back-fill (also `huying reports facts`). Should a later revision rename a
    # column it reads, give this revision its own copy first: the test that downgrades past
    # this revision with stored requests and upgrades again (tests/test_migrations.py) fails.
    from huying.reports import facts

    facts.backfill(conn, _calendar())


def _calendar() -> "BusinessCalendar":
    """The calendar `huying.migrate.upgrade` was given, or the one of the settings."""
    calendar: BusinessCalendar | None = context.config.attributes.get("calendar")
    if calendar is None:
        from huying.runtime import build_calendar
        from huying.settings import load_settings

        calendar = build_calendar(load_settings())
    return calendar


def downgrade() -> None:
    op.drop_index(op.f("ix_requests_created_at"), table_name="requests")
    # Plain ALTER TABLE … DROP COLUMN, on SQLite too (3.35+): a batch copy of `requests` would
    # drop the table its children's foreign keys point to.
    for column in (
        "first_reply_working_seconds",
        "first_reply_on_time",
        "sign_working_seconds",
        "sign_on_time",
    ):
        op.drop_column("requests", column)
