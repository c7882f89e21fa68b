"""request returns: which department returned a request, for the reports

The rates report counted a return under the department that held the request when the
report ran, never the one that returned it. Each return is now a row, with the request's
`created_at` so that a report's period finds it alone; the requests already stored get theirs
from their timeline (the `return` entries' `returned_by`).

Revision ID: 8e3a61c2d9f0
Revises: 5b2f0c9d7e41
Create Date: 2026-11-21 01:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import huying.db

revision: str = "8e3a61c2d9f0"
down_revision: str | None = "5b2f0c9d7e41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "request_returns",
        sa.Column("id", BigID, nullable=False),
        sa.Column("request_id", BigID, nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=False),
        sa.Column("at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_request_returns_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_returns_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_returns")),
    )
    op.create_index(
        op.f("ix_request_returns_department_code"), "request_returns", ["department_code"]
    )
    op.create_index(op.f("ix_request_returns_request_id"), "request_returns", ["request_id"])
    op.create_index(op.f("ix_request_returns_received_at"), "request_returns", ["received_at"])

    # The returns already stored, from the timeline as this revision knows it.
    timeline = sa.table(
        "timeline_entries",
        sa.column("request_id", BigID),
        sa.column("action", sa.String()),
        sa.column("at", huying.db.UTCDateTime(timezone=True)),
        sa.column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    requests = sa.table(
        "requests",
        sa.column("id", BigID),
        sa.column("created_at", huying.db.UTCDateTime(timezone=True)),
    )
    returns = sa.table(
        "request_returns",
        sa.column("request_id", BigID),
        sa.column("department_code", sa.String()),
        sa.column("at", huying.db.UTCDateTime(timezone=True)),
        sa.column("received_at", huying.db.UTCDateTime(timezone=True)),
    )
    department = timeline.c.data["returned_by"].as_string()
    op.execute(
        returns.insert().from_select(
            ["request_id", "department_code", "at", "received_at"],
            sa.select(timeline.c.request_id, department, timeline.c.at, requests.c.created_at)
            .join(requests, requests.c.id == timeline.c.request_id)
            .where(timeline.c.action == "return", department.is_not(None))
            .order_by(timeline.c.at),
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_request_returns_received_at"), table_name="request_returns")
    op.drop_index(op.f("ix_request_returns_request_id"), table_name="request_returns")
    op.drop_index(op.f("ix_request_returns_department_code"), table_name="request_returns")
    op.drop_table("request_returns")
