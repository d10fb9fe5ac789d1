"""/metrics stays fast with thousands of targets: a slow rendering is refreshed in the
background and served at once, never older than its limit; a quick one is always fresh."""

from __future__ import annotations

import time
from collections.abc import Iterable

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.api import MetricsPage

pytestmark = pytest.mark.unit


class Counting(Collector):
    """Reports how many times it was collected, taking `seconds` each time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.collected = 0

    def collect(self) -> Iterable[Metric]:
        time.sleep(self.seconds)
        self.collected += 1
        gauge = GaugeMetricFamily("collected", "times collected")
        gauge.add_metric([], self.collected)
        yield gauge


def page(seconds: float, **limits: float) -> MetricsPage:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Counting(seconds))
    return MetricsPage(registry, **limits)


def value(body: bytes) -> float:
    return float(body.decode().splitlines()[-1].split()[-1])


def test_a_quick_rendering_is_fresh_on_every_scrape() -> None:
    metrics = page(0.0)
    assert [value(metrics.body()[0]) for _ in range(3)] == [1, 2, 3]


def test_a_slow_rendering_is_served_at_once_and_refreshed_in_the_background() -> None:
    metrics = page(0.3, slow_seconds=0.1, refresh_seconds=0.5, max_age_seconds=30)
    started = time.monotonic()
    first, age = metrics.body()
    assert time.monotonic() - started >= 0.3  # nothing to serve yet: rendered now
    assert (value(first), age) == (1, 0.0)
    started = time.monotonic()
    second, _ = metrics.body()
    assert time.monotonic() - started < 0.1  # served from the last rendering
    assert value(second) == 1
    time.sleep(1.5)
    newer, age = metrics.body()
    assert value(newer) >= 2
    assert age < 1.0


def test_a_rendering_older_than_the_limit_is_never_served() -> None:
    metrics = page(0.2, slow_seconds=0.1, refresh_seconds=60, max_age_seconds=0.3)
    metrics.body()
    time.sleep(0.4)
    body, age = metrics.body()
    assert (value(body), age) == (2, 0.0)
