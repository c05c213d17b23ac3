"""market indexes: each GPU's interruptible bookings newest first (the list by clearing
price), the open bookings of a GPU with what a window check reads (an index-only look-up),
and listed GPUs by model, region and price (booking by criteria)"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

INTERRUPTIBLE = sa.text("rental_type = 'interruptible'")
OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_index(
        "ix_bookings_gpu_cleared",
        "bookings",
        ["gpu_id", "created_at"],
        sqlite_where=INTERRUPTIBLE,
        postgresql_where=INTERRUPTIBLE,
    )
    op.create_index(
        "ix_bookings_gpu_open",
        "bookings",
        ["gpu_id", "end_time"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
        postgresql_include=["start_time", "rental_type", "price_units"],
    )
    op.execute(
        "CREATE INDEX ix_gpus_model_region_price ON gpus "
        "(model_key, lower(region), effective_price_units, id) WHERE delisted_at IS NULL"
    )


def downgrade() -> None:
    op.drop_index("ix_gpus_model_region_price", table_name="gpus")
    op.drop_index("ix_bookings_gpu_open", table_name="bookings")
    op.drop_index("ix_bookings_gpu_cleared", table_name="bookings")
