"""the list by clearing price: each GPU's interruptible bookings, newest first, indexed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 00:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INTERRUPTIBLE = sa.text("rental_type = 'interruptible'")


def upgrade() -> None:
    op.create_index(
        "ix_bookings_gpu_cleared",
        "bookings",
        ["gpu_id", "created_at"],
        sqlite_where=INTERRUPTIBLE,
        postgresql_where=INTERRUPTIBLE,
    )


def downgrade() -> None:
    op.drop_index("ix_bookings_gpu_cleared", table_name="bookings")
