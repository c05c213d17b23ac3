"""events: the event log (a transactional outbox), the committed events waiting for their
numbers, who may see each event by number, webhooks and their delivery log; the markers
that send "ending soon" and "offline" events once"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import aitbc.models.types

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Numbers for committed events (store.outbox); SQLite numbers them by row id.
        op.execute("CREATE SEQUENCE event_numbers")
    op.create_table(
        "event_recipients",
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("owner_id", "event_id", name=op.f("pk_event_recipients")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "events",
        sa.Column(
            "row_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=48), nullable=False),
        sa.Column("at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("subject", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
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
        "webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("webhook_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(length=48), nullable=False),
        sa.Column("at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_at", ["at"], unique=False)
        batch_op.create_index("ix_webhook_deliveries_hook", ["webhook_id", "id"], unique=False)

    op.create_table(
        "balance_alerts",
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("below_units", sa.BigInteger(), nullable=False),
        sa.Column("noticed_at", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_balance_alerts")),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=128), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("types", sa.String(length=1024), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=256), nullable=True),
        sa.Column("created_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        sa.Column("next_attempt_at", aitbc.models.types.UTCDateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", aitbc.models.types.UTCDateTime(), nullable=True),
        sa.Column("lease_token", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index("ix_webhooks_owner", ["owner_id"], unique=False)

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("ending_notice_at", aitbc.models.types.UTCDateTime(), nullable=True)
        )

    with op.batch_alter_table("miners", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("offline_noticed_at", aitbc.models.types.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE event_numbers")
    with op.batch_alter_table("miners", schema=None) as batch_op:
        batch_op.drop_column("offline_noticed_at")

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("ending_notice_at")

    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index("ix_webhooks_owner")

    op.drop_table("webhooks")
    op.drop_table("balance_alerts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_hook")
        batch_op.drop_index("ix_webhook_deliveries_at")

    op.drop_table("webhook_deliveries")
    op.drop_table("events_waiting")
    op.drop_table("events")
    op.drop_table("event_recipients")
