"""chores: the sweepers' periodic chores done once per interval by the whole cluster"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "chores",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("done_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chores")),
    )


def downgrade() -> None:
    op.drop_table("chores")
