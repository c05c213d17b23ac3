"""registry: api keys, miners, gpus"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint("role IN ('client', 'miner', 'admin')", name=op.f("ck_api_keys_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "miners",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("inflight", sa.Integer(), nullable=False),
        sa.Column("reported_status", sa.String(length=16), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("last_heartbeat", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "reported_status IN ('online', 'draining', 'offline')", name=op.f("ck_miners_status")
        ),
        sa.CheckConstraint("concurrency >= 1", name=op.f("ck_miners_concurrency_positive")),
        sa.CheckConstraint("inflight >= 0", name=op.f("ck_miners_inflight_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miners")),
    )
    with op.batch_alter_table("miners", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_miners_last_heartbeat"), ["last_heartbeat"], unique=False
        )

    op.create_table(
        "gpus",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("miner_id", sa.String(length=128), nullable=False),
        sa.Column("slot", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.Column("memory_gb", sa.Integer(), nullable=False),
        sa.Column("cuda_cores", sa.Integer(), nullable=True),
        sa.Column("compute_capability", sa.String(length=16), nullable=True),
        sa.Column("cuda_version", sa.String(length=16), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("pricing_mode", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("ai_models", sa.JSON(), nullable=False),
        sa.Column("health", sa.JSON(), nullable=False),
        sa.Column("health_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.Column("rating_sum", sa.Integer(), nullable=False),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("total_bookings", sa.Integer(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("delisted_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "pricing_mode IN ('fixed', 'dynamic')", name=op.f("ck_gpus_pricing_mode")
        ),
        sa.CheckConstraint("memory_gb >= 0", name=op.f("ck_gpus_memory_non_negative")),
        sa.CheckConstraint("price_units >= 0", name=op.f("ck_gpus_price_non_negative")),
        sa.CheckConstraint(
            "rating_sum >= 0 AND review_count >= 0", name=op.f("ck_gpus_rating_non_negative")
        ),
        sa.CheckConstraint("total_bookings >= 0", name=op.f("ck_gpus_bookings_non_negative")),
        sa.ForeignKeyConstraint(["miner_id"], ["miners.id"], name=op.f("fk_gpus_miner_id_miners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpus")),
        sa.UniqueConstraint("miner_id", "slot", name="uq_gpus_miner_slot"),
    )
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.create_index("ix_gpus_listing", ["delisted_at", "price_units"], unique=False)
        batch_op.create_index(batch_op.f("ix_gpus_miner_id"), ["miner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_gpus_model_key"), ["model_key"], unique=False)

    op.create_table(
        "gpu_ai_models",
        sa.Column("gpu_id", sa.String(length=40), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["gpu_id"], ["gpus.id"], name=op.f("fk_gpu_ai_models_gpu_id_gpus"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("gpu_id", "model_key", name=op.f("pk_gpu_ai_models")),
    )
    with op.batch_alter_table("gpu_ai_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gpu_ai_models_model_key"), ["model_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gpu_ai_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpu_ai_models_model_key"))

    op.drop_table("gpu_ai_models")
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gpus_model_key"))
        batch_op.drop_index(batch_op.f("ix_gpus_miner_id"))
        batch_op.drop_index("ix_gpus_listing")

    op.drop_table("gpus")
    with op.batch_alter_table("miners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_miners_last_heartbeat"))

    op.drop_table("miners")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_owner_id"))

    op.drop_table("api_keys")
