"""deadline claim order: the partial index of due deadlines covers (next_fire_at, id)

The worker claims due deadlines oldest first, ties by id (`huying.requests.repository.
claim_due`). Ties are common: limits end at the same hour of the working day. On
`next_fire_at` alone the claim had to read and sort a whole tie before it could lock the
first row of a batch, so it was ordered by `next_fire_at` only, and which of a request's
deadlines due at the same instant fired first then depended on where its rows lay on disk.
With `id` in the index the claim walks it in exactly its order and stops at the batch's end.

Revision ID: 5c2e8a4f1d73
Revises: 3e7a1c5d9b42
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c2e8a4f1d73"
down_revision: str | None = "3e7a1c5d9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_deadlines_next_fire_at"
DUE = "next_fire_at IS NOT NULL"


def _index(columns: list[str]) -> None:
    op.create_index(
        NAME,
        "deadlines",
        columns,
        postgresql_where=sa.text(DUE),
        sqlite_where=sa.text(DUE),
    )


def upgrade() -> None:
    op.drop_index(NAME, table_name="deadlines")
    _index(["next_fire_at", "id"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="deadlines")
    _index(["next_fire_at"])
