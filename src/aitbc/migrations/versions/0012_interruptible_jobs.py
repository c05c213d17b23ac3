"""interruptible jobs: a job may name a bid, and then runs on an interruptible booking

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("bid_units", sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint("bid_positive", "bid_units IS NULL OR bid_units > 0")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_bid_positive"), type_="check")
        batch_op.drop_column("bid_units")
