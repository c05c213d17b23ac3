"""``aitbc serve`` and ``aitbc db upgrade``: run migrations, bootstrap, start uvicorn."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import click
from sqlalchemy.engine import make_url

from aitbc.config import Settings


def _settings(database_url: str | None, data_dir: Path | None = None) -> Settings:
    settings = Settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir.expanduser()})
    try:
        settings.resolved_database_url()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


@click.command()
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 18000).")
@click.option("--database-url", default=None, help="SQLAlchemy URL (default: SQLite file).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the SQLite file lives without --database-url (default ~/.aitbc/data; "
    "AITBC_DATA_DIR).",
)
@click.option("--workers", type=int, default=None, help="Server processes (default 1).")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="info (default) logs each request; warning leaves requests out.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="text (default), or one JSON object per line.",
)
@click.option(
    "--no-migrate",
    is_flag=True,
    help="Do not migrate: refuse to start unless the database is already at this version's "
    "schema (for deployments that run `aitbc db upgrade` as a step of their own).",
)
def serve(
    host: str | None,
    port: int | None,
    database_url: str | None,
    data_dir: Path | None,
    workers: int | None,
    log_level: str | None,
    log_format: str | None,
    no_migrate: bool,
) -> None:
    """Migrate the database (unless --no-migrate) and start the coordinator."""
    import logging
    import logging.config

    import uvicorn

    from aitbc import logs
    from aitbc.http.protocol import BoundedHttp
    from aitbc.migrate import bootstrap_admin_key

    settings = _settings(database_url, data_dir)
    level, fmt = log_level or settings.log_level, log_format or settings.log_format
    log_config = logs.config(level, fmt)
    logging.config.dictConfig(log_config)
    log = logging.getLogger("aitbc.server")
    url = settings.resolved_database_url()
    _upgrade(url, check_only=no_migrate)
    count = workers or settings.workers
    _check_budget(url, processes=count, pool_size=settings.db_pool_size)
    secret = bootstrap_admin_key(url, configured_admin_key=settings.admin_key)
    if secret:
        click.echo(
            f"Created the first admin API key (shown once, store it now): {secret}", err=True
        )
    # Worker processes read their settings from the environment.
    os.environ["AITBC_DATABASE_URL"] = url
    if count > 1:
        metrics_dir = tempfile.mkdtemp(prefix="aitbc-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    bind_host, bind_port = host or settings.host, port or settings.port
    log.info(
        "aitbc coordinator on http://%s:%d (%d process%s, database %s, log level %s); "
        "API docs at /docs",
        bind_host, bind_port, count, "" if count == 1 else "es",
        make_url(url).render_as_string(hide_password=True), level,
    )  # fmt: skip
    # uvicorn shuts down on SIGTERM or SIGINT, then raises the signal again for the handler it
    # found: this one, which ends the command normally instead of killing the process.
    for caught in (signal.SIGTERM, signal.SIGINT):
        signal.signal(caught, _stopped)
    try:
        uvicorn.run(
            "aitbc.app:factory",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=count,
            loop="uvloop",
            http=BoundedHttp,
            timeout_keep_alive=settings.keep_alive_seconds,
            timeout_graceful_shutdown=settings.shutdown_grace_seconds,
            log_level=level,
            log_config=log_config,
            access_log=False,
        )
    except _Stopped:
        pass
    finally:
        if count > 1:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)
        log.info("aitbc coordinator stopped")


class _Stopped(Exception):
    pass


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.option("--database-url", default=None, help="SQLAlchemy URL (default: SQLite file).")
def db_upgrade(database_url: str | None) -> None:
    """Apply all migrations."""
    url = _settings(database_url).resolved_database_url()
    _upgrade(url)
    click.echo(f"database at head: {url}")


@db.command("create")
@click.option("--database-url", default=None, help="SQLAlchemy URL (default: SQLite file).")
def db_create(database_url: str | None) -> None:
    """Create the PostgreSQL database the URL names (SQLite creates its file by itself)."""
    from sqlalchemy.engine import make_url

    from aitbc.migrate import DatabaseUnavailable, create_database

    url = _settings(database_url).resolved_database_url()
    name = make_url(url).database
    if not make_url(url).get_backend_name().startswith("postgresql"):
        click.echo(f"SQLite creates {name} on first use; nothing to do.")
        return
    try:
        created = create_database(url)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created database {name!r}" if created else f"database {name!r} exists already")


def _check_budget(url: str, *, processes: int, pool_size: int) -> None:
    from aitbc.migrate import DatabaseUnavailable, check_connection_budget

    try:
        check_connection_budget(url, processes=processes, pool_size=pool_size)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _upgrade(url: str, *, check_only: bool = False) -> None:
    from aitbc.migrate import DatabaseUnavailable, require_current, upgrade

    try:
        if check_only:
            require_current(url)
        else:
            upgrade(url)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from None
