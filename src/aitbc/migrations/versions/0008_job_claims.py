"""job claims: a job handed to a poll that asked for a claim waits for the miner to confirm
it has the job

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 08:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
