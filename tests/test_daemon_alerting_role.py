"""In a cluster only the leader ticks the alert engine: a reload and a leadership change
that happen together must still leave the leader ticking and followers delivery-only."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from alerts.config import AlertsConfig
from monitor.daemon import Daemon
from monitor.settings import load_settings
from tests.support.daemon_process import write_config

pytestmark = pytest.mark.unit

ALERTS = {
    "receivers": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}}],
    "routes": [{"receivers": ["hook"]}],
}


class ReloadingCluster:
    def reload(self, settings: Any) -> None:
        """The leader's rescheduling is not under test here."""


class SlowAlertLoop:
    """Takes effect when `reconfigure` returns, as the real loop does once its current step
    ends; while the reload's call is in progress the election elects this instance."""

    def __init__(self, on_first_call: Any) -> None:
        self.applied: list[AlertsConfig] = []
        self._on_first_call = on_first_call

    def reconfigure(self, config: AlertsConfig) -> None:
        if not self.applied and self._on_first_call is not None:
            on_first_call, self._on_first_call = self._on_first_call, None
            on_first_call()
        self.applied.append(config)


def test_leadership_won_during_a_reload_leaves_the_leader_ticking(tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "apivigil.yaml",
        {"store": f"sqlite:///{tmp_path / 'a.db'}", "alerts": ALERTS, "targets": []},
    )
    daemon = Daemon(load_settings(path), path)
    elected = threading.Thread(target=daemon._leadership_changed, args=(True,))

    def elect_meanwhile() -> None:
        elected.start()
        elected.join(timeout=0.5)  # with the race, the election's call finishes first

    loop = SlowAlertLoop(on_first_call=elect_meanwhile)
    daemon.store, daemon.cluster, daemon.alerts = object(), ReloadingCluster(), loop  # type: ignore[assignment]

    assert daemon.reload()
    elected.join(timeout=5)

    assert not elected.is_alive()
    assert loop.applied[-1].routes, "the leader was left delivery-only"
    assert len(loop.applied) == 2


class RecordingAlertLoop:
    def __init__(self) -> None:
        self.applied: list[AlertsConfig] = []

    def reconfigure(self, config: AlertsConfig) -> None:
        self.applied.append(config)


def test_a_reload_warns_about_a_route_hysteresis_it_ignores_as_a_start_does(
    tmp_path: Path,
) -> None:
    config = {"store": f"sqlite:///{tmp_path / 'a.db'}", "alerts": ALERTS, "targets": []}
    path = write_config(tmp_path / "apivigil.yaml", config)
    daemon = Daemon(load_settings(path), path)
    loop = RecordingAlertLoop()
    daemon.store, daemon.cluster, daemon.alerts = object(), ReloadingCluster(), loop  # type: ignore[assignment]
    deprecated = {**ALERTS, "routes": [{"receivers": ["hook"], "resolve_after": 2}]}
    write_config(path, {**config, "alerts": deprecated})

    with capture_logs() as logs:
        assert daemon.reload()

    warned = [e for e in logs if e["event"] == "config key ignored"]
    assert [w["key"] for w in warned] == ["alerts.routes[0].resolve_after"]
    assert loop.applied, "the reload was applied"
