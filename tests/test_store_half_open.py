"""A half-open PostgreSQL connection: the link to the store turns into a black hole (packets
dropped, no RST, no FIN) while checks run. Recording must not freeze: a stuck statement gives
up within its bound and runs are held in memory, healthy targets keep being checked, /healthz
says so while the recorder is stuck, and once the link is back the held runs are written,
none lost and none twice."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tests.support.blackhole_proxy import BlackholeProxy
from tests.support.chains import Chain
from tests.support.daemon_process import DaemonProcess, write_config
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.hostile_peer]

TARGETS = 3
HALF_OPEN_SECONDS = 30
INTERVAL_SECONDS = 1
# a target is "still checked" when no gap between two of its runs exceeds this
GAP_BOUND_SECONDS = INTERVAL_SECONDS + 10


def health(base: str) -> tuple[int, dict[str, Any]]:
    try:
        answer = httpx.get(f"{base}/healthz", timeout=3)
    except httpx.HTTPError:
        return 0, {}
    return answer.status_code, answer.json()


def through(proxy: BlackholeProxy, url: str) -> str:
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)


def config_for(store: str, port: int, pems: list[Path]) -> dict[str, Any]:
    return {
        "store": store,
        "listen": f"127.0.0.1:{port}",
        "defaults": {"interval": "1h", "timeout": "10s", "jitter": "0s"},
        "scheduler": {"initial_spread": "1s", "misfire_grace": "2s"},
        # short bounds, so the half-open period can be short; the defaults are minutes
        "store_timeouts": {"connect": "3s", "statement": "4s", "lock": "2s", "pool": "3s"},
        "health": {"recorder_stalled_after": "1s"},
        "targets": [
            {
                "name": f"api{index}",
                "checks": {"cert_expiry": {"files": [str(pem)], "interval": "1s"}},
            }
            for index, pem in enumerate(pems)
        ],
    }


def test_a_half_open_store_connection_holds_runs_and_recording_resumes_when_the_link_is_back(
    tmp_path: Path, chain: Chain, postgres_url: str
) -> None:
    pems = []
    for index in range(TARGETS):
        pem = tmp_path / f"soon-{index}.pem"
        pem.write_bytes(chain.leaf(f"api{index}.test", days_left=3).pem)
        pems.append(pem)
    port = free_port()
    upstream = make_url(postgres_url)
    with BlackholeProxy(upstream.host or "127.0.0.1", upstream.port or 5432) as proxy:
        path = write_config(
            tmp_path / "apivigil.yaml", config_for(through(proxy, postgres_url), port, pems)
        )
        with DaemonProcess(path, port, tmp_path) as daemon:
            daemon.wait_healthy()
            daemon.wait_for_event(lambda e: e.get("event") == "check run")

            proxy.blackhole()
            cut_at = time.monotonic()
            unhealthy_after: float | None = None
            reasons: list[str] = []
            while time.monotonic() - cut_at < HALF_OPEN_SECONDS:
                status, body = health(daemon.base)
                if status == 503 and unhealthy_after is None:
                    unhealthy_after = time.monotonic() - cut_at
                    reasons = body.get("stalled", [])
                assert daemon.process.poll() is None, "the daemon died while the link was cut"
                time.sleep(0.25)
            recorded_before = count(daemon.events(), "check run")

            proxy.forward()
            back_at = time.monotonic()
            while count(daemon.events(), "check run") == recorded_before:
                assert time.monotonic() - back_at < 60, daemon.log_text()
                time.sleep(0.1)
            resumed_after = time.monotonic() - back_at
            daemon.wait_for_event(
                lambda e: (
                    e.get("event") == "held runs written after the outage" and e.get("left") == 0
                ),
                timeout=60,
            )
            assert health(daemon.base)[0] == 200, daemon.log_text()
            assert daemon.stop() == 0
    events = [
        json.loads(line) for line in daemon.log_path.read_text().splitlines() if line[:1] == "{"
    ]

    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT id, target, started_at, COALESCE(last_started_at, started_at) AS last,"
                " run_count FROM check_run"
            )
        ).all()
    engine.dispose()

    held = [e for e in events if e.get("event", "").startswith("store unavailable")]
    assert len(held) >= TARGETS, "no run was held while the link was cut"
    logged = [e["run_id"] for e in events if e.get("event") == "check run"]
    # a run with the same outcome as the one before extends its row (run-length rows)
    assert {row.id for row in rows} <= set(logged)
    recorded = sum(row.run_count for row in rows)
    assert recorded == len(logged) == len(set(logged)), "a run was lost or recorded twice"
    assert not [e for e in events if e.get("event", "").startswith("runs held during")]
    assert unhealthy_after is not None, "/healthz stayed green while recording was stuck"
    assert any("recorder" in reason for reason in reasons), reasons
    for target in {row.target for row in rows}:
        # a run-length row holds runs at the check's interval: its mean spacing stands for
        # the gaps inside it, and the gaps between rows are measured as before
        mine = sorted((row for row in rows if row.target == target), key=lambda r: r.started_at)
        for earlier, later in itertools.pairwise(mine):
            gap = (later.started_at - earlier.last).total_seconds()
            assert gap <= GAP_BOUND_SECONDS, f"{target} was not checked for a while"
        for row in mine:
            spacing = (row.last - row.started_at).total_seconds() / max(row.run_count - 1, 1)
            assert spacing <= GAP_BOUND_SECONDS, f"{target} was not checked for a while"
    print(
        f"half-open PostgreSQL: recording resumed {resumed_after:.1f} s after the link came "
        f"back, /healthz unhealthy after {unhealthy_after:.1f} s, runs lost 0"
    )


def count(events: list[dict[str, Any]], name: str) -> int:
    return sum(1 for event in events if event.get("event") == name)
