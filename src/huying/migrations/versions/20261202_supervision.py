"""supervision that holds: suspensions by approval, capped extensions, the enterprise's answer

Requests gain `enterprise_resolved` (是否解决 as the enterprise answered when it rated),
`pending_suspension`, `suspension` and `suspension_count`; deadlines gain `extension_count`
and `extended_seconds` (the working seconds extensions added), which cap extensions per
deadline. Existing rows start at zero and NULL: nothing is derived.

Revision ID: 3c7d2e9a5b10
Revises: 899152ff4573
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import huying.db

revision: str = "3c7d2e9a5b10"
down_revision: str | None = "899152ff4573"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): a batch operation would copy and drop `requests`,
    # and the drop would cascade to its deadlines, timeline and returns.
    op.add_column("requests", sa.Column("enterprise_resolved", sa.Boolean(), nullable=True))
    op.add_column("requests", sa.Column("pending_suspension", huying.db.JSONType, nullable=True))
    op.add_column("requests", sa.Column("suspension", huying.db.JSONType, nullable=True))
    op.add_column(
        "requests",
        sa.Column("suspension_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "deadlines",
        sa.Column("extension_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "deadlines",
        sa.Column("extended_seconds", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("deadlines", "extended_seconds")
    op.drop_column("deadlines", "extension_count")
    op.drop_column("requests", "suspension_count")
    op.drop_column("requests", "suspension")
    op.drop_column("requests", "pending_suspension")
    op.drop_column("requests", "enterprise_resolved")
