"""cache generations: what tells every replica that its cached directory or keys are stale

`cache_generations` holds one row per process-local cache (`huying.cache`): "directory"
(departments, chains, categories, enterprises, routing rules) and "auth" (API keys, users,
staff sessions). Every write to those tables gives the row a new random number in the
write's own transaction; a transaction that uses a cache reads the rows first.

Revision ID: 8d3f5b7a9c21
Revises: 6c1e9a2f4d70
Create Date: 2026-12-05 10:00:00
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8d3f5b7a9c21"
down_revision: str | None = "6c1e9a2f4d70"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "cache_generations",
        sa.Column("name", sa.String(length=32), primary_key=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(
        table,
        [{"name": name, "generation": secrets.randbits(62) + 1} for name in ("directory", "auth")],
    )


def downgrade() -> None:
    op.drop_table("cache_generations")
