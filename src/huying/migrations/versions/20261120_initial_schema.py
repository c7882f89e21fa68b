"""initial schema

Revision ID: 081445465a94
Revises:
Create Date: 2026-11-20 21:50:39.725803
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import huying.db

revision: str = "081445465a94"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "departments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_code", sa.String(length=64), nullable=True),
        sa.Column(
            "leaders",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["departments.code"],
            name=op.f("fk_departments_parent_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint("code", name=op.f("uq_departments_code")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=True),
        sa.Column("created_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_api_keys_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_keys_token_hash")),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("group", sa.String(length=100), nullable=False),
        sa.Column("urgency", sa.String(length=32), nullable=False),
        sa.Column(
            "time_limits",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("lead_department_code", sa.String(length=64), nullable=True),
        sa.Column(
            "co_department_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_department_code"],
            ["departments.code"],
            name=op.f("fk_categories_lead_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_categories_code")),
    )
    op.create_table(
        "chains",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("leader_uscc", sa.String(length=18), nullable=True),
        sa.Column("liaison_department_code", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["liaison_department_code"],
            ["departments.code"],
            name=op.f("fk_chains_liaison_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chains")),
        sa.UniqueConstraint("code", name=op.f("uq_chains_code")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("department_code", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_users_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "enterprises",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("chain_code", sa.String(length=64), nullable=True),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("contact_name", sa.String(length=100), nullable=False),
        sa.Column("contact_phone", sa.String(length=50), nullable=False),
        sa.Column("created_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chain_code"],
            ["chains.code"],
            name=op.f("fk_enterprises_chain_code_chains"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprises")),
        sa.UniqueConstraint("uscc", name=op.f("uq_enterprises_uscc")),
    )
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enterprises_chain_code"), ["chain_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_enterprises_grid_code"), ["grid_code"], unique=False)

    op.create_table(
        "routing_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=True),
        sa.Column("grid_prefix", sa.String(length=32), nullable=True),
        sa.Column("chain_code", sa.String(length=64), nullable=True),
        sa.Column("department_code", sa.String(length=64), nullable=False),
        sa.Column(
            "co_department_codes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_routing_rules_category_code_categories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["chain_code"],
            ["chains.code"],
            name=op.f("fk_routing_rules_chain_code_chains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_routing_rules_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_routing_rules_category_code"), ["category_code"], unique=False
        )

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_staff_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("workflow_name", sa.String(length=64), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("enterprise_uscc", sa.String(length=18), nullable=False),
        sa.Column("category_code", sa.String(length=64), nullable=False),
        sa.Column("urgency", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("grid_code", sa.String(length=32), nullable=True),
        sa.Column("chain_code", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column(
            "contact",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("lead_department_code", sa.String(length=64), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("return_count", sa.Integer(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("rating", sa.String(length=32), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column(
            "pending_extension",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("timeline_seq", sa.Integer(), nullable=False),
        sa.Column(
            "merged_into_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("idempotency_scope", sa.String(length=100), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("idempotency_hash", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("closed_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_requests_category_code_categories"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_uscc"],
            ["enterprises.uscc"],
            name=op.f("fk_requests_enterprise_uscc_enterprises"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["lead_department_code"],
            ["departments.code"],
            name=op.f("fk_requests_lead_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["requests.id"],
            name=op.f("fk_requests_merged_into_id_requests"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
        sa.UniqueConstraint(
            "idempotency_scope",
            "idempotency_key",
            name=op.f("uq_requests_idempotency_scope_idempotency_key"),
        ),
        sa.UniqueConstraint("number", name=op.f("uq_requests_number")),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requests_category_code"), ["category_code"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_requests_chain_code"), ["chain_code"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_requests_enterprise_uscc"), ["enterprise_uscc"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_requests_external_id"), ["external_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_requests_grid_code"), ["grid_code"], unique=False)
        batch_op.create_index(
            "ix_requests_lead_department_code_created_at",
            ["lead_department_code", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_requests_state_created_at", ["state", "created_at"], unique=False)

    op.create_table(
        "deadlines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("duration", sa.String(length=64), nullable=False),
        sa.Column("started_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("warn_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("warned_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("missed_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remaining", sa.String(length=64), nullable=True),
        sa.Column("completed_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rungs_fired", sa.Integer(), nullable=False),
        sa.Column("next_fire_at", huying.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_deadlines_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
    )
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deadlines_next_fire_at",
            ["next_fire_at"],
            unique=False,
            postgresql_where=sa.text("next_fire_at IS NOT NULL"),
            sqlite_where=sa.text("next_fire_at IS NOT NULL"),
        )
        batch_op.create_index(batch_op.f("ix_deadlines_request_id"), ["request_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uid", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("occurred_at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_events_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("uid", name=op.f("uq_events_uid")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_request_id"), ["request_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_type"), ["type"], unique=False)

    op.create_table(
        "request_co_departments",
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("department_code", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_code"],
            ["departments.code"],
            name=op.f("fk_request_co_departments_department_code_departments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_request_co_departments_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "request_id", "department_code", name=op.f("pk_request_co_departments")
        ),
    )
    with op.batch_alter_table("request_co_departments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_request_co_departments_department_code"),
            ["department_code"],
            unique=False,
        )

    op.create_table(
        "timeline_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "request_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("at", huying.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_timeline_entries_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline_entries")),
        sa.UniqueConstraint("request_id", "seq", name=op.f("uq_timeline_entries_request_id_seq")),
    )


def downgrade() -> None:

    op.drop_table("timeline_entries")
    with op.batch_alter_table("request_co_departments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_co_departments_department_code"))

    op.drop_table("request_co_departments")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_type"))
        batch_op.drop_index(batch_op.f("ix_events_request_id"))

    op.drop_table("events")
    with op.batch_alter_table("deadlines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deadlines_request_id"))
        batch_op.drop_index(
            "ix_deadlines_next_fire_at",
            postgresql_where=sa.text("next_fire_at IS NOT NULL"),
            sqlite_where=sa.text("next_fire_at IS NOT NULL"),
        )

    op.drop_table("deadlines")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_state_created_at")
        batch_op.drop_index("ix_requests_lead_department_code_created_at")
        batch_op.drop_index(batch_op.f("ix_requests_grid_code"))
        batch_op.drop_index(batch_op.f("ix_requests_external_id"))
        batch_op.drop_index(batch_op.f("ix_requests_enterprise_uscc"))
        batch_op.drop_index(batch_op.f("ix_requests_chain_code"))
        batch_op.drop_index(batch_op.f("ix_requests_category_code"))

    op.drop_table("requests")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_user_id"))

    op.drop_table("staff_sessions")
    with op.batch_alter_table("routing_rules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routing_rules_category_code"))

    op.drop_table("routing_rules")
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enterprises_grid_code"))
        batch_op.drop_index(batch_op.f("ix_enterprises_chain_code"))

    op.drop_table("enterprises")
    op.drop_table("users")
    op.drop_table("chains")
    op.drop_table("categories")
    op.drop_table("api_keys")
    op.drop_table("departments")
