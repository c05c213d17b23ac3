"""miners in the field: presence stretches, deregistration, outage refunds and interrupted
bookings, uptime, the field protocol's job fields"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0007"
down_revision = "0006"

BOOKING_STATUSES = "'open', 'completed', 'released', 'cancelled'"
ORDER_STATUSES = "'pending', 'active', 'completed', 'released', 'cancelled'"
AMOUNTS = (
    "total_units >= 0 AND charged_units >= 0 AND refunded_units >= 0"
    " AND charged_units + refunded_units <= total_units"
)
NEW_AMOUNTS = (
    "total_units >= 0 AND charged_units >= 0 AND refunded_units >= 0"
    " AND outage_refund_units >= 0"
    " AND charged_units + refunded_units + outage_refund_units <= total_units"
)
ORDERS_PENDING = "CREATE INDEX ix_orders_pending ON orders (booking_id) WHERE status = 'pending'"
UPTIME = (
    "CREATE INDEX ix_gpus_uptime ON gpus (uptime_7d_bp DESC, effective_price_units, id) "
    "WHERE delisted_at IS NULL"
)


def _checks(booking_statuses: str, order_statuses: str, amounts: str) -> None:
    # SQLite changes a CHECK constraint only by rebuilding the table (batch mode); the
    # partial index is set aside around the rebuild, which would lose its condition.
    op.drop_index("ix_orders_pending", table_name="orders")
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.drop_constraint(op.f("ck_bookings_status"), type_="check")
        batch_op.drop_constraint(op.f("ck_bookings_amounts"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({booking_statuses})")
        batch_op.create_check_constraint("amounts", amounts)
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({order_statuses})")
    op.execute(ORDERS_PENDING)


def upgrade() -> None:
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.add_column(
            sa.Column("outage_seconds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("outage_refund_units", sa.BigInteger(), server_default="0", nullable=False)
        )
    _checks(f"{BOOKING_STATUSES}, 'interrupted'", f"{ORDER_STATUSES}, 'interrupted'", NEW_AMOUNTS)
    with op.batch_alter_table("miners") as batch_op:
        batch_op.add_column(
            sa.Column("deregistered_at", aitbc.models.types.UTCDateTime(), nullable=True)
        )
    op.create_table(
        "miner_presence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("miner_id", sa.String(length=128), nullable=False),
        sa.Column("started_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("ended_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["miner_id"], ["miners.id"], name=op.f("fk_miner_presence_miner_id_miners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miner_presence")),
    )
    op.create_index("ix_miner_presence_miner_end", "miner_presence", ["miner_id", "ended_at"])
    # Every miner known so far was last seen at its last heartbeat.
    op.execute(
        "INSERT INTO miner_presence (miner_id, started_at, ended_at) "
        "SELECT id, last_heartbeat, last_heartbeat FROM miners"
    )
    op.add_column(
        "gpus", sa.Column("uptime_24h_bp", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "gpus", sa.Column("uptime_7d_bp", sa.Integer(), server_default="0", nullable=False)
    )
    op.execute(UPTIME)
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("metrics", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("job_type", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("payment_cap_units", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("cuda_min", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        for column in ("cuda_min", "payment_cap_units", "job_type", "metrics"):
            batch_op.drop_column(column)
    op.drop_index("ix_gpus_uptime", table_name="gpus")
    # Not in batch mode: rebuilding gpus would try to copy its computed column.
    op.drop_column("gpus", "uptime_7d_bp")
    op.drop_column("gpus", "uptime_24h_bp")
    op.drop_index("ix_miner_presence_miner_end", table_name="miner_presence")
    op.drop_table("miner_presence")
    with op.batch_alter_table("miners") as batch_op:
        batch_op.drop_column("deregistered_at")
    _checks(BOOKING_STATUSES, ORDER_STATUSES, NEW_AMOUNTS)
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.drop_constraint(op.f("ck_bookings_amounts"), type_="check")
        batch_op.drop_column("outage_refund_units")
        batch_op.drop_column("outage_seconds")
        batch_op.create_check_constraint("amounts", AMOUNTS)
