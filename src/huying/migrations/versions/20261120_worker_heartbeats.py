"""worker heartbeats

Revision ID: 1d05f712c4f7
Revises: 081445465a94
Create Date: 2026-11-20 21:51:40.610239
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import huying.db

revision: str = "1d05f712c4f7"
down_revision: str | None = "081445465a94"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("started_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_tick_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("fired_total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:

    op.drop_table("worker_heartbeats")
