"""offers bids jobs"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "bids",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=128), nullable=True),
        sa.Column("gpu_model_key", sa.String(length=128), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("filled", sa.Integer(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("booking_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("closed_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'cancelled', 'expired')", name=op.f("ck_bids_status")
        ),
        sa.CheckConstraint(
            "capacity >= 1 AND filled >= 0 AND filled <= capacity", name=op.f("ck_bids_capacity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bids")),
    )
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.create_index("ix_bids_client", ["client_id", "created_at"], unique=False)
        batch_op.create_index("ix_bids_status_expires", ["status", "expires_at"], unique=False)

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("gpu_model_key", sa.String(length=128), nullable=True),
        sa.Column("memory_min_gb", sa.Integer(), nullable=True),
        sa.Column("ai_model_key", sa.String(length=128), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("max_price_units", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("gpu_id", sa.String(length=40), nullable=True),
        sa.Column("miner_id", sa.String(length=128), nullable=True),
        sa.Column("booking_id", sa.String(length=40), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("assigned_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.Column("started_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'assigned', 'running', 'completed', 'failed', 'expired', 'cancelled')",
            name=op.f("ck_jobs_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_client", ["client_id", "created_at"], unique=False)
        batch_op.create_index("ix_jobs_miner_state", ["miner_id", "state"], unique=False)
        batch_op.create_index("ix_jobs_state_created", ["state", "created_at"], unique=False)

    op.create_table(
        "offers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("gpu_id", sa.String(length=40), nullable=True),
        sa.Column("provider", sa.String(length=128), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("sla", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_offers_status")),
        sa.CheckConstraint(
            "capacity >= 0 AND price_units >= 0", name=op.f("ck_offers_non_negative")
        ),
        sa.ForeignKeyConstraint(["gpu_id"], ["gpus.id"], name=op.f("fk_offers_gpu_id_gpus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("gpu_id", name=op.f("uq_offers_gpu_id")),
    )
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_offers_provider"), ["provider"], unique=False)
        batch_op.create_index("ix_offers_status_created", ["status", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index("ix_offers_status_created")
        batch_op.drop_index(batch_op.f("ix_offers_provider"))

    op.drop_table("offers")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state_created")
        batch_op.drop_index("ix_jobs_miner_state")
        batch_op.drop_index("ix_jobs_client")

    op.drop_table("jobs")
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.drop_index("ix_bids_status_expires")
        batch_op.drop_index("ix_bids_client")

    op.drop_table("bids")
