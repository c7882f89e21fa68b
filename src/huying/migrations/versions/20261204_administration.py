"""administration: retiring directory entries, pausing webhooks, robot formats, the audit log

`active` on departments, chains, enterprises and routing rules (categories had it): retiring
an entry keeps it, and everything that names it. `webhook_subscriptions.paused_at`: set while
paused (deliveries queue and go out on resume); `webhook_subscriptions.format`: "standard" or
a group robot's ("wecom", "dingtalk", "feishu"), with an index to count a robot's messages of
the last minute. `audit_entries`: one row per admin write,
appended in the write's own transaction.

Revision ID: 6c1e9a2f4d70
Revises: 2b611cd62f9b
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from huying.db import BigID, JSONType, UTCDateTime

revision: str = "6c1e9a2f4d70"
down_revision: str | None = "2b611cd62f9b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETIRABLE = ("departments", "chains", "enterprises", "routing_rules")


def upgrade() -> None:
    for table in RETIRABLE:
        op.add_column(
            table, sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.add_column("webhook_subscriptions", sa.Column("paused_at", UTCDateTime(), nullable=True))
    op.add_column(
        "webhook_subscriptions",
        sa.Column("format", sa.String(length=16), nullable=False, server_default="standard"),
    )
    op.create_index(
        "ix_deliveries_subscription_attempted",
        "deliveries",
        ["subscription_id", "last_attempt_at"],
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", BigID, primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=100), nullable=False),
        sa.Column("before", JSONType, nullable=True),
        sa.Column("after", JSONType, nullable=True),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_actor", "audit_entries", ["actor"])
    op.create_index("ix_audit_entries_target", "audit_entries", ["target_type", "target_id"])


def downgrade() -> None:
    op.drop_table("audit_entries")
    op.drop_index("ix_deliveries_subscription_attempted", table_name="deliveries")
    op.drop_column("webhook_subscriptions", "format")
    op.drop_column("webhook_subscriptions", "paused_at")
    for table in RETIRABLE:
        op.drop_column(table, "active")
