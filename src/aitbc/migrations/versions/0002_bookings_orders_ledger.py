"""bookings orders ledger"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("balance_units", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "balance_units >= 0 OR kind = 'external'", name=op.f("ck_accounts_non_negative")
        ),
        sa.CheckConstraint("kind IN ('main', 'escrow', 'external')", name=op.f("ck_accounts_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("owner_id", "kind", name="uq_accounts_owner_kind"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("booking_id", sa.String(length=40), nullable=True),
        sa.Column("memo", sa.String(length=256), nullable=True),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_transactions_booking_id"), ["booking_id"], unique=False
        )

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ledger_entries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_entries_transaction_id_ledger_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_account", ["account_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_transaction_id"), ["transaction_id"], unique=False
        )

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("gpu_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("miner_id", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("start_time", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("end_time", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("booked_seconds", sa.Integer(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("total_units", sa.BigInteger(), nullable=False),
        sa.Column("charged_units", sa.BigInteger(), nullable=False),
        sa.Column("refunded_units", sa.BigInteger(), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("ended_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'completed', 'released', 'cancelled')",
            name=op.f("ck_bookings_status"),
        ),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_bookings_window_positive")),
        sa.CheckConstraint(
            "total_units >= 0 AND charged_units >= 0 AND refunded_units >= 0 AND charged_units + refunded_units <= total_units",
            name=op.f("ck_bookings_amounts"),
        ),
        sa.ForeignKeyConstraint(["gpu_id"], ["gpus.id"], name=op.f("fk_bookings_gpu_id_gpus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index("ix_bookings_client", ["client_id", "created_at"], unique=False)
        batch_op.create_index("ix_bookings_due", ["status", "end_time"], unique=False)
        batch_op.create_index(
            "ix_bookings_gpu_window", ["gpu_id", "status", "end_time", "start_time"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_bookings_miner_id"), ["miner_id"], unique=False)

    if op.get_context().dialect.name == "postgresql":
        # The database itself refuses two open bookings on one GPU whose windows overlap.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
            "(gpu_id WITH =, tsrange(start_time, end_time, '[)') WITH &&) "
            "WHERE (status = 'open')"
        )

    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("booking_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("miner_id", sa.String(length=128), nullable=False),
        sa.Column("gpu_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("closed_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'completed', 'released', 'cancelled')",
            name=op.f("ck_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_orders_booking_id_bookings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_orders_booking_id")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_client", ["client_id", "created_at"], unique=False)
        batch_op.create_index("ix_orders_miner", ["miner_id", "created_at"], unique=False)

    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_events_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE bookings DROP CONSTRAINT IF EXISTS ex_bookings_no_overlap")
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_events_order_id"))

    op.drop_table("order_events")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_miner")
        batch_op.drop_index("ix_orders_client")

    op.drop_table("orders")
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bookings_miner_id"))
        batch_op.drop_index("ix_bookings_gpu_window")
        batch_op.drop_index("ix_bookings_due")
        batch_op.drop_index("ix_bookings_client")

    op.drop_table("bookings")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_transaction_id"))
        batch_op.drop_index("ix_ledger_entries_account")

    op.drop_table("ledger_entries")
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_transactions_booking_id"))

    op.drop_table("ledger_transactions")
    op.drop_table("idempotency_keys")
    op.drop_table("accounts")
