"""``aitbc web``: demo data for the web pages, and screenshots of them."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def web() -> None:
    """The marketplace's web pages (served by the coordinator at /)."""


@web.command()
@click.option("--url", default="http://127.0.0.1:18000", show_default=True)
@click.option("--admin-key", envvar="AITBC_API_KEY", required=True, help="An admin API key.")
def demo(url: str, admin_key: str) -> None:
    """Fill a running coordinator with demo GPUs, clients, bookings and reviews; prints
    the keys it made (shown once)."""
    from aitbc.web.demo import DemoError, seed

    try:
        keys = seed(url, admin_key)
    except DemoError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"client key (demo-alice): {keys.client}")
    click.echo(f"client key (demo-bob):   {keys.other_client}")
    click.echo(f"miner key (demo-miner-eu): {keys.miner}")
    click.echo(f"open {url}/ and sign in with one of them")


@web.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--chromium", default="/usr/bin/chromium", show_default=True)
def screenshots(out_dir: Path, chromium: str) -> None:
    """Screenshots of the main pages at desktop and phone widths, from a temporary
    coordinator with demo data (needs Playwright and Debian's chromium)."""
    try:
        from aitbc.cli.screenshots import screenshots as shoot
    except ImportError as error:
        raise click.ClickException(
            f"{error}; install the test extras: pip install -e '.[test]'"
        ) from error
    if not Path(chromium).exists():
        raise click.ClickException(f"No browser at {chromium}: apt-get install -y chromium")
    for path in shoot(out_dir, chromium):
        click.echo(str(path))
