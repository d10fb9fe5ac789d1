"""deploy/systemd/: `systemd-analyze verify` clean, `systemd-analyze security` exposure at most
2.0, the hardening the issue asks for, and the daemon unit's ExecStart and ExecReload run as
they are (outside systemd) against the demo config until /readyz answers 200.

Neither systemd-analyze command needs a running systemd (tests/install-deploy-test-deps.sh
installs it). `verify` checks that the ExecStart binary exists, so it verifies a copy whose
/opt/apivigil/bin/apivigil is the virtualenv's apivigil and that is otherwise byte-identical.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.demo import start_demo_targets, write_demo_config
from tests.support.ports import free_port
from tests.support.waiting import wait_for_200

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "deploy" / "systemd"
UNITS = sorted(SYSTEMD.glob("*.service"))
DAEMON_UNIT = SYSTEMD / "apivigil.service"
INSTALLED_BINARY = "/opt/apivigil/bin/apivigil"
INSTALLED_CONFIG = "/etc/apivigil/apivigil.yaml"
VENV_BINARY = Path(sys.executable).parent / "apivigil"
MAX_EXPOSURE = 2.0
INSTALLER = "tests/install-deploy-test-deps.sh"


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(f"systemd-analyze is missing: run {INSTALLER} (as root)")
    return found


def unit_settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment of a unit file, in order, continuation
    lines joined (a key may repeat: SystemCallFilter=, Environment= ...)."""
    settings: list[tuple[str, str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        settings.append((section, key.strip(), value.strip()))
    return settings


def service_values(path: Path, key: str) -> list[str]:
    return [v for s, k, v in unit_settings(path.read_text()) if s == "Service" and k == key]


def command_line(value: str) -> list[str]:
    """An Exec*= value as argv: systemd's prefixes (-, @, +, !, :) stripped."""
    return shlex.split(value.lstrip("-@+!:"))


def verify_problems(unit: Path) -> list[str]:
    """What `systemd-analyze verify` says about `unit`: nothing when it is clean (a bad value
    is only a warning, exit code 0, so the output counts too)."""
    result = subprocess.run(
        [systemd_analyze(), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = (result.stdout + result.stderr).strip().splitlines()
    if result.returncode != 0:
        problems.append(f"exit code {result.returncode}")
    return problems


def verifiable_copy(unit: Path, directory: Path, text: str | None = None) -> Path:
    """The unit (or `text`) with the installed binary replaced by the virtualenv's one."""
    copy = directory / unit.name
    copy.write_text((text or unit.read_text()).replace(INSTALLED_BINARY, str(VENV_BINARY)))
    return copy


def exposure(unit: Path) -> float:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert found, result.stdout
    return float(found.group(1))


@pytest.mark.unit
def test_both_units_are_there() -> None:
    assert [unit.name for unit in UNITS] == ["apivigil-worker.service", "apivigil.service"]


@pytest.mark.integration
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_analyze_verify_is_clean(unit: Path, tmp_path: Path) -> None:
    assert verify_problems(verifiable_copy(unit, tmp_path)) == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("change", "replacement"),
    [
        ("ProtectSystem=strict", "ProtectSystem=bogus"),  # a bad value: only a warning
        ("ExecStart=", "ExecStrat="),  # no ExecStart left: an error
        ("[Service]", "[Servce]"),
    ],
)
def test_verify_catches_a_broken_unit(change: str, replacement: str, tmp_path: Path) -> None:
    text = DAEMON_UNIT.read_text()
    assert change in text
    broken = verifiable_copy(DAEMON_UNIT, tmp_path, text.replace(change, replacement, 1))
    assert verify_problems(broken) != []


@pytest.mark.integration
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_security_exposure_is_at_most_2(unit: Path, capsys: pytest.CaptureFixture[str]) -> None:
    level = exposure(unit)
    with capsys.disabled():
        print(f"\nsystemd-analyze security --offline=true {unit.name}: exposure {level}")
    assert level <= MAX_EXPOSURE


@pytest.mark.integration
def test_exposure_check_catches_a_weakened_unit(tmp_path: Path) -> None:
    hardening = re.compile(r"^(Protect|Private|Restrict|SystemCall|Capability|NoNew)\w*=.*$")
    weakened = "\n".join(
        line for line in DAEMON_UNIT.read_text().splitlines() if not hardening.match(line)
    )
    copy = tmp_path / DAEMON_UNIT.name
    copy.write_text(weakened + "\n")
    assert exposure(copy) > MAX_EXPOSURE


@pytest.mark.unit
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_units_have_the_hardening_the_issue_asks_for(unit: Path) -> None:
    settings = {(s, k): v for s, k, v in unit_settings(unit.read_text())}  # last one wins
    service = {k: v for (s, k), v in settings.items() if s == "Service"}
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root")
    assert service["StateDirectory"] == "apivigil"
    assert service["ProtectSystem"] == "strict"
    assert service["ProtectHome"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert set(service["RestrictAddressFamilies"].split()) <= {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in service_values(unit, "SystemCallFilter")
    assert command_line(service["ExecStart"])[0] == INSTALLED_BINARY


@pytest.mark.unit
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_units_reload_with_sighup(unit: Path) -> None:
    (reload,) = service_values(unit, "ExecReload")
    assert command_line(reload)[-2:] == ["-HUP", "$MAINPID"]


@pytest.mark.integration
def test_exec_start_as_is_serves_readyz_on_the_demo_config_and_reloads(tmp_path: Path) -> None:
    # Given the unit's ExecStart with only the binary and the config path put in this machine's
    # terms, and the config `apivigil demo` writes (its HTTPS targets running here)
    (exec_start,) = service_values(DAEMON_UNIT, "ExecStart")
    argv = command_line(exec_start)
    assert argv[0] == INSTALLED_BINARY
    assert INSTALLED_CONFIG in argv
    port = free_port()
    targets = start_demo_targets(tmp_path / "demo")
    try:
        config = write_demo_config(
            tmp_path / "demo", targets, f"sqlite:///{tmp_path / 'apivigil.db'}", f"127.0.0.1:{port}"
        )
        command = [str(VENV_BINARY)] + [
            str(config) if a == INSTALLED_CONFIG else a for a in argv[1:]
        ]
        environment = dict(v.split("=", 1) for v in service_values(DAEMON_UNIT, "Environment"))
        log = tmp_path / "daemon.log"
        with log.open("w") as output:
            daemon = subprocess.Popen(
                command,
                cwd=tmp_path,  # the unit's WorkingDirectory is its state directory
                env={**os.environ, **environment},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            # When it starts, then /readyz answers 200 (store reachable, schema current)
            wait_for_200(f"http://127.0.0.1:{port}/readyz", daemon, log.read_text, 60, interval=0.2)
            # and ExecReload, run as it is with $MAINPID, makes it re-read the config
            (exec_reload,) = service_values(DAEMON_UNIT, "ExecReload")
            daemon_pid = str(daemon.pid)
            reload = [daemon_pid if a == "$MAINPID" else a for a in command_line(exec_reload)]
            subprocess.run(reload, check=True, timeout=10)
            wait_for_text(log, "config reloaded", daemon)
            assert daemon.poll() is None
            # and SIGTERM (the unit's KillSignal) drains and exits 0
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(timeout=10)
    finally:
        for target in targets:
            target.server.stop()


def wait_for_text(log: Path, text: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        assert process.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within 30 s:\n{log.read_text()}")
