"""Start-up stays cheap: `apivigil` imports a check's code only when it runs that check, and
the store, the daemon and the report only in the commands that use them.

Each test imports in a fresh interpreter and inspects `sys.modules`; no timing thresholds.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from checks.interface import Check, CheckParams
from checks.patch_level.params import DEFAULT_ADVISORY_INDEX
from checks.registry import CHECKS, check_class, create_check, params_model
from monitor.cli_patch import DEFAULT_ADVISORY_INDEX as CLI_DEFAULT_ADVISORY_INDEX
from monitor.model import CheckKind

ROOT = Path(__file__).resolve().parent.parent

# third-party packages no command imports at start-up, and a cert_expiry scan never needs
HEAVY_PACKAGES = (
    "sslyze",
    "nassl",
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "fastapi",
    "uvicorn",
    "httpx",
    "jinja2",
    "psycopg",
    "dramatiq",
    "redis",
    "univers",
    "trestle",
    "grafana_client",
    "prometheus_client",
)
OTHER_CHECKS = ("tls_posture", "config_drift", "patch_level", "api_inventory")


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    script = (
        "import json, sys\n"
        "try:\n" + "".join(f"    {line}\n" for line in code.splitlines()) + "finally:\n"
        "    print('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    marker = next(
        (line for line in completed.stdout.splitlines() if line.startswith("MODULES ")), None
    )
    assert marker is not None, completed.stderr
    return set(json.loads(marker.removeprefix("MODULES ")))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY_PACKAGES)


def _check_code(modules: set[str], kinds: tuple[str, ...]) -> list[str]:
    """Modules of the named checks beyond what validating a config needs: every parameter
    model (and the access-log formats api_inventory's parameters name)."""
    allowed = {f"checks.{kind}.params" for kind in kinds} | {"checks.api_inventory.access_log"}
    prefixes = tuple(f"checks.{kind}." for kind in kinds)
    return sorted(m for m in modules if m.startswith(prefixes) and m not in allowed)


@pytest.mark.integration
def test_importing_the_cli_imports_no_check_store_or_server_code() -> None:
    modules = _modules_after("import monitor.cli")
    assert _heavy(modules) == []
    assert _check_code(modules, ("cert_expiry", *OTHER_CHECKS)) == []
    assert not any(m.endswith(".params") for m in modules if m.startswith("checks."))
    for lazy in ("monitor.settings", "monitor.store", "monitor.daemon", "monitor.baselines"):
        assert lazy not in modules
    assert "rich.progress" not in modules


@pytest.mark.integration
def test_a_cert_expiry_scan_imports_only_the_cert_expiry_check(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on: the run fails fast, exit 3
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "apivigil.yaml"
    config.write_text(
        "targets:\n"
        "  - name: local\n"
        f"    url: https://127.0.0.1:{port}\n"
        "    checks:\n"
        "      cert_expiry:\n"
        "        connect_timeout: 2s\n",
        encoding="utf-8",
    )
    argv = ["apivigil", "scan", "--config", str(config), "--check", "cert_expiry", "-f", "json"]
    modules = _modules_after(f"sys.argv = {argv!r}\nfrom monitor.cli import app\napp()")
    assert "checks.cert_expiry.collect" in modules  # it did run the check
    assert _heavy(modules) == []
    assert _check_code(modules, OTHER_CHECKS) == []


@pytest.mark.integration
def test_validating_a_config_imports_parameter_models_only(tmp_path: Path) -> None:
    config = tmp_path / "apivigil.yaml"
    config.write_text(
        "targets:\n  - name: api\n    url: https://127.0.0.1:8443\n    checks:\n"
        "      cert_expiry: {}\n      tls_posture: {}\n",
        encoding="utf-8",
    )
    modules = _modules_after(
        f"from monitor.settings import load_settings\nload_settings({str(config)!r})"
    )
    assert _heavy(modules) == []
    assert _check_code(modules, ("cert_expiry", *OTHER_CHECKS)) == []


@pytest.mark.unit
@pytest.mark.parametrize("kind", list(CheckKind))
def test_every_kind_resolves_to_a_consistent_check(kind: CheckKind) -> None:
    assert kind in CHECKS
    cls = check_class(kind)
    assert CHECKS[kind] is cls
    assert issubclass(cls, Check)
    assert cls.kind is kind
    assert cls.params_model is params_model(kind)
    assert issubclass(params_model(kind), CheckParams)
    assert isinstance(create_check(kind), cls)


@pytest.mark.unit
def test_the_lazy_mapping_lists_every_kind_in_order() -> None:
    assert list(CHECKS) == [
        CheckKind.CERT_EXPIRY,
        CheckKind.TLS_POSTURE,
        CheckKind.CONFIG_DRIFT,
        CheckKind.PATCH_LEVEL,
        CheckKind.API_INVENTORY,
        CheckKind.AUTH_POSTURE,
        CheckKind.HTTP_POSTURE,
    ]
    assert len(CHECKS) == len(CheckKind)
    assert dict(CHECKS.items()) == {kind: check_class(kind) for kind in CheckKind}
    assert "no_such_check" not in CHECKS
    with pytest.raises(KeyError):
        check_class("no_such_check")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        params_model("no_such_check")  # type: ignore[arg-type]


@pytest.mark.unit
def test_the_advisories_command_default_is_the_checks_default() -> None:
    assert CLI_DEFAULT_ADVISORY_INDEX == DEFAULT_ADVISORY_INDEX
