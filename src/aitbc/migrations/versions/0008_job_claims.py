"""job claims: a job handed to a poll that asked for a claim waits for the miner to confirm
it has the job"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(
            sa.Column("claim_expires_at", aitbc.models.types.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_jobs_claim", ["claim_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_claim")
        batch_op.drop_column("claim_expires_at")
