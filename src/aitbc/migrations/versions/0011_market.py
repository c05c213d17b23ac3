"""market: interruptible rentals (a GPU's provider allows them, with a minimum bid), the
rental type and the bid changes of a booking, preempted bookings and orders, notes in an
order's history; on PostgreSQL a preempted booking keeps its GPU until its notice ends"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

BOOKING_STATUSES = "'open', 'completed', 'released', 'cancelled', 'interrupted'"
ORDER_STATUSES = "'pending', 'active', 'completed', 'released', 'cancelled', 'interrupted'"
ORDERS_PENDING = "CREATE INDEX ix_orders_pending ON orders (booking_id) WHERE status = 'pending'"
# An open booking holds its GPU for its window; a preempted one until its notice ended.
HOLDS = (
    "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
    "(gpu_id WITH =, tsrange(start_time, CASE WHEN status = 'open' THEN end_time "
    "ELSE greatest(start_time, least(end_time, ended_at)) END, '[)') WITH &&) "
    "WHERE (status IN ('open', 'preempted'))"
)
OPEN_HOLDS = (
    "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
    "(gpu_id WITH =, tsrange(start_time, end_time, '[)') WITH &&) WHERE (status = 'open')"
)


def _statuses(bookings: str, orders: str) -> None:
    # SQLite changes a CHECK constraint only by rebuilding the table (batch mode); the
    # partial index is set aside around the rebuild, which would lose its condition.
    op.drop_index("ix_orders_pending", table_name="orders")
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.drop_constraint(op.f("ck_bookings_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({bookings})")
    with op.batch_alter_table("orders") as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({orders})")
    op.execute(ORDERS_PENDING)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # Not in batch mode: rebuilding gpus would try to copy its computed column.
    op.add_column(
        "gpus", sa.Column("interruptible", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column("gpus", sa.Column("min_bid_units", sa.BigInteger(), nullable=True))
    if postgresql:
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.add_column(
            sa.Column(
                "rental_type", sa.String(length=16), server_default="on_demand", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("fixed_seconds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("fixed_units", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.create_check_constraint(
            "rental_type", "rental_type IN ('on_demand', 'interruptible')"
        )
    _statuses(f"{BOOKING_STATUSES}, 'preempted'", f"{ORDER_STATUSES}, 'preempted'")
    with op.batch_alter_table("order_events") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
    if postgresql:
        op.execute(HOLDS)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute("ALTER TABLE bookings DROP CONSTRAINT ex_bookings_no_overlap")
    with op.batch_alter_table("order_events") as batch_op:
        batch_op.drop_column("note")
    op.execute("DELETE FROM order_events WHERE status = 'preempted'")
    op.execute("UPDATE orders SET status = 'released' WHERE status = 'preempted'")
    op.execute("UPDATE bookings SET status = 'released' WHERE status = 'preempted'")
    _statuses(BOOKING_STATUSES, ORDER_STATUSES)
    with op.batch_alter_table("bookings") as batch_op:
        batch_op.drop_constraint(op.f("ck_bookings_rental_type"), type_="check")
        batch_op.drop_column("fixed_units")
        batch_op.drop_column("fixed_seconds")
        batch_op.drop_column("rental_type")
    op.drop_column("gpus", "min_bid_units")
    op.drop_column("gpus", "interruptible")
    if postgresql:
        op.execute(OPEN_HOLDS)
