"""The schema as of 0014: migrations 0001-0014 folded into one before the first release. It
keeps the id 0014, so a database already at head is left as it is."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aitbc.models.types import UTCDateTime

revision = "0014"
down_revision = None

# The mean rating in millionths, -1 without reviews: what the rating sorts order by.
RATING_RANK = "CASE WHEN review_count > 0 THEN rating_sum * 1000000 / review_count ELSE -1 END"
LISTED = "delisted_at IS NULL"
# The GPU list's indexes: one per sort and per filter a list can lead with, over listed GPUs.
GPU_LIST_INDEXES = {
    "ix_gpus_price": "effective_price_units, id",
    "ix_gpus_model_price": "model_key, effective_price_units, id",
    "ix_gpus_rating": "rating_rank DESC, review_count DESC, id DESC",
    "ix_gpus_model_rating": "model_key, rating_rank DESC, review_count DESC, id DESC",
    "ix_gpus_memory": "memory_gb DESC, effective_price_units, id",
    "ix_gpus_newest": "created_at DESC, id DESC",
    "ix_gpus_region_price": "lower(region), effective_price_units, id",
    "ix_gpus_uptime": "uptime_7d_bp DESC, effective_price_units, id",
    "ix_gpus_model_region_price": "model_key, lower(region), effective_price_units, id",
}
# Every UPDATE of a GPU row moves its revision, so a rendering of the row can be kept until
# the row changes (gpus.cards).
PG_NEXT_REVISION = (
    "CREATE FUNCTION gpus_next_revision() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $$"
)
PG_REVISION_TRIGGER = (
    "CREATE TRIGGER gpus_revision BEFORE UPDATE ON gpus FOR EACH ROW "
    "EXECUTE FUNCTION gpus_next_revision()"
)
SQLITE_REVISION_TRIGGER = (
    "CREATE TRIGGER gpus_revision AFTER UPDATE ON gpus FOR EACH ROW "
    "WHEN NEW.revision = OLD.revision "
    "BEGIN UPDATE gpus SET revision = OLD.revision + 1 WHERE id = NEW.id; END"
)
# PostgreSQL itself refuses two bookings of one GPU that hold it at once: an open booking
# holds its GPU for its window, a preempted one until its notice ended.
BOOKING_HOLDS = (
    "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_no_overlap EXCLUDE USING gist "
    "(gpu_id WITH =, tsrange(start_time, CASE WHEN status = 'open' THEN end_time "
    "ELSE greatest(start_time, least(end_time, ended_at)) END, '[)') WITH &&) "
    "WHERE (status IN ('open', 'preempted'))"
)
BOOKING_STATUSES = "'open', 'completed', 'released', 'cancelled', 'interrupted', 'preempted'"
ORDER_STATUSES = (
    "'pending', 'active', 'completed', 'released', 'cancelled', 'interrupted', 'preempted'"
)
BOOKING_AMOUNTS = (
    "total_units >= 0 AND charged_units >= 0 AND refunded_units >= 0"
    " AND outage_refund_units >= 0"
    " AND charged_units + refunded_units + outage_refund_units <= total_units"
)
INTERRUPTIBLE = sa.text("rental_type = 'interruptible'")
OPEN = sa.text("status = 'open'")
IN_GANG = sa.text("gang_id IS NOT NULL")
PENDING = sa.text("status = 'pending'")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    postgres = _postgres()

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("role IN ('client', 'miner', 'admin')", name=op.f("ck_api_keys_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_owner_id", "api_keys", ["owner_id"])

    op.create_table(
        "miners",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("inflight", sa.Integer(), nullable=False),
        sa.Column("reported_status", sa.String(16), nullable=False),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deregistered_at", UTCDateTime(), nullable=True),
        sa.Column("offline_noticed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "reported_status IN ('online', 'draining', 'offline')", name=op.f("ck_miners_status")
        ),
        sa.CheckConstraint("concurrency >= 1", name=op.f("ck_miners_concurrency_positive")),
        sa.CheckConstraint("inflight >= 0", name=op.f("ck_miners_inflight_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miners")),
    )
    op.create_index("ix_miners_last_heartbeat", "miners", ["last_heartbeat"])

    op.create_table(
        "miner_presence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("miner_id", sa.String(128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["miner_id"], ["miners.id"], name=op.f("fk_miner_presence_miner_id_miners")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_miner_presence")),
    )
    op.create_index("ix_miner_presence_miner_end", "miner_presence", ["miner_id", "ended_at"])

    op.create_table(
        "gpus",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("miner_id", sa.String(128), nullable=False),
        sa.Column("slot", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("model_key", sa.String(128), nullable=False),
        sa.Column("memory_gb", sa.Integer(), nullable=False),
        sa.Column("cuda_cores", sa.Integer(), nullable=True),
        sa.Column("compute_capability", sa.String(16), nullable=True),
        sa.Column("cuda_version", sa.String(16), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("pricing_mode", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("ai_models", sa.JSON(), nullable=False),
        sa.Column("health", sa.JSON(), nullable=False),
        sa.Column("health_at", UTCDateTime(), nullable=True),
        sa.Column("rating_sum", sa.Integer(), nullable=False),
        sa.Column("review_count", sa.Integer(), nullable=False),
        sa.Column("total_bookings", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("delisted_at", UTCDateTime(), nullable=True),
        sa.Column("effective_price_units", sa.BigInteger(), nullable=False),
        # PostgreSQL computes a column only STORED; on SQLite it is VIRTUAL (indexable).
        sa.Column("rating_rank", sa.BigInteger(), sa.Computed(RATING_RANK, persisted=postgres)),
        sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("uptime_24h_bp", sa.Integer(), server_default="0", nullable=False),
        sa.Column("uptime_7d_bp", sa.Integer(), server_default="0", nullable=False),
        sa.Column("interruptible", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("min_bid_units", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "pricing_mode IN ('fixed', 'dynamic')", name=op.f("ck_gpus_pricing_mode")
        ),
        sa.CheckConstraint("memory_gb >= 0", name=op.f("ck_gpus_memory_non_negative")),
        sa.CheckConstraint("price_units >= 0", name=op.f("ck_gpus_price_non_negative")),
        sa.CheckConstraint(
            "effective_price_units >= 0", name=op.f("ck_gpus_effective_price_non_negative")
        ),
        sa.CheckConstraint(
            "rating_sum >= 0 AND review_count >= 0", name=op.f("ck_gpus_rating_non_negative")
        ),
        sa.CheckConstraint("total_bookings >= 0", name=op.f("ck_gpus_bookings_non_negative")),
        sa.ForeignKeyConstraint(["miner_id"], ["miners.id"], name=op.f("fk_gpus_miner_id_miners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpus")),
        sa.UniqueConstraint("miner_id", "slot", name=op.f("uq_gpus_miner_slot")),
    )
    op.create_index("ix_gpus_miner_id", "gpus", ["miner_id"])
    op.create_index("ix_gpus_model_key", "gpus", ["model_key"])
    for name, columns in GPU_LIST_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON gpus ({columns}) WHERE {LISTED}")
    if postgres:
        op.execute(PG_NEXT_REVISION)
        op.execute(PG_REVISION_TRIGGER)
    else:
        op.execute(SQLITE_REVISION_TRIGGER)

    op.create_table(
        "gpu_ai_models",
        sa.Column("gpu_id", sa.String(40), nullable=False),
        sa.Column("model_key", sa.String(128), nullable=False),
        sa.ForeignKeyConstraint(
            ["gpu_id"], ["gpus.id"], name=op.f("fk_gpu_ai_models_gpu_id_gpus"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("gpu_id", "model_key", name=op.f("pk_gpu_ai_models")),
    )
    op.create_index("ix_gpu_ai_models_model_key", "gpu_ai_models", ["model_key"])

    op.create_table(
        "gpu_model_keys",
        sa.Column("model_key", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("model_key", name=op.f("pk_gpu_model_keys")),
    )

    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("balance_units", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "balance_units >= 0 OR kind = 'external'", name=op.f("ck_accounts_non_negative")
        ),
        sa.CheckConstraint("kind IN ('main', 'escrow', 'external')", name=op.f("ck_accounts_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("owner_id", "kind", name=op.f("uq_accounts_owner_kind")),
    )

    op.create_table(
        "balance_alerts",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("below_units", sa.BigInteger(), nullable=False),
        sa.Column("noticed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_balance_alerts")),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "key", name=op.f("pk_idempotency_keys")),
    )

    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("booking_id", sa.String(40), nullable=True),
        sa.Column("memo", sa.String(256), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
    )
    op.create_index("ix_ledger_transactions_booking_id", "ledger_transactions", ["booking_id"])

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction_id", sa.String(40), nullable=False),
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
    op.create_index("ix_ledger_entries_account", "ledger_entries", ["account_id", "id"])
    op.create_index("ix_ledger_entries_transaction_id", "ledger_entries", ["transaction_id"])

    op.create_table(
        "gangs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("placement", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "placement IN ('same_miner', 'same_region', 'any')", name=op.f("ck_gangs_placement")
        ),
        sa.CheckConstraint("size >= 2", name=op.f("ck_gangs_size")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gangs")),
    )
    op.create_index("ix_gangs_client", "gangs", ["client_id", "created_at"])

    op.create_table(
        "bookings",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("gpu_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("miner_id", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", UTCDateTime(), nullable=False),
        sa.Column("end_time", UTCDateTime(), nullable=False),
        sa.Column("booked_seconds", sa.Integer(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("total_units", sa.BigInteger(), nullable=False),
        sa.Column("charged_units", sa.BigInteger(), nullable=False),
        sa.Column("refunded_units", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("outage_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outage_refund_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("ending_notice_at", UTCDateTime(), nullable=True),
        sa.Column("rental_type", sa.String(16), server_default="on_demand", nullable=False),
        sa.Column("fixed_seconds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fixed_units", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("gang_id", sa.String(40), nullable=True),
        sa.CheckConstraint(f"status IN ({BOOKING_STATUSES})", name=op.f("ck_bookings_status")),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_bookings_window_positive")),
        sa.CheckConstraint(BOOKING_AMOUNTS, name=op.f("ck_bookings_amounts")),
        sa.CheckConstraint(
            "rental_type IN ('on_demand', 'interruptible')", name=op.f("ck_bookings_rental_type")
        ),
        sa.ForeignKeyConstraint(["gpu_id"], ["gpus.id"], name=op.f("fk_bookings_gpu_id_gpus")),
        sa.ForeignKeyConstraint(["gang_id"], ["gangs.id"], name=op.f("fk_bookings_gang_id_gangs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
    )
    op.create_index("ix_bookings_client", "bookings", ["client_id", "created_at"])
    op.create_index("ix_bookings_due", "bookings", ["status", "end_time"])
    op.create_index(
        "ix_bookings_gpu_window", "bookings", ["gpu_id", "status", "end_time", "start_time"]
    )
    op.create_index("ix_bookings_miner_id", "bookings", ["miner_id"])
    # Each GPU's interruptible bookings newest first (the list by clearing price).
    op.create_index(
        "ix_bookings_gpu_cleared",
        "bookings",
        ["gpu_id", "created_at"],
        sqlite_where=INTERRUPTIBLE,
        postgresql_where=INTERRUPTIBLE,
    )
    # The open bookings of a GPU with what a window check reads (an index-only look-up).
    op.create_index(
        "ix_bookings_gpu_open",
        "bookings",
        ["gpu_id", "end_time"],
        sqlite_where=OPEN,
        postgresql_where=OPEN,
        postgresql_include=["start_time", "rental_type", "price_units"],
    )
    op.create_index(
        "ix_bookings_gang", "bookings", ["gang_id"], sqlite_where=IN_GANG, postgresql_where=IN_GANG
    )
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(BOOKING_HOLDS)

    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("booking_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("miner_id", sa.String(128), nullable=False),
        sa.Column("gpu_id", sa.String(40), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(f"status IN ({ORDER_STATUSES})", name=op.f("ck_orders_status")),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["bookings.id"], name=op.f("fk_orders_booking_id_bookings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("booking_id", name=op.f("uq_orders_booking_id")),
    )
    op.create_index("ix_orders_client", "orders", ["client_id", "created_at"])
    op.create_index("ix_orders_miner", "orders", ["miner_id", "created_at"])
    op.create_index(
        "ix_orders_pending",
        "orders",
        ["booking_id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )

    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_events_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index("ix_order_events_order_id", "order_events", ["order_id"])

    op.create_table(
        "reviews",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("gpu_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("flag_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("hidden_at", UTCDateTime(), nullable=True),
        sa.Column("hidden_by", sa.String(128), nullable=True),
        sa.CheckConstraint("flag_count >= 0", name=op.f("ck_reviews_flag_count_non_negative")),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(["gpu_id"], ["gpus.id"], name=op.f("fk_reviews_gpu_id_gpus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("gpu_id", "client_id", name=op.f("uq_reviews_gpu_client")),
    )
    op.create_index("ix_reviews_flagged", "reviews", ["flag_count", "hidden_at"])
    op.create_index("ix_reviews_gpu_created", "reviews", ["gpu_id", "created_at"])

    op.create_table(
        "review_flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("review_id", sa.String(40), nullable=False),
        sa.Column("flagger_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_review_flags_review_id_reviews")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_flags")),
        sa.UniqueConstraint("review_id", "flagger_id", name=op.f("uq_review_flags_once")),
    )
    op.create_index("ix_review_flags_review_id", "review_flags", ["review_id"])

    op.create_table(
        "model_prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("model_key", sa.String(128), nullable=False),
        sa.Column("base_price_units", sa.BigInteger(), nullable=False),
        sa.Column("current_price_units", sa.BigInteger(), nullable=False),
        sa.Column("multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("utilisation_bp", sa.Integer(), nullable=False),
        sa.Column("recent_bookings", sa.Integer(), nullable=False),
        sa.Column("supply", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('gpu', 'ai')", name=op.f("ck_model_prices_kind")),
        sa.CheckConstraint("multiplier_bp > 0", name=op.f("ck_model_prices_multiplier_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_prices")),
        sa.UniqueConstraint("kind", "model_key", name=op.f("uq_model_prices_kind_key")),
    )

    op.create_table(
        "price_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("model_key", sa.String(128), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("base_price_units", sa.BigInteger(), nullable=False),
        sa.Column("current_price_units", sa.BigInteger(), nullable=False),
        sa.Column("multiplier_bp", sa.Integer(), nullable=False),
        sa.Column("utilisation_bp", sa.Integer(), nullable=False),
        sa.Column("recent_bookings", sa.Integer(), nullable=False),
        sa.Column("supply", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_history")),
    )
    op.create_index("ix_price_history_model_at", "price_history", ["kind", "model_key", "at"])

    op.create_table(
        "quotes",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("gpu_id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quotes")),
    )
    op.create_index("ix_quotes_gpu_id", "quotes", ["gpu_id"])

    op.create_table(
        "bids",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(128), nullable=True),
        sa.Column("gpu_model_key", sa.String(128), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("filled", sa.Integer(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("booking_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'cancelled', 'expired')", name=op.f("ck_bids_status")
        ),
        sa.CheckConstraint(
            "capacity >= 1 AND filled >= 0 AND filled <= capacity", name=op.f("ck_bids_capacity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bids")),
    )
    op.create_index("ix_bids_client", "bids", ["client_id", "created_at"])
    op.create_index("ix_bids_status_expires", "bids", ["status", "expires_at"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("gpu_model_key", sa.String(128), nullable=True),
        sa.Column("memory_min_gb", sa.Integer(), nullable=True),
        sa.Column("ai_model_key", sa.String(128), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("max_price_units", sa.BigInteger(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("gpu_id", sa.String(40), nullable=True),
        sa.Column("miner_id", sa.String(128), nullable=True),
        sa.Column("booking_id", sa.String(40), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("job_type", sa.String(64), nullable=True),
        sa.Column("payment_cap_units", sa.BigInteger(), nullable=True),
        sa.Column("cuda_min", sa.String(16), nullable=True),
        sa.Column("claim_expires_at", UTCDateTime(), nullable=True),
        sa.Column("bid_units", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'assigned', 'running', 'completed', 'failed', 'expired', 'cancelled')",
            name=op.f("ck_jobs_state"),
        ),
        sa.CheckConstraint("bid_units IS NULL OR bid_units > 0", name=op.f("ck_jobs_bid_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_client", "jobs", ["client_id", "created_at"])
    op.create_index("ix_jobs_miner_state", "jobs", ["miner_id", "state"])
    op.create_index("ix_jobs_state_created", "jobs", ["state", "created_at"])
    op.create_index("ix_jobs_booking", "jobs", ["booking_id"])
    op.create_index("ix_jobs_claim", "jobs", ["claim_expires_at"])

    op.create_table(
        "offers",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("gpu_id", sa.String(40), nullable=True),
        sa.Column("provider", sa.String(128), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("price_units", sa.BigInteger(), nullable=False),
        sa.Column("sla", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_offers_status")),
        sa.CheckConstraint(
            "capacity >= 0 AND price_units >= 0", name=op.f("ck_offers_non_negative")
        ),
        sa.ForeignKeyConstraint(["gpu_id"], ["gpus.id"], name=op.f("fk_offers_gpu_id_gpus")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_offers")),
        sa.UniqueConstraint("gpu_id", name=op.f("uq_offers_gpu_id")),
    )
    op.create_index("ix_offers_provider", "offers", ["provider"])
    op.create_index("ix_offers_status_created", "offers", ["status", "created_at"])

    op.create_table(
        "chores",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chores")),
    )

    if postgres:
        # Numbers for committed events (store.outbox); SQLite numbers them by row id.
        op.execute("CREATE SEQUENCE event_numbers")
    op.create_table(
        "events",
        sa.Column(
            "row_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name=op.f("pk_events")),
    )

    op.create_table(
        "events_waiting",
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("owners", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("row_id", name=op.f("pk_events_waiting")),
    )

    op.create_table(
        "event_recipients",
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "event_id", name=op.f("pk_event_recipients")),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("owner_id", sa.String(128), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("types", sa.String(1024), nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(256), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("lease_token", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_owner", "webhooks", ["owner_id"])

    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(48), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_at", "webhook_deliveries", ["at"])
    op.create_index("ix_webhook_deliveries_hook", "webhook_deliveries", ["webhook_id", "id"])


def downgrade() -> None:
    # Dropping a table drops its indexes, constraints and triggers. btree_gist stays: it may
    # have been there before (CREATE EXTENSION IF NOT EXISTS), and other schemas may use it.
    for table in (
        "webhook_deliveries",
        "webhooks",
        "event_recipients",
        "events_waiting",
        "events",
        "chores",
        "offers",
        "jobs",
        "bids",
        "quotes",
        "price_history",
        "model_prices",
        "review_flags",
        "reviews",
        "order_events",
        "orders",
        "bookings",
        "gangs",
        "ledger_entries",
        "ledger_transactions",
        "idempotency_keys",
        "balance_alerts",
        "accounts",
        "gpu_model_keys",
        "gpu_ai_models",
        "gpus",
        "miner_presence",
        "miners",
        "api_keys",
    ):
        op.drop_table(table)
    if _postgres():
        op.execute("DROP SEQUENCE event_numbers")
        op.execute("DROP FUNCTION gpus_next_revision()")
