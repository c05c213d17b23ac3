"""Who you are and how the CLI finds the coordinator: ``whoami``, ``login`` and
``config init|show``, which write and read the config file (keys coordinator_url, api_key)."""

from __future__ import annotations

import os
from typing import Any

import click

from aitbc.cli.config import DEFAULT_URL, CliConfig, config_path, save
from aitbc.cli.context import api
from aitbc.cli.http import Api
from aitbc.cli.output import emit
from aitbc.cli.views import ME

SHOWN_KEY_CHARS = 8


def masked(key: str) -> str:
    return f"{key[:SHOWN_KEY_CHARS]}..." if key else ""


def _state() -> Any:
    return click.get_current_context().find_root().obj


def _checked_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http:// or https:// URL", param_hint="--url")
    return url.rstrip("/")


def _current() -> CliConfig:
    try:
        config: CliConfig = _state().config()
    except click.ClickException:  # an explicit --config-file that does not exist yet
        config = CliConfig(coordinator_url=_state().url or DEFAULT_URL, api_key="")
    return config


@click.command()
def whoami() -> None:
    """The owner and role of the API key in use."""
    emit(api().request("GET", "/v1/me"), ME)


@click.command()
@click.option("--api-key", "new_key", default=None, help="The key; asked for (hidden) if absent.")
@click.option("--url", "new_url", default=None, help="Coordinator URL to save with it.")
def login(new_key: str | None, new_url: str | None) -> None:
    """Check an API key with the coordinator and save it in the config file."""
    state = _state()
    url = _checked_url(new_url or _current().coordinator_url)
    key = new_key or state.api_key or click.prompt("API key", hide_input=True)
    me = Api(CliConfig(coordinator_url=url, api_key=key)).request("GET", "/v1/me")
    path = config_path(state.config_file)
    save(path, {"coordinator_url": url, "api_key": key})
    click.echo(f"logged in as {me['owner_id']} ({me['role']}); saved to {path}", err=True)
    if "AITBC_API_KEY" in os.environ:
        click.echo("note: AITBC_API_KEY is set and takes precedence over the file", err=True)
    emit(me, ME)


@click.group("config")
def config_group() -> None:
    """The CLI's config file (default ~/.aitbc/config.yaml)."""


@config_group.command("init")
@click.option("--url", "new_url", default=None, help="Coordinator URL; asked for if absent.")
@click.option("--api-key", "new_key", default=None, help="API key; asked for if absent.")
@click.option("--force", is_flag=True, default=False, help="Overwrite an existing file.")
def config_init(new_url: str | None, new_key: str | None, force: bool) -> None:
    """Write a config file with the coordinator URL and API key."""
    state = _state()
    path = config_path(state.config_file)
    if path.exists() and not force:
        raise click.ClickException(
            f"{path} exists: --force overwrites it, `aitbc login` changes only the key"
        )
    url = new_url or state.url or click.prompt("Coordinator URL", default=DEFAULT_URL)
    key = new_key if new_key is not None else state.api_key
    if key is None:
        key = click.prompt(
            "API key (empty for anonymous)", default="", hide_input=True, show_default=False
        )
    values = {"coordinator_url": _checked_url(url), "api_key": key}
    if path.exists():
        path.unlink()
    save(path, values)
    emit({"config_file": str(path), **values, "api_key": masked(key)})


@config_group.command("show")
def config_show() -> None:
    """The settings in effect (the key shortened) and the file they come from."""
    state = _state()
    path = config_path(state.config_file)
    config = state.config()
    emit(
        {
            "config_file": str(path),
            "config_file_exists": path.exists(),
            "coordinator_url": config.coordinator_url,
            "api_key": masked(config.api_key),
        }
    )
