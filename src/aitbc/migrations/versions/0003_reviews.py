"""reviews"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("gpu_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("flag_count", sa.Integer(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("hidden_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.Column("hidden_by", sa.String(length=128), nullable=True),
        sa.CheckConstraint("flag_count >= 0", name=op.f("ck_reviews_flag_count_non_negative")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(["gpu_id"], ["gpus.id"], name=op.f("fk_reviews_gpu_id_gpus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("gpu_id", "client_id", name="uq_reviews_gpu_client"),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index("ix_reviews_flagged", ["flag_count", "hidden_at"], unique=False)
        batch_op.create_index("ix_reviews_gpu_created", ["gpu_id", "created_at"], unique=False)

    op.create_table(
        "review_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("review_id", sa.String(length=40), nullable=False),
        sa.Column("flagger_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_flags_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_flags")),
        sa.UniqueConstraint("review_id", "flagger_id", name="uq_review_flags_once"),
    )
    with op.batch_alter_table("review_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_flags_review_id"), ["review_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("review_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_flags_review_id"))

    op.drop_table("review_flags")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_reviews_gpu_created")
        batch_op.drop_index("ix_reviews_flagged")

    op.drop_table("reviews")
