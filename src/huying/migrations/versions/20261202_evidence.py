"""evidence and the enterprise's view: attachments, public timeline entries, where a request
is, its receipt token, external_id unique per submitter

`attachments` (and `attachment_blobs` for `attachments.storage: database`) hold uploaded
files, content-addressed by SHA-256. `timeline_entries.public` marks what the public view
shows; entries already stored are public when their action is one the workflow file marks
public (submit, route, dispatch, sign, reply, rate, closing ones, reject). Requests gain
`lat`, `long`, `address`, `media_urls` and `receipt_token`.

`external_id` becomes unique per submitter. Requests stored twice under one external_id
(the bug this fixes) keep the first; the later ones' external_id gets `~<id>` appended, so
the constraint can hold and nothing is lost.

Revision ID: 9d4b2f6e8a13
Revises: 07f0c36a48ad
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import huying.db

revision: str = "9d4b2f6e8a13"
down_revision: str | None = "07f0c36a48ad"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Instant = huying.db.UTCDateTime(timezone=True)
PUBLIC_ACTIONS = ("submit", "route", "dispatch", "sign", "reply", "rate", "auto_close", "reject")


def upgrade() -> None:
    op.create_table(
        "attachment_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_attachment_blobs")),
    )
    op.create_table(
        "attachments",
        sa.Column("id", BigID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column("uploaded_at", Instant, nullable=False),
        sa.Column("request_id", BigID, nullable=True),
        sa.Column("timeline_seq", sa.Integer(), nullable=True),
        sa.Column("bound_at", Instant, nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_attachments_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )
    op.create_index(op.f("ix_attachments_sha256"), "attachments", ["sha256"])
    op.create_index(op.f("ix_attachments_uploaded_at"), "attachments", ["uploaded_at"])
    op.create_index("ix_attachments_request_id_id", "attachments", ["request_id", "id"])

    op.add_column(
        "timeline_entries",
        sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    timeline = sa.table(
        "timeline_entries", sa.column("action", sa.String()), sa.column("public", sa.Boolean())
    )
    op.execute(timeline.update().where(timeline.c.action.in_(PUBLIC_ACTIONS)).values(public=True))

    op.add_column("requests", sa.Column("lat", sa.Float(), nullable=True))
    op.add_column("requests", sa.Column("long", sa.Float(), nullable=True))
    op.add_column("requests", sa.Column("address", sa.String(length=300), nullable=True))
    op.add_column("requests", sa.Column("media_urls", huying.db.JSONType, nullable=True))
    op.add_column("requests", sa.Column("receipt_token", sa.String(length=32), nullable=True))
    op.create_index(op.f("uq_requests_receipt_token"), "requests", ["receipt_token"], unique=True)
    _dedupe_external_ids()
    op.create_index(
        "uq_requests_submitted_by_external_id",
        "requests",
        ["submitted_by", "external_id"],
        unique=True,
    )


def _dedupe_external_ids() -> None:
    """Later requests of one submitter under an external_id already taken get `~<id>`."""
    op.execute(
        """
        UPDATE requests SET external_id = external_id || '~' || CAST(id AS VARCHAR(20))
        WHERE external_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM requests AS earlier
            WHERE earlier.submitted_by = requests.submitted_by
              AND earlier.external_id = requests.external_id
              AND earlier.id < requests.id
        )
        """
    )


def downgrade() -> None:
    op.drop_index("uq_requests_submitted_by_external_id", table_name="requests")
    op.drop_index(op.f("uq_requests_receipt_token"), table_name="requests")
    for column in ("receipt_token", "media_urls", "address", "long", "lat"):
        op.drop_column("requests", column)
    op.drop_column("timeline_entries", "public")
    op.drop_index("ix_attachments_request_id_id", table_name="attachments")
    op.drop_index(op.f("ix_attachments_uploaded_at"), table_name="attachments")
    op.drop_index(op.f("ix_attachments_sha256"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_table("attachment_blobs")
