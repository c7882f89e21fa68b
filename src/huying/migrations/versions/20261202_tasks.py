"""many hands: request tasks (assist and delegate), task deadlines, reviewed returns

`request_tasks` holds each task of a request for another department (协办 or 下派) with its
status, its reply and whether it was replied on time; `deadlines.task_id` ties a `task`
deadline to its task; `requests.returned_from` is the state a return under review came
from.

Revision ID: 5e1a7c3d9b42
Revises: 3c7d2e9a5b10
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import huying.db

revision: str = "5e1a7c3d9b42"
down_revision: str | None = "3c7d2e9a5b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = huying.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "request_tasks",
        sa.Column("id", BigID, nullable=False),
        sa.Column("request_id", BigID, nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("limit", sa.String(length=64), nullable=True),
        sa.Column("created_at", Instant, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("signed_at", Instant, nullable=True),
        sa.Column("signed_by", sa.String(length=100), nullable=True),
        sa.Column("replied_at", Instant, nullable=True),
        sa.Column("replied_by", sa.String(length=100), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("ended_at", Instant, nullable=True),
        sa.Column("received_at", Instant, nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_tasks_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_request_tasks_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_tasks")),
    )
    op.create_index(op.f("ix_request_tasks_request_id"), "request_tasks", ["request_id"])
    op.create_index(op.f("ix_request_tasks_department_code"), "request_tasks", ["department_code"])
    op.create_index(op.f("ix_request_tasks_received_at"), "request_tasks", ["received_at"])
    # No foreign key: SQLite cannot add one to an existing table without copying it. A
    # task's deadlines go with their request (deadlines.request_id cascades), as the task.
    op.add_column("deadlines", sa.Column("task_id", BigID, nullable=True))
    op.create_index(op.f("ix_deadlines_task_id"), "deadlines", ["task_id"])
    op.add_column("requests", sa.Column("returned_from", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("requests", "returned_from")
    op.drop_index(op.f("ix_deadlines_task_id"), table_name="deadlines")
    op.drop_column("deadlines", "task_id")
    op.drop_index(op.f("ix_request_tasks_received_at"), table_name="request_tasks")
    op.drop_index(op.f("ix_request_tasks_department_code"), table_name="request_tasks")
    op.drop_index(op.f("ix_request_tasks_request_id"), table_name="request_tasks")
    op.drop_table("request_tasks")
