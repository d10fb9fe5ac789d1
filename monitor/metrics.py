"""Prometheus metrics computed from the store at scrape time, on apivigil's own registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import structlog
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from monitor import __version__
from monitor.alerting_health import AlertingHealth
from monitor.metric_names import (
    ALERTING_LAST_TICK,
    ALERTING_ROUTES,
    ALERTING_SKIPPED,
    ALERTING_TICK_FAILURES,
    BUILD_INFO,
    CHECK_DURATION,
    CHECK_INTERVAL,
    CHECK_LAST_RUN,
    CHECK_RUNS,
    CHECK_UP,
    CONTROL_STATUS,
    FINDINGS_OPEN,
    NOTIFICATIONS_DELIVERED,
    NOTIFICATIONS_FAILED,
    NOTIFICATIONS_PENDING,
    OBSERVATION_PREFIX,
    POSTURE_SCORE,
    RETENTION_PRUNED,
    STORE_BYTES,
    STORE_ROWS,
    STORE_UP,
    TARGET_INFO,
    MetricFamily,
)
from monitor.model import RunStatus, Severity
from monitor.posture import ControlStatus, control_statuses, posture_scores
from monitor.store.counters import DURATION_BUCKETS as STORED_BUCKETS
from monitor.store.interface import MetricsState, Store, StoreError

log = structlog.get_logger("apivigil.metrics")

# (check, target) -> configured interval in seconds, read at scrape time (a reload changes it)
Schedule = Callable[[], Mapping[tuple[str, str], float]]

DURATION_BUCKETS: Sequence[float] = STORED_BUCKETS  # what the store counts runs into


class StoreCollector(Collector):
    """Reads current state from the store on every scrape, so a restart loses nothing."""

    def __init__(self, store: Store, schedule: Schedule | None = None) -> None:
        self._store = store
        self._schedule = schedule or dict

    def collect(self) -> Iterable[Metric]:
        build = GaugeMetricFamily(BUILD_INFO.name, BUILD_INFO.help, labels=_labels(BUILD_INFO))
        build.add_metric([__version__], 1)
        yield build
        store_up = GaugeMetricFamily(STORE_UP.name, STORE_UP.help)
        try:
            state = self._store.metrics_state(DURATION_BUCKETS)
        except StoreError as error:
            log.warning("metrics could not read the store", error=str(error))
            store_up.add_metric([], 0)
            yield store_up
            return
        store_up.add_metric([], 1)
        yield store_up
        yield _target_info(state)
        yield _intervals(self._schedule(), state)
        yield from _run_metrics(state)
        yield from _finding_metrics(state)
        yield from _observation_metrics(state)
        yield from _notification_metrics(state)
        yield from _rollup_metrics(state)
        yield from _store_metrics(state)


def _run_metrics(state: MetricsState) -> Iterable[Metric]:
    runs = CounterMetricFamily(CHECK_RUNS.name, CHECK_RUNS.help, labels=_labels(CHECK_RUNS))
    for (check, target, status), count in sorted(state.run_counts.items()):
        runs.add_metric([check.value, target, status.value], count)
    yield runs
    last = GaugeMetricFamily(
        CHECK_LAST_RUN.name, CHECK_LAST_RUN.help, labels=_labels(CHECK_LAST_RUN)
    )
    for (check, target, status), finished in sorted(state.last_run_at.items()):
        last.add_metric([check.value, target, status.value], finished.timestamp())
    yield last
    up = GaugeMetricFamily(CHECK_UP.name, CHECK_UP.help, labels=_labels(CHECK_UP))
    for (check, target), status in sorted(state.last_status.items()):
        up.add_metric([check.value, target], 1 if status is RunStatus.OK else 0)
    yield up
    duration = HistogramMetricFamily(
        CHECK_DURATION.name, CHECK_DURATION.help, labels=_labels(CHECK_DURATION)
    )
    for check, histogram in sorted(state.durations.items()):
        buckets = [(_bound(bound), count) for bound, count in histogram.buckets]
        buckets.append(("+Inf", histogram.count))
        duration.add_metric([check.value], buckets, histogram.total_seconds)
    yield duration


def _finding_metrics(state: MetricsState) -> Iterable[Metric]:
    family = GaugeMetricFamily(
        FINDINGS_OPEN.name, FINDINGS_OPEN.help, labels=_labels(FINDINGS_OPEN)
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
            f"{OBSERVATION_PREFIX}{name}",
            f"Observation {name} from the latest evaluated run",
            labels=["target", *label_names],
        )
        for target, labels, value in samples:
            family.add_metric([target, *(labels.get(key, "") for key in label_names)], value)
        yield family


def _notification_metrics(state: MetricsState) -> Iterable[Metric]:
    # every receiver the outbox knows gets all three series, zeros included
    receivers = sorted(
        {*state.notifications_failed, *state.notifications_pending, *state.notifications_delivered}
    )
    for family, counts in (
        (NOTIFICATIONS_DELIVERED, state.notifications_delivered),
        (NOTIFICATIONS_FAILED, state.notifications_failed),
    ):
        counter = CounterMetricFamily(family.name, family.help, labels=_labels(family))
        for receiver in receivers:
            counter.add_metric([receiver], counts.get(receiver, 0))
        yield counter
    pending = GaugeMetricFamily(
        NOTIFICATIONS_PENDING.name,
        NOTIFICATIONS_PENDING.help,
        labels=_labels(NOTIFICATIONS_PENDING),
    )
    for receiver in receivers:
        pending.add_metric([receiver], state.notifications_pending.get(receiver, 0))
    yield pending


def _store_metrics(state: MetricsState) -> Iterable[Metric]:
    rows = GaugeMetricFamily(STORE_ROWS.name, STORE_ROWS.help, labels=_labels(STORE_ROWS))
    for table, count in sorted(state.store_rows.items()):
        rows.add_metric([table], count)
    yield rows
    size = GaugeMetricFamily(STORE_BYTES.name, STORE_BYTES.help)
    if state.store_bytes is not None:
        size.add_metric([], state.store_bytes)
    yield size
    pruned = CounterMetricFamily(
        RETENTION_PRUNED.name, RETENTION_PRUNED.help, labels=_labels(RETENTION_PRUNED)
    )
    # every measured table has its counter from the start (0 until a pass prunes there), so
    # increase() sees the first rows pruned and a panel has a series to show
    for table in sorted(state.store_rows.keys() | state.pruned_rows.keys()):
        pruned.add_metric([table], state.pruned_rows.get(table, 0))
    yield pruned


def _intervals(schedule: Mapping[tuple[str, str], float], state: MetricsState) -> Metric:
    family = GaugeMetricFamily(CHECK_INTERVAL.name, CHECK_INTERVAL.help, labels=["check", "target"])
    for (check, target), seconds in sorted(schedule.items()):
        if target in state.targets:
            family.add_metric([check, target], seconds)
    return family


def _target_info(state: MetricsState) -> Metric:
    """1 per active target with its configured labels, for dashboards' env/team filters."""
    names = sorted({key for labels in state.targets.values() for key in labels})
    info = GaugeMetricFamily(TARGET_INFO.name, TARGET_INFO.help, labels=["target", *names])
    for target, labels in sorted(state.targets.items()):
        info.add_metric([target, *(labels.get(name, "") for name in names)], 1)
    return info


def _rollup_metrics(state: MetricsState) -> Iterable[Metric]:
    score = GaugeMetricFamily(POSTURE_SCORE.name, POSTURE_SCORE.help, labels=_labels(POSTURE_SCORE))
    for target, value in sorted(posture_scores(state.targets, state.open_rules).items()):
        score.add_metric([target], value)
    yield score
    evaluated = {
        check for (check, _target), status in state.last_status.items() if status is RunStatus.OK
    }
    control = GaugeMetricFamily(
        CONTROL_STATUS.name, CONTROL_STATUS.help, labels=_labels(CONTROL_STATUS)
    )
    for (framework, name), current in sorted(control_statuses(evaluated, state.open_rules).items()):
        for status in ControlStatus:
            control.add_metric([framework, name, status.value], 1 if status is current else 0)
    yield control


class AlertingCollector(Collector):
    """This process's alerting health, from memory: it reports while the store is down."""

    def __init__(self, health: AlertingHealth) -> None:
        self._health = health

    def collect(self) -> Iterable[Metric]:
        state = self._health.snapshot()
        failures = CounterMetricFamily(ALERTING_TICK_FAILURES.name, ALERTING_TICK_FAILURES.help)
        failures.add_metric([], state.tick_failures)
        yield failures
        last = GaugeMetricFamily(ALERTING_LAST_TICK.name, ALERTING_LAST_TICK.help)
        if state.last_tick_at is not None:
            last.add_metric([], state.last_tick_at.timestamp())
        yield last
        if state.configured_routes is not None:
            routes = GaugeMetricFamily(ALERTING_ROUTES.name, ALERTING_ROUTES.help)
            routes.add_metric([], state.configured_routes)
            yield routes
        skipped = CounterMetricFamily(
            ALERTING_SKIPPED.name, ALERTING_SKIPPED.help, labels=_labels(ALERTING_SKIPPED)
        )
        for kind, count in sorted(state.skipped.items()):
            skipped.add_metric([kind.value], count)
        yield skipped


def _labels(family: MetricFamily) -> list[str]:
    return list(family.labels)


def _bound(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"


def build_registry(
    store: Store, schedule: Schedule | None = None, alerting: AlertingHealth | None = None
) -> CollectorRegistry:
    """Metrics of `store`; `schedule` gives the configured interval of each (check, target);
    `alerting` is the health of this process's alert loop (a process without one has none)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, schedule))
    if alerting is not None:
        registry.register(AlertingCollector(alerting))
    return registry
