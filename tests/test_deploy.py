"""What deploy/ ships is checked where this machine can: haproxy's configuration by haproxy
itself, the systemd units by systemd-analyze, the compose file's shape (no Docker daemon
here to run it), and the image's recipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_the_haproxy_configuration_is_valid() -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed")
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = (DEPLOY / "haproxy.cfg").read_text()
    assert "option httpchk GET /health/ready" in config  # readiness, which drains
    assert "disable-l7-retry unless idempotent or keyed" in config


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    aitbc = str(Path(sys.executable).parent / "aitbc")  # this checkout's, for the check
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/aitbc/.venv/bin/aitbc", aitbc))
        units.append(str(copy))
    assert len(units) == 2
    verified = subprocess.run([analyze, "verify", *units], capture_output=True, text=True)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr


def test_the_compose_file_migrates_once_then_starts_three_nodes_behind_haproxy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "node1", "node2", "node3", "haproxy"}
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("node1", "node2", "node3"):
        node = services[name]
        assert node["command"][:2] == ["serve", "--no-migrate"]
        assert node["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert "AITBC_ADMIN_KEY" in node["environment"]
    assert "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in services["haproxy"]["volumes"]
    assert "healthcheck" in services["postgres"]


def test_the_image_runs_as_an_unprivileged_user_with_a_health_check() -> None:
    recipe = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in recipe.splitlines()]
    assert "USER aitbc" in lines
    assert lines.index("USER aitbc") > max(
        i for i, line in enumerate(lines) if line.startswith("RUN ")
    )
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert 'CMD ["serve", "--no-migrate", "--workers", "2"]' in lines
