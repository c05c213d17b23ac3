"""list indexes: a computed rating rank, partial indexes per sort and leading filter, the
registered model keys, a row revision moved by every update; the indexes settlement reads by"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

RATING_RANK = "CASE WHEN review_count > 0 THEN rating_sum * 1000000 / review_count ELSE -1 END"
LISTED = "delisted_at IS NULL"
INDEXES = {
    "ix_gpus_price": "effective_price_units, id",
    "ix_gpus_model_price": "model_key, effective_price_units, id",
    "ix_gpus_rating": "rating_rank DESC, review_count DESC, id DESC",
    "ix_gpus_model_rating": "model_key, rating_rank DESC, review_count DESC, id DESC",
    "ix_gpus_memory": "memory_gb DESC, effective_price_units, id",
    "ix_gpus_newest": "created_at DESC, id DESC",
    "ix_gpus_region_price": "lower(region), effective_price_units, id",
}


def _postgres() -> bool:
    return op.get_context().dialect.name == "postgresql"


def upgrade() -> None:
    postgres = _postgres()
    # SQLite adds a computed column only as VIRTUAL (indexable); PostgreSQL only as STORED.
    kind = "STORED" if postgres else "VIRTUAL"
    op.execute(
        f"ALTER TABLE gpus ADD COLUMN rating_rank BIGINT GENERATED ALWAYS AS ({RATING_RANK}) {kind}"
    )
    op.drop_index("ix_gpus_listing", table_name="gpus")
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON gpus ({columns}) WHERE {LISTED}")
    op.create_table(
        "gpu_model_keys",
        sa.Column("model_key", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("model_key", name=op.f("pk_gpu_model_keys")),
    )
    op.execute("INSERT INTO gpu_model_keys (model_key) SELECT DISTINCT model_key FROM gpus")
    op.create_index("ix_jobs_booking", "jobs", ["booking_id"])
    op.execute("CREATE INDEX ix_orders_pending ON orders (booking_id) WHERE status = 'pending'")
    op.add_column(
        "gpus", sa.Column("revision", sa.BigInteger(), server_default="0", nullable=False)
    )
    if postgres:
        op.execute(
            "CREATE FUNCTION gpus_next_revision() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.revision := OLD.revision + 1; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER gpus_revision BEFORE UPDATE ON gpus FOR EACH ROW "
            "EXECUTE FUNCTION gpus_next_revision()"
        )
    else:
        op.execute(
            "CREATE TRIGGER gpus_revision AFTER UPDATE ON gpus FOR EACH ROW "
            "WHEN NEW.revision = OLD.revision "
            "BEGIN UPDATE gpus SET revision = OLD.revision + 1 WHERE id = NEW.id; END"
        )


def downgrade() -> None:
    op.drop_index("ix_orders_pending", table_name="orders")
    op.drop_index("ix_jobs_booking", table_name="jobs")
    for name in INDEXES:
        op.drop_index(name, table_name="gpus")
    op.execute("DROP TRIGGER gpus_revision" + (" ON gpus" if _postgres() else ""))
    if _postgres():
        op.execute("DROP FUNCTION gpus_next_revision()")
    op.drop_table("gpu_model_keys")
    with op.batch_alter_table("gpus") as batch_op:
        batch_op.drop_column("revision")
        batch_op.drop_column("rating_rank")
    op.create_index("ix_gpus_listing", "gpus", ["delisted_at", "effective_price_units"])
