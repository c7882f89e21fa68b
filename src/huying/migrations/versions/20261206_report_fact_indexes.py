"""report fact indexes: each fact's working seconds, in order, for the rates' 90th percentiles

The rates find each group's 90th percentile in a histogram bucket of the fact's working
seconds, then read the value at its rank from that bucket's requests
(`huying.reports.repository`). Without an index that read was a second pass over every
request of the period; with one it reads the bucket from the end nearer the rank: 7,000 to
25,000 requests for a year of a million (bench/reports.py). `created_at` beside the seconds keeps a short
period's read to that period's requests.

Partial: a request is stored without its facts (they are written when it is signed and
first replied to), so a submit writes no entry in either index.

Revision ID: 3e7a1c5d9b42
Revises: 8d3f5b7a9c21
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3e7a1c5d9b42"
down_revision: str | None = "8d3f5b7a9c21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("sign_working_seconds", "first_reply_working_seconds")


def upgrade() -> None:
    for name in COLUMNS:
        op.create_index(
            f"ix_requests_{name}",
            "requests",
            [name, "created_at"],
            postgresql_where=sa.text(f"{name} IS NOT NULL"),
            sqlite_where=sa.text(f"{name} IS NOT NULL"),
        )


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_index(f"ix_requests_{name}", table_name="requests")
