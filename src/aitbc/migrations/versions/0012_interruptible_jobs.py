"""interruptible jobs: a job may name a bid, and then runs on an interruptible booking"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("bid_units", sa.BigInteger(), nullable=True))
        batch_op.create_check_constraint("bid_positive", "bid_units IS NULL OR bid_units > 0")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_bid_positive"), type_="check")
        batch_op.drop_column("bid_units")
