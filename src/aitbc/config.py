"""Settings, read from the environment with the ``AITBC_`` prefix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    return Path.home() / ".aitbc" / "data"


@dataclass(frozen=True, slots=True)
class Policy:
    """What a miner's silence does to its bookings (bookings.outages)."""

    timeout: int  # seconds without a heartbeat before a miner is offline
    grace: int  # seconds an offline miner has to come back before its bookings end


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AITBC_", extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means an SQLite file in data_dir.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 18000
    workers: int = 1
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    log_format: str = Field(default="text", pattern="^(text|json)$")
    threads: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Threads of one process for work kept off its event loop (the metrics "
        "exposition). Requests themselves run on the loop.",
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=100,
        description="The most PostgreSQL connections each server process opens for its "
        "work (requests, sweeper, clock); it holds one more to LISTEN on. Budget per node: "
        "workers x (db_pool_size + 1).",
    )
    db_pooler: bool = Field(
        default=False,
        description="A transaction-mode pooler (PgBouncer) stands between the nodes and "
        "PostgreSQL: connections set nothing at start and keep no prepared statements. Set "
        "plan_cache_mode = force_generic_plan on the role instead, and give LISTEN a direct "
        "connection (listen_database_url).",
    )
    listen_database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL for the connection that LISTENs for job assignments, "
        "when the main one goes through a transaction-mode pooler (default: the main URL; "
        "behind a pooler without it, long polls find their jobs when their wait runs out).",
    )
    db_idle_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A pooled PostgreSQL connection unused this long is closed.",
    )
    db_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Longest wait for the request path's database: to connect, for a free "
        "connection, and for one statement's answer; past it the request is 503.",
    )
    health_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Longest /health and /health/ready wait for the database before they "
        "answer 503 database_unavailable.",
    )
    admin_key: str | None = Field(
        default=None, description="If set, this exact string is a valid admin key."
    )
    heartbeat_timeout_seconds: int = Field(default=90, ge=1)
    outage_grace_seconds: int = Field(
        default=300,
        ge=0,
        description="How long an offline miner has to come back before its bookings end as "
        "interrupted (its offline time is refunded either way).",
    )
    job_result_grace_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86_400,
        description="A running job whose booking ended this long ago without a result or a "
        "failure from its miner is failed (no_result); the booking stays paid.",
    )
    job_claim_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="A job handed to a poll that asked for a claim goes back for another "
        "poll (the time refunded) unless the miner confirms it has the job within this.",
    )
    job_default_hours: Decimal = Field(
        default=Decimal(1),
        gt=0,
        decimal_places=6,
        description="How long a GPU is booked for a job submitted without a duration; the "
        "client pays only for the time the job ran.",
    )
    default_price: Decimal = Field(
        default=Decimal("1.000000"),
        ge=0,
        decimal_places=6,
        description="Price per hour for a GPU registered without one.",
    )
    min_price_per_hour: Decimal = Field(
        default=Decimal("0.01"),
        gt=0,
        decimal_places=6,
        description="The lowest price per hour a GPU may be listed at (nothing is free).",
    )
    max_booking_hours: Decimal = Field(default=Decimal(720), gt=0)
    platform_fee_bps: int = Field(default=0, ge=0, le=10_000)
    preempt_notice_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="How long an interruptible booking keeps its GPU after it is outbid "
        "(docs/market.md).",
    )
    min_bid_share: Decimal = Field(
        default=Decimal("0.3"),
        gt=0,
        le=1,
        decimal_places=4,
        description="An interruptible bid's least amount, as a share of the GPU's on-demand "
        "price, where its provider set none.",
    )
    pricing_interval_seconds: int = Field(
        default=60, ge=1, description="Minimum age of a model price before it is recomputed."
    )
    quote_ttl_seconds: int = Field(default=300, ge=1, le=86_400)
    sweep_interval_seconds: float = Field(default=5.0, ge=0)
    shutdown_grace_seconds: int = Field(
        default=10,
        ge=1,
        le=600,
        description="On SIGTERM a node stops taking connections, answers its long polls at "
        "once (204) and gives the requests in flight this long to finish before it exits.",
    )
    metrics_interval_seconds: float = Field(
        default=15.0,
        ge=0,
        description="The registry's figures on /metrics (GPUs by status, each GPU's health "
        "and uptime) are read at most this often by each process, however often it is "
        "scraped.",
    )
    clock_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="On PostgreSQL, how often a node reads the database's clock: money and "
        "presence go by the database's time, so nodes whose own clocks differ agree.",
    )
    clock_skew_warning_seconds: float = Field(
        default=1.0,
        gt=0,
        description="A node whose own clock is off the database's by more than this logs a "
        "warning (it still goes by the database's).",
    )
    events_retention_days: float = Field(
        default=30,
        gt=0,
        description="Events (and webhook delivery logs) older than this are pruned.",
    )
    events_ending_soon_minutes: float = Field(
        default=15,
        gt=0,
        description="A running booking's `booking.ending_soon` event goes out this long "
        "before its end.",
    )
    webhook_allow_private: bool = Field(
        default=False,
        description="Let webhooks post to loopback, private, link-local and other "
        "non-public addresses (refused by default: docs/events.md says why).",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="The wait before a failed delivery is tried again, doubled after each "
        "failure in a row up to an hour.",
    )
    webhook_give_up_hours: float = Field(
        default=24,
        ge=24,
        description="A webhook that has failed without a success for this long is disabled "
        "(retries back off to hourly until then).",
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    keep_alive_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description="A connection idle this long (before its first request or between two) "
        "is closed.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="A request whose line and headers take longer to arrive is closed.",
    )
    environment: str = Field(default="development", pattern="^(development|production|test)$")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        weak_key = self.admin_key is not None and len(self.admin_key) < 32
        if self.environment == "production" and weak_key:
            raise ValueError("AITBC_ADMIN_KEY must be at least 32 characters in production")
        return self

    @property
    def metrics_interval(self) -> timedelta:
        return timedelta(seconds=self.metrics_interval_seconds)

    @property
    def outage_policy(self) -> Policy:
        return Policy(timeout=self.heartbeat_timeout_seconds, grace=self.outage_grace_seconds)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return normal_database_url(self.database_url)
        return f"sqlite:///{self.data_dir / 'coordinator.db'}"


# The URL forms accepted, by scheme, and the one each is used as: PostgreSQL is reached
# through psycopg (the migrations) and asyncpg (the service) whichever is named.
_SCHEMES = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+psycopg",
}


def normal_database_url(url: str) -> str:
    """The database URL in the form the coordinator uses; ValueError, in one line naming
    the accepted forms, for any other."""
    scheme, separator, rest = url.partition("://")
    normal = _SCHEMES.get(scheme.lower()) if separator else None
    if normal is None:
        raise ValueError(
            f"Unsupported database URL scheme {scheme[:40]!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB (postgresql:// and "
            "postgresql+asyncpg:// are taken as the latter)."
        )
    return f"{normal}://{rest}"
