"""chores: the sweepers' periodic chores done once per interval by the whole cluster

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chores",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("done_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chores")),
    )


def downgrade() -> None:
    op.drop_table("chores")
