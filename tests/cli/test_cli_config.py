"""CLI configuration, lowest to highest priority: built-in defaults, the YAML file
(``--config-file``, else ``~/.aitbc/config.yaml``), ``AITBC_URL`` / ``AITBC_API_KEY``, then
the ``--url`` / ``--api-key`` flags."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from aitbc.cli import config as cli_config
from aitbc.cli import http as cli_http
from aitbc.cli.config import DEFAULT_URL, load
from aitbc.cli.http import Api as HttpApi
from aitbc.cli.main import cli
from tests.support.api import Api


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No real ``~/.aitbc/config.yaml`` and no ``AITBC_*`` variables leak into a test; the
    returned path is where the default config file would be."""
    home_config = tmp_path / "home" / ".aitbc" / "config.yaml"
    monkeypatch.setattr(cli_config, "DEFAULT_CONFIG_FILE", home_config)
    monkeypatch.delenv("AITBC_URL", raising=False)
    monkeypatch.delenv("AITBC_API_KEY", raising=False)
    return home_config


def _yaml(path: Path, **values: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_defaults() -> None:
    config = load(url=None, api_key=None, config_file=None)

    assert config.coordinator_url == DEFAULT_URL == "http://127.0.0.1:18000"
    assert config.api_key == ""


def test_the_default_config_file_is_read(isolated: Path) -> None:
    _yaml(isolated, coordinator_url="http://home:1", api_key="home-key")

    config = load(url=None, api_key=None, config_file=None)

    assert (config.coordinator_url, config.api_key) == ("http://home:1", "home-key")


def test_config_file_overrides_defaults(tmp_path: Path) -> None:
    path = _yaml(tmp_path / "c.yaml", coordinator_url="http://file:1", api_key="file-key")

    config = load(url=None, api_key=None, config_file=path)

    assert (config.coordinator_url, config.api_key) == ("http://file:1", "file-key")


def test_explicit_config_file_replaces_the_default_one(isolated: Path, tmp_path: Path) -> None:
    _yaml(isolated, coordinator_url="http://home:1", api_key="home-key")
    path = _yaml(tmp_path / "c.yaml", coordinator_url="http://file:1")

    config = load(url=None, api_key=None, config_file=path)

    assert (config.coordinator_url, config.api_key) == ("http://file:1", "")


def test_a_partial_config_file_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = _yaml(tmp_path / "c.yaml", api_key="file-key")

    config = load(url=None, api_key=None, config_file=path)

    assert (config.coordinator_url, config.api_key) == (DEFAULT_URL, "file-key")


def test_environment_overrides_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _yaml(tmp_path / "c.yaml", coordinator_url="http://file:1", api_key="file-key")
    monkeypatch.setenv("AITBC_URL", "http://env:2")
    monkeypatch.setenv("AITBC_API_KEY", "env-key")

    config = load(url=None, api_key=None, config_file=path)

    assert (config.coordinator_url, config.api_key) == ("http://env:2", "env-key")


def test_flags_override_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _yaml(tmp_path / "c.yaml", coordinator_url="http://file:1", api_key="file-key")
    monkeypatch.setenv("AITBC_URL", "http://env:2")
    monkeypatch.setenv("AITBC_API_KEY", "env-key")

    config = load(url="http://flag:3", api_key="flag-key", config_file=path)

    assert (config.coordinator_url, config.api_key) == ("http://flag:3", "flag-key")


def test_each_setting_comes_from_its_highest_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _yaml(tmp_path / "c.yaml", coordinator_url="http://file:1", api_key="file-key")
    monkeypatch.setenv("AITBC_API_KEY", "env-key")

    from_env_and_file = load(url=None, api_key=None, config_file=path)
    from_flag_and_env = load(url="http://flag:3", api_key=None, config_file=path)

    assert (from_env_and_file.coordinator_url, from_env_and_file.api_key) == (
        "http://file:1",
        "env-key",
    )
    assert (from_flag_and_env.coordinator_url, from_flag_and_env.api_key) == (
        "http://flag:3",
        "env-key",
    )


def test_trailing_slash_is_dropped_from_the_url() -> None:
    assert load(url="http://x:1/", api_key=None, config_file=None).coordinator_url == "http://x:1"


def test_a_missing_explicit_config_file_is_a_clean_cli_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    result = CliRunner().invoke(cli, ["--config-file", str(missing), "marketplace", "gpu", "list"])

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert str(missing) in result.output


def test_a_config_file_that_is_not_a_mapping_is_a_clean_cli_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- just\n- a list\n")

    result = CliRunner().invoke(cli, ["--config-file", str(path), "marketplace", "gpu", "list"])

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception
    assert "mapping" in result.output


# --- end to end against the live server -------------------------------------------------


def test_precedence_end_to_end(
    api: Api, live_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file names the server and a miner key; the environment swaps in a client key (a
    403 on register) and a dead URL; the flags restore the URL and the miner key."""
    miner = api.key("miner", "m-1")
    client = api.key("client", "c-1")
    path = _yaml(tmp_path / "c.yaml", coordinator_url=live_server, api_key=miner)
    runner = CliRunner()
    register = ["marketplace", "gpu", "register", "--name", "RTX 4090"]
    base = ["--config-file", path, "--output", "json"]

    from_file = runner.invoke(cli, [*base, *register])
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.stdout)["miner_id"] == "m-1"

    monkeypatch.setenv("AITBC_API_KEY", client)
    from_env = runner.invoke(cli, [*base, *register])
    assert from_env.exit_code != 0
    assert "wrong_role" in from_env.output

    monkeypatch.setenv("AITBC_URL", "http://127.0.0.1:9")
    unreachable = runner.invoke(cli, [*base, "marketplace", "gpu", "list"])
    assert unreachable.exit_code != 0
    assert "cannot reach" in unreachable.output

    from_flags = runner.invoke(cli, [*base, "--url", live_server, "--api-key", miner, *register])
    assert from_flags.exit_code == 0, from_flags.output
    listed = api.call("GET", "/v1/marketplace/gpu/list").json()
    assert len(listed) == 2


def test_no_key_anywhere_means_anonymous(api: Api, live_server: str) -> None:
    gpu_id = api.register_gpu(api.key("miner", "m-1"))
    runner = CliRunner()

    listed = runner.invoke(
        cli, ["--url", live_server, "--output", "json", "marketplace", "gpu", "list"]
    )
    register = runner.invoke(
        cli, ["--url", live_server, "marketplace", "gpu", "register", "--name", "RTX 4090"]
    )

    assert listed.exit_code == 0, listed.output
    assert [g["gpu_id"] for g in json.loads(listed.stdout)] == [gpu_id]
    assert register.exit_code != 0
    assert "authentication_required" in register.output


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--url", "http://[::1"], "is not a URL"),
        (["--url", "http://127.0.0.1:8x"], "is not a URL"),
        (["--url", "http://127.0.0.1:1", "--api-key", "kéy"], "not ASCII"),
    ],
)
def test_a_bad_url_or_key_is_a_clean_cli_error(flags: list[str], said: str) -> None:
    result = CliRunner().invoke(cli, [*flags, "marketplace", "gpu", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert said in result.output, result.output


def test_an_answer_that_is_not_json_is_a_clean_cli_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A --url that points at some other web server (a proxy's page, a web site)."""
    page = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>hi</html>"))
    monkeypatch.setattr(cli_http, "Api", lambda config: HttpApi(config, transport=page))
    result = CliRunner().invoke(cli, ["--url", "http://c.test", "marketplace", "gpu", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "http://c.test answered HTTP 200 with something other than JSON" in result.output
