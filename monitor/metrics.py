"""Prometheus metrics computed from the store at scrape time, on apivigil's own registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import structlog
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from monitor import __version__
from monitor.model import RunStatus, Severity
from monitor.posture import ControlStatus, control_statuses, posture_scores
from monitor.store.interface import MetricsState, Store, StoreError

log = structlog.get_logger("apivigil.metrics")

DURATION_BUCKETS: Sequence[float] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class StoreCollector(Collector):
    """Reads current state from the store on every scrape, so a restart loses nothing."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        build = GaugeMetricFamily("apivigil_build_info", "apivigil build", labels=["version"])
        build.add_metric([__version__], 1)
        yield build
        store_up = GaugeMetricFamily("apivigil_store_up", "1 when the store answered this scrape")
        try:
            state = self._store.metrics_state(DURATION_BUCKETS)
        except StoreError as error:
            log.warning("metrics could not read the store", error=str(error))
            store_up.add_metric([], 0)
            yield store_up
            return
        store_up.add_metric([], 1)
        yield store_up
        yield from _run_metrics(state)
        yield from _finding_metrics(state)
        yield from _observation_metrics(state)
        yield from _notification_metrics(state)
        yield from _rollup_metrics(state)


def _run_metrics(state: MetricsState) -> Iterable[Metric]:
    runs = CounterMetricFamily(
        "apivigil_check_runs", "Check runs by outcome", labels=["check", "target", "status"]
    )
    for (check, target, status), count in sorted(state.run_counts.items()):
        runs.add_metric([check.value, target, status.value], count)
    yield runs
    last = GaugeMetricFamily(
        "apivigil_check_last_run_timestamp_seconds",
        "When each check last finished on each target, by outcome",
        labels=["check", "target", "status"],
    )
    for (check, target, status), finished in sorted(state.last_run_at.items()):
        last.add_metric([check.value, target, status.value], finished.timestamp())
    yield last
    up = GaugeMetricFamily(
        "apivigil_check_up",
        "1 when the latest run of the check evaluated the target",
        labels=["check", "target"],
    )
    for (check, target), status in sorted(state.last_status.items()):
        up.add_metric([check.value, target], 1 if status is RunStatus.OK else 0)
    yield up
    duration = HistogramMetricFamily(
        "apivigil_check_duration_seconds", "Duration of check runs", labels=["check"]
    )
    for check, histogram in sorted(state.durations.items()):
        buckets = [(_bound(bound), count) for bound, count in histogram.buckets]
        buckets.append(("+Inf", histogram.count))
        duration.add_metric([check.value], buckets, histogram.total_seconds)
    yield duration


def _finding_metrics(state: MetricsState) -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "apivigil_findings_open", "Open findings", labels=["check", "target", "severity"]
    )
    for check, target in sorted(state.last_status):
        for severity in Severity:
            family.add_metric(
                [check.value, target, severity.value],
                state.open_findings.get((check, target, severity), 0),
            )
    yield family


def _observation_metrics(state: MetricsState) -> Iterable[Metric]:
    by_name: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for sample in state.latest_samples:
        by_name.setdefault(sample.name, []).append(
            (sample.target, dict(sample.labels), sample.value)
        )
    for name, samples in sorted(by_name.items()):
        label_names = sorted({key for _, labels, _ in samples for key in labels} - {"target"})
        family = GaugeMetricFamily(
            f"apivigil_{name}",
            f"Observation {name} from the latest evaluated run",
            labels=["target", *label_names],
        )
        for target, labels, value in samples:
            family.add_metric([target, *(labels.get(key, "") for key in label_names)], value)
        yield family


def _notification_metrics(state: MetricsState) -> Iterable[Metric]:
    failed = CounterMetricFamily(
        "apivigil_notifications_failed",
        "Notifications that failed for good (kept in the outbox)",
        labels=["receiver"],
    )
    for receiver, count in sorted(state.notifications_failed.items()):
        failed.add_metric([receiver], count)
    yield failed
    pending = GaugeMetricFamily(
        "apivigil_notifications_pending",
        "Notifications waiting in the outbox for (re)delivery",
        labels=["receiver"],
    )
    for receiver, count in sorted(state.notifications_pending.items()):
        pending.add_metric([receiver], count)
    yield pending


def _rollup_metrics(state: MetricsState) -> Iterable[Metric]:
    score = GaugeMetricFamily(
        "apivigil_posture_score",
        "0-100: 100 minus a weight per open rule at its worst severity",
        labels=["target"],
    )
    for target, value in sorted(posture_scores(state.targets, state.open_rules).items()):
        score.add_metric([target], value)
    yield score
    evaluated = {
        check for (check, _target), status in state.last_status.items() if status is RunStatus.OK
    }
    control = GaugeMetricFamily(
        "apivigil_control_status",
        "1 for the control's current status: failing (an open finding) or passing",
        labels=["framework", "control", "status"],
    )
    for (framework, name), current in sorted(control_statuses(evaluated, state.open_rules).items()):
        for status in ControlStatus:
            control.add_metric([framework, name, status.value], 1 if status is current else 0)
    yield control


def _bound(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"


def build_registry(store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    return registry
