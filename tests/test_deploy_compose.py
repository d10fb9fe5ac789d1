"""deploy/docker/compose.yaml through Debian's `docker-compose config` (no Docker engine needed):
valid with and without the `workers` profile, hardened, on loopback, using the repository's
Prometheus, Alertmanager and Grafana files, and rejected when broken; the configs it mounts
pass `apivigil config check`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "deploy" / "docker"
COMPOSE = DOCKER / "compose.yaml"
VENV_BIN = Path(sys.executable).parent
INSTALLER = "tests/install-deploy-test-deps.sh"


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(f"docker-compose is missing: run {INSTALLER} (as root)")
    return found


def compose_config(path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker_compose(), "-f", str(path), *options, "config"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=path.parent,
    )


def rendered_compose(*options: str) -> dict[str, Any]:
    result = compose_config(COMPOSE, *options)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings either
    document = yaml.safe_load(result.stdout)
    assert isinstance(document, dict)
    return document


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of each bind mount (named volumes left out)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("/"):
            mounts[target] = Path(source)
    return mounts


@pytest.mark.integration
@pytest.mark.parametrize("profile", [[], ["--profile", "workers"]], ids=["default", "workers"])
def test_compose_config_is_valid(profile: list[str]) -> None:
    services = rendered_compose(*profile)["services"]
    assert {"apivigil", "postgres", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert {"redis", "apivigil-worker"} <= set(services)
    assert services["redis"]["profiles"] == services["apivigil-worker"]["profiles"] == ["workers"]
    for name in ("apivigil", "apivigil-worker"):
        service = services[name]
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        assert bind_mounts(service)["/etc/apivigil/apivigil.yaml"].is_file()
    assert services["apivigil-worker"]["command"][:1] == ["worker"]
    for port in services["apivigil"]["ports"]:
        assert port.startswith("127.0.0.1:"), port  # published on loopback only
    for name in ("prometheus", "alertmanager", "grafana"):
        assert services[name]["network_mode"] == "service:apivigil"
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), f"{name}: {source} -> {target} does not exist"


def config_file_on_host(service: dict[str, Any]) -> Path:
    """The host file behind the service's --config.file=, through its bind mounts."""
    (config,) = [a.split("=", 1)[1] for a in service["command"] if a.startswith("--config.file=")]
    mounts = bind_mounts(service)
    mount = next(target for target in mounts if config.startswith(target + "/"))
    return Path(mounts[mount] / config.removeprefix(mount + "/"))


@pytest.mark.integration
def test_compose_uses_the_prometheus_grafana_and_alertmanager_files_of_the_repository() -> None:
    services = rendered_compose()["services"]
    deploy = REPO / "deploy"
    prometheus = config_file_on_host(services["prometheus"])
    assert prometheus == deploy / "prometheus" / "prometheus.yml"
    for rule_file in yaml.safe_load(prometheus.read_text()).get("rule_files", []):
        assert list(prometheus.parent.glob(rule_file)), rule_file  # inside the mount too
    assert config_file_on_host(services["alertmanager"]) == (
        deploy / "alertmanager" / "alertmanager.yml"
    )
    grafana = bind_mounts(services["grafana"])
    provisioning = deploy / "grafana" / "provisioning"
    assert grafana["/etc/grafana/provisioning/datasources"] == provisioning / "datasources"
    assert grafana["/etc/grafana/provisioning/dashboards"] == provisioning / "dashboards"
    assert grafana["/var/lib/grafana/dashboards/apivigil"] == REPO / "dashboards" / "json"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ("    read_only: true\n", "    read_only: sometimes\n"),
        ("  apivigil:\n", "  apivigil:\n    imagee: typo\n"),
        ("condition: service_healthy", "condition: when_it_feels_like_it"),
    ],
)
def test_compose_config_catches_a_broken_file(
    change: str, replacement: str, tmp_path: Path
) -> None:
    text = COMPOSE.read_text()
    assert change in text
    broken = tmp_path / "deploy" / "docker" / "compose.yaml"  # ../.. still a directory
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(change, replacement, 1))
    assert compose_config(broken).returncode != 0


@pytest.mark.e2e
@pytest.mark.parametrize("config", ["apivigil.yaml", "apivigil.compose.yaml"])
def test_container_configs_pass_apivigil_config_check(config: str) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "apivigil"), "config", "check", str(DOCKER / config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_compose_config_with_its_cluster_line_uncommented_passes_config_check(
    tmp_path: Path,
) -> None:
    # the `--profile workers` step: uncomment `cluster:`; the store is the PostgreSQL secret
    text = (DOCKER / "apivigil.compose.yaml").read_text()
    assert "# cluster: " in text
    config = tmp_path / "apivigil.yaml"
    config.write_text(text.replace("# cluster: ", "cluster: ", 1))
    (tmp_path / "store_url").write_text("postgresql+psycopg://apivigil@postgres/apivigil\n")
    result = subprocess.run(
        [str(VENV_BIN / "apivigil"), "config", "check", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "APIVIGIL_STORE_FILE": str(tmp_path / "store_url")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(config.read_text())["cluster"]["broker"] == "redis://redis:6379/0"
