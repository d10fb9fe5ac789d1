"""PostgreSQL stopped for 60 s while checks run: no crash, /readyz false (and /healthz true:
nothing is stuck) meanwhile, results held and written after recovery, nothing lost or
recorded twice. The server is the test's own (tests/support/private_postgres.py), so stopping it
leaves the shared one alone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support.chains import Chain
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.ports import free_port
from tests.support.private_postgres import PrivatePostgres

pytestmark = pytest.mark.e2e

TARGETS = 4
OUTAGE_SECONDS = 60  # as long as the issue asks for


def ready(base: str, probe: str = "readyz") -> int:
    try:
        return httpx.get(f"{base}/{probe}", timeout=3).status_code
    except httpx.HTTPError:
        return 0


def test_stopping_postgresql_holds_results_and_writes_them_once_it_is_back(
    tmp_path: Path, chain: Chain
) -> None:
    with PrivatePostgres() as postgres:
        targets = []
        for index in range(TARGETS):
            pem = tmp_path / f"soon-{index}.pem"
            pem.write_bytes(chain.leaf(f"api{index}.test", days_left=3).pem)
            targets.append(
                {
                    "name": f"api{index}",
                    "checks": {"cert_expiry": {"files": [str(pem)], "interval": "1s"}},
                }
            )
        port = free_port()
        path = write_config(
            tmp_path / "apivigil.yaml",
            {
                "store": postgres.url,
                "listen": f"127.0.0.1:{port}",
                "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
                "scheduler": {"initial_spread": "1s"},
                "targets": targets,
            },
        )
        with DaemonProcess(path, port, tmp_path) as daemon:
            daemon.wait_healthy()
            daemon.wait_for_event(lambda e: e.get("event") == "check run")
            assert ready(daemon.base) == 200

            postgres.stop()
            outage_ends = time.monotonic() + OUTAGE_SECONDS
            readiness, liveness = set(), set()
            while time.monotonic() < outage_ends:
                readiness.add(ready(daemon.base))
                liveness.add(ready(daemon.base, "healthz"))
                assert daemon.process.poll() is None, "the daemon died during the outage"
                time.sleep(0.5)
            held = [
                e for e in daemon.events() if e.get("event", "").startswith("store unavailable")
            ]
            postgres.start()
            daemon.wait_for_event(
                lambda e: e.get("event") == "held runs written after the outage", timeout=30
            )
            deadline = time.monotonic() + 30
            while ready(daemon.base) != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert daemon.stop() == 0
        engine = sa.create_engine(postgres.url)
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, run_count FROM check_run")).all()
            opened = connection.execute(
                sa.text("SELECT count(*) FROM finding_event WHERE kind = 'opened'")
            ).scalar_one()
            findings = connection.execute(sa.text("SELECT count(*) FROM finding")).scalar_one()
        engine.dispose()
    events = [
        json.loads(line)
        for line in daemon.log_path.read_text().splitlines()
        if line.startswith("{")
    ]

    assert 503 in readiness, f"/readyz never said not ready: {readiness}"
    assert liveness == {200}, "/healthz called a plain store outage a stuck process"
    assert len(held) >= TARGETS, "no run was held during the outage"
    logged = [e["run_id"] for e in events if e.get("event") == "check run"]
    # a run with the same outcome as the one before extends its row (run-length rows)
    stored = sum(row.run_count for row in rows)
    assert {row.id for row in rows} <= set(logged)
    assert stored == len(logged) == len(set(logged)), "a run was lost or recorded twice"
    assert stored > len(held)
    assert findings == TARGETS
    assert opened == TARGETS, "a finding was opened (and alerted) twice"
    lost = [e for e in events if e.get("event", "").startswith("runs held during a store outage")]
    assert lost == []
    print(
        f"PostgreSQL stopped {OUTAGE_SECONDS} s: runs held {len(held)}, "
        f"runs recorded {stored}, lost 0, duplicated 0"
    )
