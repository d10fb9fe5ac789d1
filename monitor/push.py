"""`apivigil scan --push-gateway`: a scan's metrics to a Prometheus Pushgateway (CI jobs).

The scan's runs are recorded into a throw-away store, so the pushed families and labels are
exactly the ones the daemon's /metrics exports, plus the time of the last scan in which every
check ran. A scan in which some check could not run is pushed with POST (pushadd), which
keeps the previous last-success time in the group; a complete one replaces the group (PUT).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    push_to_gateway,
    pushadd_to_gateway,
)
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.metric_names import SCAN_LAST_SUCCESS
from monitor.metrics import build_registry
from monitor.model import CheckRun, RunStatus, Target
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore

_EVERY_RUN_COUNTS = HysteresisPolicy(open_after=1, resolve_after=1)
PUSH_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class PushGateway:
    url: str
    job: str
    instance: str
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None


class _Fixed(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


def scan_registry(
    runs: Sequence[CheckRun], targets: Sequence[Target], now: datetime
) -> CollectorRegistry:
    """The daemon's metric families for `runs`, read once, plus SCAN_LAST_SUCCESS when every
    run evaluated its target."""
    with tempfile.TemporaryDirectory(prefix="apivigil-push-") as directory:
        store = SqlStore(f"sqlite:///{Path(directory) / 'scan.db'}")
        try:
            store.upgrade_schema()
            store.sync_targets(targets, now)
            for run in runs:
                store.record(run, _EVERY_RUN_COUNTS)
            families = list(build_registry(store).collect())
        finally:
            store.close()
    if all(run.status is RunStatus.OK for run in runs):
        last = GaugeMetricFamily(SCAN_LAST_SUCCESS.name, SCAN_LAST_SUCCESS.help)
        last.add_metric([], now.timestamp())
        families.append(last)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return registry


def push(gateway: PushGateway, registry: CollectorRegistry, complete: bool) -> None:
    """Push `registry` to the group job + instance; raises OSError (URLError, HTTPError) when
    the gateway cannot be reached or refuses."""
    send = push_to_gateway if complete else pushadd_to_gateway
    send(
        gateway.url,
        job=gateway.job,
        registry=registry,
        grouping_key={"instance": gateway.instance},
        timeout=PUSH_TIMEOUT_SECONDS,
        handler=_handler(gateway),
    )


def _handler(gateway: PushGateway) -> Callable[..., Callable[[], None]]:
    def handle(
        url: str, method: str, timeout: float | None, headers: list[tuple[str, str]], data: bytes
    ) -> Callable[[], None]:
        if gateway.basic_auth is not None:
            user, password = gateway.basic_auth
            return basic_auth_handler(url, method, timeout, headers, data, user, password)
        if gateway.bearer_token is not None:
            headers = [*headers, ("Authorization", f"Bearer {gateway.bearer_token}")]
        return default_handler(url, method, timeout, headers, data)

    return handle
