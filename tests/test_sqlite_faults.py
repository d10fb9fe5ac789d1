"""SQLite faults: a full disk and a read-only database give a clear error, the daemon keeps
going, nothing is corrupted, and (disk full) the held results are written once space is back."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chains import Chain
from tests.support.daemon_process import DaemonProcess, run_cli, write_config
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own (needs root, as CI runs)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def targets(tmp_path: Path, chain: Chain, count: int) -> list[dict[str, object]]:
    found = []
    for index in range(count):
        pem = tmp_path / f"cert-{index}.pem"
        pem.write_bytes(chain.leaf(f"api{index}.test", days_left=3).pem)
        found.append(
            {
                "name": f"api{index}",
                "checks": {"cert_expiry": {"files": [str(pem)], "interval": "1s"}},
            }
        )
    return found


def events(daemon: DaemonProcess) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in daemon.log_path.read_text().splitlines()
        if line.startswith("{")
    ]


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_full_disk_holds_results_then_writes_them_when_space_is_back(
    tmp_path: Path, chain: Chain, tiny_disk: Path
) -> None:
    database = tiny_disk / "apivigil.db"
    port = free_port()
    path = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///{database}",
            "listen": f"127.0.0.1:{port}",
            "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
            "scheduler": {"initial_spread": "1s"},
            "targets": targets(tmp_path, chain, 5),
        },
    )
    assert run_cli("db", "upgrade", "--config", str(path)).returncode == 0
    with DaemonProcess(path, port, tmp_path) as daemon:
        daemon.wait_healthy()
        daemon.wait_for_event(lambda e: e.get("event") == "check run")
        filler = tiny_disk / "filler"
        descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:  # leave no space at all
            while True:
                os.write(descriptor, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(descriptor)
        daemon.wait_for_event(
            lambda e: str(e.get("event", "")).startswith("store unavailable"), timeout=30
        )
        assert daemon.process.poll() is None
        filler.unlink()
        daemon.wait_for_event(
            lambda e: e.get("event") == "held runs written after the outage", timeout=30
        )
        assert daemon.stop() == 0
    held = [e for e in events(daemon) if str(e.get("event", "")).startswith("store unavailable")]
    assert "full" in str(held[0]["error"]).lower()
    assert integrity(database) == "ok"
    with sqlite3.connect(database) as connection:
        runs = connection.execute("SELECT sum(run_count) FROM check_run").fetchone()[0]
    assert runs >= len(held)
    print(f"disk full: runs held {len(held)}, recorded {runs}, integrity ok, lost 0")


def test_a_read_only_database_is_a_clear_error_and_stays_intact(
    tmp_path: Path, chain: Chain
) -> None:
    database = tmp_path / "apivigil.db"
    writable = write_config(tmp_path / "setup.yaml", {"store": f"sqlite:///{database}"})
    assert run_cli("db", "upgrade", "--config", str(writable)).returncode == 0
    port = free_port()
    path = write_config(
        tmp_path / "apivigil.yaml",
        {
            "store": f"sqlite:///file:{database}?mode=ro&uri=true",
            "listen": f"127.0.0.1:{port}",
            "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
            "scheduler": {"initial_spread": "1s"},
            "targets": targets(tmp_path, chain, 2),
        },
    )
    daemon = DaemonProcess(path, port, tmp_path)
    deadline = time.monotonic() + 30
    message = ""
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            message = daemon.log_path.read_text()
            break
        held = [
            e for e in events(daemon) if str(e.get("event", "")).startswith("store unavailable")
        ]
        if held:
            message = str(held[0]["error"])
            assert daemon.stop() == 0
            break
        time.sleep(0.3)
    else:
        daemon.stop()
        pytest.fail("neither a clear refusal nor a held run within 30 s")

    assert "readonly" in message.replace("-", "").replace(" ", "").lower() or "read only" in message
    assert integrity(database) == "ok"
