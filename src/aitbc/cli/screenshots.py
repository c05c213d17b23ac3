"""Screenshots of the main pages at desktop and phone widths, taken in headless Chromium
(Debian's ``chromium`` driven by Playwright; no browser download) against a temporary
coordinator filled with demo data."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from aitbc.web.demo import DemoKeys, seed

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = "/usr/bin/chromium"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


@contextmanager
def temporary_coordinator() -> Iterator[tuple[str, str]]:
    """A coordinator on a fresh SQLite file and a free port; yields (base URL, admin key)."""
    from aitbc.app import create_app
    from aitbc.config import Settings
    from aitbc.migrate import upgrade

    folder = Path(tempfile.mkdtemp(prefix="aitbc-web-"))
    admin_key = secrets.token_urlsafe(32)
    url = f"sqlite:///{folder / 'demo.db'}"
    try:
        upgrade(url)
        settings = Settings(database_url=url, admin_key=admin_key, sweep_interval_seconds=5)
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the temporary coordinator failed to start")
            threading.Event().wait(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}", admin_key
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pages(keys: DemoKeys) -> list[tuple[str, str, str | None]]:
    """(name, path, API key to sign in with) of each page worth a screenshot."""
    return [
        ("browse", "/", None),
        ("browse-filtered", "/?model=rtx&memory_min=20&sort=rating", None),
        ("gpu", f"/gpus/{keys.gpu_ids[0]}", keys.client),
        ("account", "/account", keys.client),
        ("provider", "/provider", keys.miner),
        ("admin", "/admin", keys.admin),
    ]


def take(base_url: str, keys: DemoKeys, out_dir: Path, browser: Browser) -> list[Path]:
    """Shoot every page of ``pages`` at every size of ``SIZES`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        signed_in: str | None = None
        for name, path, key in pages(keys):
            if key != signed_in:
                page.goto(base_url + "/")
                page.evaluate("sessionStorage.clear()")
                if key is not None:
                    page.goto(base_url + "/signin")
                    page.fill("#api-key", key)
                    page.click("button[type=submit]")
                    page.wait_for_url(lambda url: "/signin" not in url)
                signed_in = key
            page.goto(base_url + path)
            page.wait_for_selector("body[data-rendered]", state="attached")
            target = out_dir / f"{name}-{size}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        context.close()
    return written


def screenshots(out_dir: Path, chromium: str = CHROMIUM) -> list[Path]:
    """A temporary coordinator, demo data, and the screenshots of its pages."""
    from playwright.sync_api import sync_playwright

    with temporary_coordinator() as (base_url, admin_key), sync_playwright() as playwright:
        keys = seed(base_url, admin_key)
        browser = playwright.chromium.launch(executable_path=chromium)
        try:
            return take(base_url, keys, out_dir, browser)
        finally:
            browser.close()
