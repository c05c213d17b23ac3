"""The ``aitbc`` command tree."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from aitbc.cli.options import FORMATS, attach_output_options_to

if TYPE_CHECKING:
    from aitbc.cli.config import CliConfig
    from aitbc.cli.http import Api

DISTRIBUTION = "aitbc-coordinator"
# The commands, each imported only when it runs (or its help is asked for): `aitbc
# --version` and `--help` import none of them, nor the server, SQLAlchemy or httpx.
# name: (module, attribute, its short help as the command's docstring begins).
COMMANDS = {
    "serve": (
        "server", "serve", "Migrate the database (unless --no-migrate) and start the coordinator."
    ),
    "db": ("server", "db", "Database maintenance."),
    "admin": ("admin", "admin", "Administration (admin key)."),
    "miner": ("miner", "miner", "Miner operations (miner key)."),
    "marketplace": ("marketplace", "marketplace", "The GPU marketplace."),
    "bookings": ("bookings", "bookings", "Your bookings."),
    "account": ("account", "account", "Your balance and ledger."),
    "web": ("web", "web", "The marketplace's web pages (served by the coordinator at /)."),
    "client": ("client", "client", "Jobs (client key)."),
    "events": ("events", "events", "Your events, oldest first (docs/events.md lists the types)."),
    "webhooks": (
        "events", "webhooks", "Have your events posted to a URL of yours, signed (docs/events.md)."
    ),
    "config": ("login", "config_group", "The CLI's config file (default ~/.aitbc/config.yaml)."),
    "login": (
        "login", "login", "Check an API key with the coordinator and save it in the config file."
    ),
    "whoami": ("login", "whoami", "The owner and role of the API key in use."),
}  # fmt: skip


class LazyGroup(click.Group):
    """The top of the command tree: its commands imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"aitbc.cli.{module}"), attribute)
            attach_output_options_to(command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their short help, as written in COMMANDS (nothing imported)."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _shortened(COMMANDS[name][2], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _shortened(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word with "..." (as click shortens)."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)].rsplit(" ", 1)[0] + "..."


@dataclass
class CliState:
    url: str | None
    api_key: str | None
    config_file: str | None
    output: str
    columns: str | None = None
    quiet: bool = False
    _api: Api | None = field(default=None, repr=False)

    def config(self) -> CliConfig:
        from aitbc.cli.config import load

        return load(url=self.url, api_key=self.api_key, config_file=self.config_file)

    def api(self) -> Api:
        if self._api is None:
            from aitbc.cli.http import Api

            self._api = Api(self.config())
        return self._api

    def column_list(self) -> list[str] | None:
        if not self.columns:
            return None
        return [c.strip() for c in self.columns.split(",") if c.strip()] or None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=DISTRIBUTION, prog_name="aitbc")
@click.option("--url", default=None, help="Coordinator URL (default http://127.0.0.1:18000).")
@click.option("--api-key", default=None, help="API key sent as X-Api-Key.")
@click.option("--config-file", default=None, help="YAML config (default ~/.aitbc/config.yaml).")
@click.option(
    "--output",
    "-o",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format; also accepted after the sub-command.",
)
@click.option("--columns", default=None, help="Table columns, comma-separated, or 'all'.")
@click.option("--quiet", "-q", is_flag=True, default=False, help="Print only ids, one a line.")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    api_key: str | None,
    config_file: str | None,
    output: str,
    columns: str | None,
    quiet: bool,
) -> None:
    """aitbc: the GPU marketplace coordinator and its client."""
    ctx.obj = CliState(
        url=url,
        api_key=api_key,
        config_file=config_file,
        output=output,
        columns=columns,
        quiet=quiet,
    )


def main() -> None:
    cli(prog_name="aitbc")
