"""public webhooks: subscriptions with the public view, events that say whether they are public

`webhook_subscriptions.view`: "full" (every matching event as written; the subscriptions made
before keep it) or "public" (only the events of public timeline entries, their data reduced
to what an integration may see). `events.public` marks those events; the events stored
before are internal, so a public subscription never receives one it cannot judge.

Revision ID: 2b611cd62f9b
Revises: 9d4b2f6e8a13
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2b611cd62f9b"
down_revision: str | None = "9d4b2f6e8a13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions",
        sa.Column("view", sa.String(length=16), nullable=False, server_default="full"),
    )
    op.add_column(
        "events",
        sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("events", "public")
    op.drop_column("webhook_subscriptions", "view")
