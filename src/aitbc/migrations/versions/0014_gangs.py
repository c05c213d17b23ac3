"""gangs: several GPUs booked all or nothing, one booking per GPU, the gang their order"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0014"
down_revision = "0013"

IN_GANG = sa.text("gang_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "gangs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("placement", sa.String(length=16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "placement IN ('same_miner', 'same_region', 'any')", name=op.f("ck_gangs_placement")
        ),
        sa.CheckConstraint("size >= 2", name=op.f("ck_gangs_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gangs")),
    )
    op.create_index("ix_gangs_client", "gangs", ["client_id", "created_at"])
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.add_column(sa.Column("gang_id", sa.String(length=40), nullable=True))
        batch_op.create_foreign_key(op.f("fk_bookings_gang_id_gangs"), "gangs", ["gang_id"], ["id"])
    op.create_index(
        "ix_bookings_gang", "bookings", ["gang_id"], sqlite_where=IN_GANG, postgresql_where=IN_GANG
    )


def downgrade() -> None:
    op.drop_index("ix_bookings_gang", table_name="bookings")
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.drop_constraint(op.f("fk_bookings_gang_id_gangs"), type_="foreignkey")
        batch_op.drop_column("gang_id")
    op.drop_index("ix_gangs_client", table_name="gangs")
    op.drop_table("gangs")
