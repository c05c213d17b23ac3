"""How results are shown: chosen table columns and ``--columns``, no JSON in cells, the output
options after the sub-command, ``--quiet``, ``--version``, and rich's terminal rendering
(colour, fitted to the width) against plain text when stdout is not a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aitbc.cli.main import cli
from tests.cli.cli_support import Cli, isolate, ok_json, ok_text, usage_error
from tests.support.api import Api
from tests.support.gpus import list_gpus, register_miner
from tests.support.market import Market

ANSI = re.compile(r"\x1b\[[0-9;]*m")
GPU_COLUMNS = ["gpu_id", "model", "price_per_hour", "status", "memory_gb", "region"]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def run(live_server: str) -> Cli:
    return Cli(live_server)


@pytest.fixture
def gpus(api: Api, market: Market) -> list[str]:
    register_miner(
        api,
        market.miner_key,
        [
            {"model": "RTX 3090", "memory_gb": 24, "price_per_hour": "0.3", "ai_models": ["a"]},
            {"model": "A100", "memory_gb": 80, "price_per_hour": "2"},
        ],
        region="eu-west",
    )
    return [g["gpu_id"] for g in list_gpus(api)]


def test_output_format_after_the_sub_command(run: Cli, gpus: list[str]) -> None:
    before = ok_json(run(None, "--output", "json", "marketplace", "gpu", "list"))
    after = ok_json(run(None, "marketplace", "gpu", "list", "-o", "json"))
    long_form = ok_json(run(None, "marketplace", "gpu", "list", "--output", "json"))
    between = ok_json(run(None, "marketplace", "-o", "json", "gpu", "list"))
    assert before == after == long_form == between and [g["gpu_id"] for g in after] == gpus
    ids = ok_text(run(None, "marketplace", "gpu", "-q", "list", "--columns", "model"))
    assert ids.split() == gpus

    as_yaml = ok_text(
        run(None, "-o", "json", "marketplace", "gpu", "details", gpus[0], "-o", "yaml")
    )
    assert as_yaml.startswith(f"gpu_id: {gpus[0]}\n")  # the one given last wins
    as_json = ok_json(
        run(None, "marketplace", "-o", "yaml", "gpu", "details", gpus[0], "-o", "json")
    )
    assert as_json["gpu_id"] == gpus[0]
    usage_error(run(None, "marketplace", "gpu", "list", "-o", "xml"), "'xml' is not one of")


def test_gpu_table_has_the_chosen_columns_and_no_json(run: Cli, gpus: list[str]) -> None:
    lines = ok_text(run(None, "marketplace", "gpu", "list")).splitlines()
    assert lines[0].split() == [*GPU_COLUMNS, "average_rating"]
    assert lines[2].split() == [gpus[0], "RTX", "3090", "0.300000", "available", "24", "eu-west"]

    details = ok_text(run(None, "marketplace", "gpu", "details", gpus[0]))
    rows = dict(line.split(None, 1) for line in details.splitlines() if " " in line.strip())
    assert rows["ai_models"].strip() == "a"
    assert "{" not in details and "[" not in details
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", rows["created_at"].strip())


def test_columns_choose_what_a_table_shows(run: Cli, gpus: list[str]) -> None:
    chosen = ok_text(run(None, "marketplace", "gpu", "list", "--columns", "model,uptime_7d_pct"))
    assert [line.split()[-1] for line in chosen.splitlines()[2:]] == ["100.00", "100.00"]
    assert chosen.splitlines()[0].split() == ["model", "uptime_7d_pct"]

    every = ok_text(run(None, "--columns", "all", "marketplace", "gpu", "list"))
    assert "base_price_per_hour" in every.splitlines()[0] and "health" in every.splitlines()[0]

    one = ok_text(run(None, "marketplace", "gpu", "details", gpus[1], "--columns", "model,region"))
    assert [line.split() for line in one.splitlines()] == [["model", "A100"], ["region", "eu-west"]]

    output = usage_error(run(None, "marketplace", "gpu", "list", "--columns", "gpu_id,colour"))
    assert "unknown column colour" in output and "price_per_hour" in output

    as_json = ok_json(run(None, "marketplace", "gpu", "list", "--columns", "model", "-o", "json"))
    assert "gpu_id" in as_json[0]  # columns shape tables only


def test_quiet_prints_ids_only(run: Cli, api: Api, market: Market, gpus: list[str]) -> None:
    assert ok_text(run(None, "marketplace", "gpu", "list", "-q")).split() == gpus
    assert ok_text(run(None, "--quiet", "marketplace", "gpu", "details", gpus[1])) == f"{gpus[1]}\n"
    registered = ok_text(
        run(market.miner_key, "marketplace", "gpu", "register", "--name", "H100", "--quiet")
    ).strip()
    assert registered in [g["gpu_id"] for g in list_gpus(api)] and registered not in gpus

    market.reviewed("c-1", gpus[0], 4)
    market.reviewed("c-2", gpus[0], 2)
    review_ids = ok_text(run(None, "marketplace", "reviews", gpus[0], "-q")).split()
    assert len(review_ids) == 2 and all(r.startswith("rev_") for r in review_ids)


def test_version(run: Cli) -> None:
    result = run(None, "--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"aitbc, version \d+\.\d+\.\d+\S*\n", result.output)


def test_a_single_result_shows_the_lists_it_holds_as_tables(
    run: Cli, market: Market, gpus: list[str]
) -> None:
    market.reviewed("c-1", gpus[0], 5, "great")
    market.reviewed("c-2", gpus[0], 2, "slow")

    text = ok_text(run(None, "marketplace", "reviews", gpus[0]))

    lines = text.splitlines()
    blank = lines.index("")
    fields = {line.split()[0]: line.split()[1:] for line in lines[:blank]}
    assert fields["average_rating"] == ["3.50"] and fields["review_count"] == ["2"]
    assert fields["distribution.2"] == ["1"] and fields["distribution.5"] == ["1"]
    header = lines.index("reviews:") + 1
    assert lines[header].split() == [
        "review_id",
        "rating",
        "comment",
        "reviewer_id",
        "verified",
        "created_at",
    ]
    assert [line.split()[1:3] for line in lines[header + 2 :]] == [["2", "slow"], ["5", "great"]]
    assert "yes" in lines[header + 2]  # verified, in words


def test_on_a_terminal_tables_are_coloured_and_fit_its_width(
    run: Cli, gpus: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = ok_text(run(None, "marketplace", "gpu", "list", "--columns", "all"))
    assert not ANSI.search(plain) and max(len(li) for li in plain.splitlines()) > 200

    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("COLUMNS", "100")
    drawn = ok_text(run(None, "marketplace", "gpu", "list"))
    assert "\x1b[32mavailable" in drawn  # colour: the status in green
    visible = ANSI.sub("", drawn).splitlines()
    assert max(len(li) for li in visible) <= 100
    header = next(li for li in visible if "gpu_id" in li)
    assert header.split() == [*GPU_COLUMNS, "average_rating"]
    assert any(gpus[0] in li and "RTX 3090" in li for li in visible)  # one row, one line
    squeezed = ANSI.sub("", ok_text(run(None, "marketplace", "gpu", "list", "--columns", "all")))
    assert max(len(li) for li in squeezed.splitlines()) <= 100


def test_json_output_is_unchanged_by_the_table_options(run: Cli, api: Api, gpus: list[str]) -> None:
    result = run(None, "--columns", "model", "marketplace", "gpu", "list", "-o", "json")
    assert json.loads(result.stdout) == list_gpus(api)
    assert result.stdout == json.dumps(list_gpus(api), indent=2) + "\n"


def test_serve_takes_no_output_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "-o", "json"])
    assert result.exit_code == 2 and "No such option" in result.output


def test_columns_pick_the_columns_of_a_wrappers_rows(
    run: Cli, market: Market, gpus: list[str]
) -> None:
    market.reviewed("c-1", gpus[0], 5, "great")
    text = ok_text(run(None, "marketplace", "reviews", gpus[0], "--columns", "rating,comment"))
    lines = text.splitlines()
    header = lines.index("reviews:") + 1
    assert lines[header].split() == ["rating", "comment"]
    assert "average_rating" in text  # the wrapper's own fields stay
    unknown = run(None, "marketplace", "reviews", gpus[0], "--columns", "ratin")
    assert unknown.exit_code == 2 and "unknown column ratin" in unknown.output


def test_shell_completion_is_what_the_readme_says() -> None:
    env = os.environ | {"_AITBC_COMPLETE": "bash_source"}
    script = subprocess.run(
        [str(Path(sys.executable).parent / "aitbc")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0, script.stderr
    assert "complete " in script.stdout and "_AITBC_COMPLETE" in script.stdout


_IMPORTED = """
import sys
from aitbc.cli.main import main
sys.argv = ["aitbc", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = ("sqlalchemy", "fastapi", "starlette", "httpx", "plotext", "aitbc.app", "aitbc.config")
print(" ".join(sorted({m for m in sys.modules if m.startswith(heavy)})), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (["--version"], set()),
        (["--help"], set()),
        (["marketplace", "gpu", "list", "--url", "http://127.0.0.1:9"], {"httpx"}),
    ],
)
def test_the_cli_imports_only_what_the_command_needs(argv: list[str], allowed: set[str]) -> None:
    # bench/cli_start.py measures what this buys: --version in 0.07 s instead of 0.5 s.
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORTED, *argv], capture_output=True, text=True, timeout=60
    )
    imported = {m.split(".")[0] for m in ran.stderr.splitlines()[-1].split()}
    assert imported <= allowed, ran.stderr
