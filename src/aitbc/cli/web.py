"""``aitbc web``: demo data for the web pages, and screenshots of them."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def web() -> None:
    """The marketplace's web pages (served by the coordinator at /)."""


@web.command()
@click.option("--url", default=None, help="The coordinator (default: the global --url, AITBC_URL).")
@click.option(
    "--admin-key", default=None, help="An admin API key (default: the key in use, AITBC_API_KEY)."
)
@click.option(
    "--keep-online",
    is_flag=True,
    help="Stay, heartbeating the demo miners every 30 s so their GPUs stay online, until Ctrl-C.",
)
@click.pass_context
def demo(ctx: click.Context, url: str | None, admin_key: str | None, keep_online: bool) -> None:
    """Fill a running coordinator with demo GPUs, clients, bookings and reviews; prints
    the keys it made (shown once)."""
    import threading

    import httpx

    from aitbc.web.demo import DemoError, seed
    from aitbc.web.demo import keep_online as heartbeat

    config = ctx.find_root().obj.config()
    url = url or config.coordinator_url
    admin_key = admin_key or config.api_key
    if not admin_key:
        raise click.UsageError("give an admin key: --admin-key, --api-key or AITBC_API_KEY")
    try:
        keys = seed(url, admin_key)
    except DemoError as error:
        raise click.ClickException(str(error)) from error
    except httpx.HTTPError as error:
        raise click.ClickException(f"cannot reach the coordinator at {url}: {error}") from None
    click.echo(f"client key (demo-alice): {keys.client}")
    click.echo(f"client key (demo-bob):   {keys.other_client}")
    click.echo(f"miner key (demo-miner-eu): {keys.miner}")
    click.echo(f"open {url}/ and sign in with one of them")
    if not keep_online:
        click.echo(
            "The demo miners heartbeat once: their GPUs go offline when the heartbeat timeout "
            "passes (AITBC_HEARTBEAT_TIMEOUT_SECONDS, 90 s by default). Run with --keep-online "
            "to keep them online while it runs.",
            err=True,
        )
        return
    click.echo("keeping the demo miners online; Ctrl-C stops", err=True)
    stop = threading.Event()
    try:
        heartbeat(url, keys.miners, stop, every=30.0)
    except KeyboardInterrupt:
        stop.set()
    except httpx.HTTPError as error:
        raise click.ClickException(f"cannot reach the coordinator at {url}: {error}") from None


@web.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--chromium", default="/usr/bin/chromium", show_default=True)
def screenshots(out_dir: Path, chromium: str) -> None:
    """Screenshots of the main pages at desktop and phone widths, from a temporary
    coordinator with demo data (needs Playwright and Debian's chromium)."""
    import importlib.util

    if importlib.util.find_spec("playwright") is None:
        raise click.ClickException(
            "Screenshots need Playwright: pip install -e '.[test]' (and apt-get install -y "
            "chromium)"
        )
    from aitbc.cli.screenshots import screenshots as shoot

    if not Path(chromium).exists():
        raise click.ClickException(f"No browser at {chromium}: apt-get install -y chromium")
    for path in shoot(out_dir, chromium):
        click.echo(str(path))
