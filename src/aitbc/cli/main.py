"""The ``aitbc`` command tree."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from aitbc.cli import (
    account,
    admin,
    bookings,
    client,
    events,
    login,
    marketplace,
    miner,
    server,
    web,
)
from aitbc.cli.config import CliConfig, load
from aitbc.cli.http import Api
from aitbc.cli.options import FORMATS, attach_output_options

DISTRIBUTION = "aitbc-coordinator"


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
        return load(url=self.url, api_key=self.api_key, config_file=self.config_file)

    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.config())
        return self._api

    def column_list(self) -> list[str] | None:
        if not self.columns:
            return None
        return [c.strip() for c in self.columns.split(",") if c.strip()] or None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


cli.add_command(server.serve)
cli.add_command(server.db)
cli.add_command(admin.admin)
cli.add_command(miner.miner)
cli.add_command(marketplace.marketplace)
cli.add_command(bookings.bookings)
cli.add_command(account.account)
cli.add_command(web.web)
cli.add_command(client.client)
cli.add_command(events.events)
cli.add_command(events.webhooks)
cli.add_command(login.config_group)
cli.add_command(login.login)
cli.add_command(login.whoami)
attach_output_options(cli)


def main() -> None:
    cli(prog_name="aitbc")
