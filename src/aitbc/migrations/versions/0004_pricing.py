"""pricing"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "model_prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.Column("base_price_units", sa.BigInteger(), nullable=False),
        sa.Column("current_price_units", sa.BigInteger(), nullable=False),
        sa.Column("multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("utilisation_bp", sa.Integer(), nullable=False),
        sa.Column("recent_bookings", sa.Integer(), nullable=False),
        sa.Column("supply", sa.Integer(), nullable=False),
        sa.Column("updated_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('gpu', 'ai')", name=op.f("ck_model_prices_kind")),
        sa.CheckConstraint("multiplier_bp > 0", name=op.f("ck_model_prices_multiplier_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        sa.UniqueConstraint("kind", "model_key", name="uq_model_prices_kind_key"),
    )
    op.create_table(
        "price_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.Column("at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("base_price_units", sa.BigInteger(), nullable=False),
        sa.Column("current_price_units", sa.BigInteger(), nullable=False),
        sa.Column("multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("utilisation_bp", sa.Integer(), nullable=False),
        sa.Column("recent_bookings", sa.Integer(), nullable=False),
        sa.Column("supply", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history")),
    )
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_price_history_model_at", ["kind", "model_key", "at"], unique=False
        )

    op.create_table(
        "quotes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("gpu_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
    )
    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotes_gpu_id"), ["gpu_id"], unique=False)

    # Existing GPUs are fixed-price until their miner says otherwise: effective = own price.
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.add_column(sa.Column("effective_price_units", sa.BigInteger(), nullable=True))
    op.execute("UPDATE gpus SET effective_price_units = price_units")
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.alter_column(
            "effective_price_units", existing_type=sa.BigInteger(), nullable=False
        )
        batch_op.create_check_constraint(
            "effective_price_non_negative", "effective_price_units >= 0"
        )
        batch_op.drop_index(batch_op.f("ix_gpus_listing"))
        batch_op.create_index(
            "ix_gpus_listing", ["delisted_at", "effective_price_units"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gpus", schema=None) as batch_op:
        batch_op.drop_index("ix_gpus_listing")
        batch_op.create_index(
            batch_op.f("ix_gpus_listing"), ["delisted_at", "price_units"], unique=False
        )
        batch_op.drop_constraint("effective_price_non_negative", type_="check")
        batch_op.drop_column("effective_price_units")

    with op.batch_alter_table("quotes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotes_gpu_id"))

    op.drop_table("quotes")
    with op.batch_alter_table("price_history", schema=None) as batch_op:
        batch_op.drop_index("ix_price_history_model_at")

    op.drop_table("price_history")
    op.drop_table("model_prices")
