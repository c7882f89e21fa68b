"""report rollups: the rates' pass one folded a month at a time, and the trigger that keeps it

`report_rollups` holds each folded month's requests grouped as the rates' pass one groups them;
`report_months` which months are folded, and which became `dirty` since. The trigger on
`requests` marks the month of every request inserted, changed or deleted dirty, whatever
wrote it (on PostgreSQL once per statement, over the rows it wrote), and its UPDATE takes the
table lock of `report_months` even when it matches no row: the lock a fold waits for (`huying.reports.rollups`). Nothing is folded here: the worker (or
`huying reports fold`) folds the months that have ended; until then reports read `requests`.

Revision ID: 7b4d2e9f1a63
Revises: 5c2e8a4f1d73
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from huying.db import BigID, UTCDateTime

revision: str = "7b4d2e9f1a63"
down_revision: str | None = "5c2e8a4f1d73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = (
    "dispatched",
    "sign_due",
    "signed",
    "signed_on_time",
    "replied",
    "replied_on_time",
    "closed",
    "resolved_confirmed",
    "resolved_claimed",
    "rated",
    "satisfied",
    "reopened",
    "returned",
    "overdue_now",
)

# The month of a request (by when it was received) is dirty once the request changes.
# PostgreSQL: once per statement, over the rows it wrote (transition tables): the worker
# writes a batch of hundreds of requests in one UPDATE, a back-fill a million; a trigger per
# row cost about 80 µs a row there. SQLite has row triggers only, and cheap ones.
_PG_MARK = (
    "UPDATE report_months m SET dirty = true WHERE NOT m.dirty AND EXISTS "
    "(SELECT FROM {rows} r WHERE r.created_at >= m.starts_at AND r.created_at < m.ends_at)"
)
_PG_FUNCTION = f"""
CREATE FUNCTION report_months_touched() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    {_PG_MARK.format(rows="old_rows")};
  END IF;
  IF TG_OP <> 'DELETE' THEN
    {_PG_MARK.format(rows="new_rows")};
  END IF;
  RETURN NULL;
END
$$
"""
_PG_TRIGGERS = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}
_SQLITE_MARK = (
    "UPDATE report_months SET dirty = 1 "
    "WHERE NOT dirty AND starts_at <= {row}.created_at AND {row}.created_at < ends_at"
)
_SQLITE_TRIGGERS = {
    "insert": [_SQLITE_MARK.format(row="NEW")],
    "update": [_SQLITE_MARK.format(row="OLD"), _SQLITE_MARK.format(row="NEW")],
    "delete": [_SQLITE_MARK.format(row="OLD")],
}


def upgrade() -> None:
    op.create_table(
        "report_months",
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("folded_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("starts_at", name=op.f("pk_report_months")),
    )
    op.create_table(
        "report_rollups",
        sa.Column("id", BigID, autoincrement=True, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("grouping", sa.String(length=16), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("key", sa.String(length=64), nullable=True),
        sa.Column("sign_bucket", sa.Integer(), nullable=True),
        sa.Column("reply_bucket", sa.Integer(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTED],
        sa.Column("sign_sum", sa.BigInteger(), nullable=True),
        sa.Column("reply_sum", sa.BigInteger(), nullable=True),
        sa.Column("sign_n", sa.Integer(), nullable=False),
        sa.Column("reply_n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollups")),
    )
    op.create_index(
        "ix_report_rollups_grouping_starts_at", "report_rollups", ["grouping", "starts_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for operation, tables in _PG_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER requests_report_months_{operation} AFTER {operation.upper()} "
                f"ON requests REFERENCING {tables} FOR EACH STATEMENT "
                "EXECUTE FUNCTION report_months_touched()"
            )
    else:
        for operation, statements in _SQLITE_TRIGGERS.items():
            body = "".join(f"{s}; " for s in statements)
            op.execute(
                f"CREATE TRIGGER requests_report_months_{operation} "
                f"AFTER {operation.upper()} ON requests BEGIN {body}END"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for operation in _SQLITE_TRIGGERS:
        on = " ON requests" if postgresql else ""
        op.execute(f"DROP TRIGGER requests_report_months_{operation}{on}")
    if postgresql:
        op.execute("DROP FUNCTION report_months_touched()")
    op.drop_index("ix_report_rollups_grouping_starts_at", table_name="report_rollups")
    op.drop_table("report_rollups")
    op.drop_table("report_months")
