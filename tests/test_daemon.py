"""The daemon as a real process: metrics, restarts, bad targets, SIGTERM and SIGHUP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.chains import Chain, ServeFactory
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.hostile_servers import GarbageServer, Tarpit
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def config(
    tmp_path: Path, port: int, targets: list[dict[str, Any]], **overrides: Any
) -> dict[str, Any]:
    return {
        "store": f"sqlite:///{tmp_path / 'apivigil.db'}",
        "listen": f"127.0.0.1:{port}",
        "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
        "scheduler": {"initial_spread": "1s"},
        **overrides,
        "targets": targets,
    }


def cert_target(name: str, url: str, **params: Any) -> dict[str, Any]:
    return {
        "name": name,
        "url": url,
        "checks": {"cert_expiry": {"server_name": f"{name}.test", **params}},
    }


def is_run(target: str, status: str | None = None):  # type: ignore[no-untyped-def]
    return lambda e: (
        e.get("event") == "check run"
        and e.get("target") == target
        and (status is None or e.get("status") == status)
    )


def metric_value(metrics: str, name: str, **labels: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_certificates_reach_metrics_and_findings_and_survive_a_restart(
    tmp_path: Path, serve: ServeFactory, chain: Chain
) -> None:
    expiring = chain.leaf("soon.test", days_left=5)
    healthy = chain.leaf("fine.test", days_left=200)
    soon, fine = serve(expiring), serve(healthy)
    port = free_port()
    path = write_config(
        tmp_path / "apivigil.yaml",
        config(tmp_path, port, [cert_target("soon", soon.url), cert_target("fine", fine.url)]),
    )
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        daemon.wait_for_event(is_run("soon", "ok"))
        daemon.wait_for_event(is_run("fine", "ok"))
        metrics = daemon.metrics()
        assert (
            metric_value(
                metrics, "apivigil_cert_not_after_timestamp_seconds", target="soon", position="leaf"
            )
            == expiring.certificate.not_valid_after_utc.timestamp()
        )
        assert (
            metric_value(
                metrics,
                "apivigil_cert_not_after_timestamp_seconds",
                target="fine",
                position="intermediate",
            )
            == chain.intermediate.certificate.not_valid_after_utc.timestamp()
        )
        assert daemon.stop() == 0

    listed = run_cli("findings", "--config", str(path), "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert '"rule_id": "CERT-EXPIRES-SOON"' in listed.stdout
    assert '"severity": "critical"' in listed.stdout

    with DaemonProcess(path, port, tmp_path) as restarted:
        restarted.wait_healthy()
        time.sleep(3)  # longer than the initial spread: anything due now would have run
        assert [e for e in restarted.events() if e.get("event") == "check run"] == []
        metrics = restarted.metrics()
        assert metric_value(metrics, "apivigil_check_runs_total", target="soon", status="ok") == 1
        assert (
            metric_value(metrics, "apivigil_findings_open", target="soon", severity="critical") == 1
        )
        assert (
            metric_value(
                metrics, "apivigil_cert_not_after_timestamp_seconds", target="soon", position="leaf"
            )
            == expiring.certificate.not_valid_after_utc.timestamp()
        )
        assert restarted.stop() == 0
    again = run_cli("findings", "--config", str(path), "--format", "json")
    assert again.stdout == listed.stdout


def test_unreachable_target_errors_without_touching_open_findings(
    tmp_path: Path, serve: ServeFactory, chain: Chain
) -> None:
    server = serve(chain.leaf("flaky.test", days_left=3))
    port = free_port()
    path = write_config(
        tmp_path / "apivigil.yaml",
        config(
            tmp_path, port, [cert_target("flaky", server.url, interval="1s", connect_timeout="1s")]
        ),
    )
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        daemon.wait_for_event(lambda e: e.get("event") == "finding opened")
        server.stop()
        failed = daemon.wait_for_event(is_run("flaky", "error"))
        assert failed["reason"] == "unreachable"
        # refused, or reset when the server stopped in the middle of a handshake
        assert "refused" in failed["error"].lower() or "reset" in failed["error"].lower()
        time.sleep(3)  # several more failing runs: more than resolve_after
        errors = [e for e in daemon.events() if is_run("flaky", "error")(e)]
        assert len(errors) >= 2
        assert not any(e.get("event") == "finding resolved" for e in daemon.events())
        metrics = daemon.metrics()
        assert metric_value(metrics, "apivigil_check_up", target="flaky") == 0
        assert (
            metric_value(metrics, "apivigil_findings_open", target="flaky", severity="critical")
            == 1
        )
        assert daemon.stop() == 0


def test_bad_targets_are_clear_errors_and_do_not_disturb_the_others(
    tmp_path: Path, serve: ServeFactory, chain: Chain, tarpit: Tarpit, garbage_server: GarbageServer
) -> None:
    good = serve(chain.leaf("good.test", days_left=100))
    not_a_cert = tmp_path / "not-a-cert.pem"
    not_a_cert.write_text("this is not a certificate\n")
    port = free_port()
    targets = [
        cert_target("good", good.url, interval="2s"),
        cert_target("pit", f"127.0.0.1:{tarpit.port}", connect_timeout="1s"),
        cert_target("junk", f"127.0.0.1:{garbage_server.port}"),
        {"name": "pem", "checks": {"cert_expiry": {"files": [str(not_a_cert)]}}},
    ]
    path = write_config(tmp_path / "apivigil.yaml", config(tmp_path, port, targets))
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        pit = daemon.wait_for_event(is_run("pit", "error"))
        junk = daemon.wait_for_event(is_run("junk", "error"))
        pem = daemon.wait_for_event(is_run("pem", "error"))
        assert (pit["reason"], f"127.0.0.1:{tarpit.port}" in pit["error"]) == ("unreachable", True)
        assert (junk["reason"], f"127.0.0.1:{garbage_server.port}" in junk["error"]) == (
            "bad_input",
            True,
        )
        assert (pem["reason"], str(not_a_cert) in pem["error"]) == ("bad_input", True)
        time.sleep(2.5)
        assert len([e for e in daemon.events() if is_run("good", "ok")(e)]) >= 2
        assert daemon.process.poll() is None
        assert metric_value(daemon.metrics(), "apivigil_check_up", target="good") == 1
        assert daemon.stop() == 0


def test_a_name_that_does_not_resolve_errors_while_the_daemon_and_other_targets_go_on(
    tmp_path: Path, chain: Chain
) -> None:
    # In a network namespace of its own the lookup fails without a packet leaving this
    # machine; the daemon there is watched through its logs.
    good_pem = tmp_path / "good.pem"
    good_pem.write_bytes(chain.leaf("files.test", days_left=100).pem)
    targets = [
        cert_target("ghost", "https://no-such-host.invalid", interval="1s"),
        {"name": "files", "checks": {"cert_expiry": {"files": [str(good_pem)], "interval": "1s"}}},
    ]
    path = write_config(tmp_path / "apivigil.yaml", config(tmp_path, free_port(), targets))
    log_path = tmp_path / "isolated.log"
    command = f"ip link set lo up && exec {sys.executable} -m monitor run --config {path} --migrate"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", command], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            events = [
                json.loads(line)
                for line in log_path.read_text().splitlines()
                if line.startswith("{")
            ]
            if len([e for e in events if is_run("files", "ok")(e)]) >= 3 and any(
                is_run("ghost")(e) for e in events
            ):
                break
            time.sleep(0.2)
        ghost = [e for e in events if is_run("ghost")(e)]
        assert ghost, log_path.read_text()
        assert (ghost[0]["status"], ghost[0]["reason"]) == ("error", "unreachable")
        assert "no-such-host.invalid" in ghost[0]["error"]
        assert "DNS lookup failed" in ghost[0]["error"]
        assert len([e for e in events if is_run("files", "ok")(e)]) >= 3
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0


def test_sigterm_during_a_slow_check_exits_zero_within_the_grace_period(
    tmp_path: Path, tarpit: Tarpit
) -> None:
    port = free_port()
    targets = [
        cert_target("slow", f"127.0.0.1:{tarpit.port}", timeout="120s", connect_timeout="120s")
    ]
    path = write_config(
        tmp_path / "apivigil.yaml", config(tmp_path, port, targets, shutdown_grace="2s")
    )
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        time.sleep(1.5)  # the check is now hanging on the tarpit
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.process.wait(timeout=30)
        elapsed = time.monotonic() - started
        assert code == 0
        assert elapsed < 2 + 3, f"took {elapsed:.1f}s"
        assert "abandoning checks still running" in daemon.log_text()


def test_sigterm_during_a_slow_tls_scan_exits_zero_within_the_grace_period(
    tmp_path: Path, tarpit: Tarpit
) -> None:
    port = free_port()
    targets = [
        {
            "name": "slow-tls",
            "url": f"127.0.0.1:{tarpit.port}",
            "checks": {"tls_posture": {"network_timeout": "60s", "timeout": "120s"}},
        }
    ]
    path = write_config(
        tmp_path / "apivigil.yaml", config(tmp_path, port, targets, shutdown_grace="2s")
    )
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        time.sleep(1.5)  # sslyze is now waiting on the tarpit
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.process.wait(timeout=60)
        elapsed = time.monotonic() - started
        assert code == 0
        assert elapsed < 2 + 3, f"took {elapsed:.1f}s"


def test_sighup_with_a_bad_config_keeps_the_running_one(
    tmp_path: Path, serve: ServeFactory, chain: Chain
) -> None:
    first = serve(chain.leaf("one.test", days_left=100))
    second = serve(chain.leaf("two.test", days_left=100))
    port = free_port()
    good = config(tmp_path, port, [cert_target("one", first.url, interval="1s")])
    path = write_config(tmp_path / "apivigil.yaml", good)
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        daemon.wait_for_event(is_run("one", "ok"))
        path.write_text(path.read_text().replace("interval: 1s", "interval: often"))
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_for_event(
            lambda e: e.get("event", "").startswith("config reload rejected")
        )
        assert any("targets[0].checks.cert_expiry.interval" in p for p in rejected["problems"])
        runs_before = len([e for e in daemon.events() if is_run("one", "ok")(e)])
        time.sleep(2.5)
        assert len([e for e in daemon.events() if is_run("one", "ok")(e)]) > runs_before
        assert daemon.process.poll() is None

        good["targets"].append(cert_target("two", second.url))
        write_config(path, good)
        daemon.signal(signal.SIGHUP)
        daemon.wait_for_event(lambda e: e.get("event") == "config reloaded")
        daemon.wait_for_event(is_run("two", "ok"))
        assert daemon.stop() == 0


def test_daemon_refuses_an_empty_store_unless_told_to_migrate(tmp_path: Path) -> None:
    path = write_config(tmp_path / "apivigil.yaml", config(tmp_path, free_port(), []))
    completed = run_cli("run", "--config", str(path))
    assert completed.returncode == 2
    assert "apivigil db upgrade" in completed.stderr
    upgraded = run_cli("db", "upgrade", "--config", str(path))
    assert upgraded.returncode == 0, upgraded.stderr
    assert "now current" in upgraded.stdout
