"""Schema migrations (Alembic, shipped inside the package) and first-start bootstrap."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from aitbc.auth import service as auth_service
from aitbc.db import Database
from aitbc.kit.clock import SystemClock

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def bootstrap_admin_key(db: Database, *, configured_admin_key: str | None) -> str | None:
    """On a database with no admin key, and none configured, create one and return its
    secret (to be printed once). Otherwise return None."""
    if configured_admin_key:
        return None
    with db.session(write=True) as session:
        if auth_service.has_admin_key(session):
            return None
        _, secret = auth_service.create_key(
            session, role="admin", owner_id="admin", now=SystemClock().now()
        )
        session.commit()
        return secret
