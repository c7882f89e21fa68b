"""webhook subscriptions scoped to a department's subtree

`webhook_subscriptions.scope_department`: when set, the subscription receives only the events
of requests whose lead department, a co-department or a task's department is that department
or one below it, decided at fan-out time (a street's robot group gets the street's and its
communities' events). Empty for the subscriptions made before, which keep receiving
everything. No foreign key: SQLite cannot add one to an existing table without copying it,
and departments are retired, never deleted.

Revision ID: 07f0c36a48ad
Revises: 5e1a7c3d9b42
Create Date: 2026-12-02 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "07f0c36a48ad"
down_revision: str | None = "5e1a7c3d9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions",
        sa.Column("scope_department", sa.String(length=64), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("webhook_subscriptions", "scope_department")
