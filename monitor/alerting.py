"""Alerting in the daemon: build the receivers from the config, then tick the engine and
hand due outbox rows to the dispatcher's receiver lanes in one background thread. The thread
never waits for a delivery, so a slow receiver cannot hold up the ticks."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta

import structlog

from alerts.alertmanager import AlertmanagerNotifier
from alerts.config import AlertsConfig, ReceiverConfig
from alerts.email import EmailNotifier
from alerts.grafana_annotations import GrafanaAnnotationNotifier
from alerts.interface import Notifier
from alerts.model import Skipped, TickResult
from alerts.outbox import DeliveryReport, Dispatcher
from alerts.slack import SlackNotifier
from alerts.transaction import run_tick as run_engine_tick
from alerts.webhook import WebhookNotifier
from monitor.alert_records import AlertRecords
from monitor.alerting_health import AlertingHealth
from monitor.clock import Clock
from monitor.store.interface import Store

log = structlog.get_logger("apivigil.alerts")


def build_notifier(receiver: ReceiverConfig, config: AlertsConfig) -> Notifier:
    """The Notifier for one configured receiver."""
    if receiver.slack is not None:
        return SlackNotifier(receiver.name, receiver.slack, config.templates_dir)
    if receiver.email is not None:
        return EmailNotifier(receiver.name, receiver.email, config.templates_dir)
    if receiver.webhook is not None:
        return WebhookNotifier(receiver.name, receiver.webhook)
    if receiver.alertmanager is not None:
        return AlertmanagerNotifier(receiver.name, receiver.alertmanager)
    assert receiver.grafana is not None
    return GrafanaAnnotationNotifier(receiver.name, receiver.grafana)


def repeat_overrides(config: AlertsConfig) -> dict[str, timedelta]:
    """Alertmanager receivers are re-sent while firing, or Alertmanager resolves them."""
    return {
        receiver.name: receiver.alertmanager.resend_interval
        for receiver in config.receivers
        if receiver.alertmanager is not None
    }


def run_tick(store: Store, config: AlertsConfig, clock: Clock) -> TickResult:
    """One engine tick on `store`, in one transaction."""
    return run_engine_tick(AlertRecords(store), config, clock.now(), repeat_overrides(config))


class AlertLoop:
    """Every `interval`: one engine tick, then due outbox rows to the receivers' lanes."""

    def __init__(
        self,
        store: Store,
        config: AlertsConfig,
        clock: Clock,
        interval: float = 1.0,
        notifiers: Mapping[str, Notifier] | None = None,
        health: AlertingHealth | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stepping = threading.Lock()  # one tick at a time, or groups notify twice
        self._thread: threading.Thread | None = None
        self._config = config
        self.health = health or AlertingHealth()
        self._reported: set[Skipped] = set()  # logged once per process, counted every time
        self._dispatcher = self._make_dispatcher(config, notifiers)
        self.health.set_ticking(bool(config.routes), clock.now())

    def _make_dispatcher(
        self, config: AlertsConfig, notifiers: Mapping[str, Notifier] | None
    ) -> Dispatcher:
        built = (
            dict(notifiers)
            if notifiers is not None
            else {receiver.name: build_notifier(receiver, config) for receiver in config.receivers}
        )
        return Dispatcher(
            AlertRecords(self._store), built, config.dispatcher, self._clock, self._skipped
        )

    def reconfigure(self, config: AlertsConfig) -> None:
        """Use new routes and receivers from the next tick on (SIGHUP, leadership)."""
        dispatcher = self._make_dispatcher(config, None)
        with self._stepping:  # never replace the dispatcher a step is using
            with self._lock:
                old, self._dispatcher, self._config = self._dispatcher, dispatcher, config
            self.health.set_ticking(bool(config.routes), self._clock.now())
        # the old one finishes the rows under way (each bounded by its receiver's timeout)
        threading.Thread(target=old.close, name="apivigil-alerts-retire", daemon=True).start()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="apivigil-alerts", daemon=True)
        self._thread.start()

    def step(self) -> DeliveryReport:
        """One tick and one delivery pass, waiting for the deliveries (the final flush)."""
        with self._stepping:
            self._tick()
            return self._current()[1].deliver_due()

    def _current(self) -> tuple[AlertsConfig, Dispatcher]:
        with self._lock:
            return self._config, self._dispatcher

    def _tick(self) -> None:
        """One engine tick, counted; raises what the tick raised. Call under `_stepping`."""
        config = self._current()[0]
        if not config.routes:
            return
        try:
            result = run_tick(self._store, config, self._clock)
        except Exception:
            self.health.tick_failed()
            raise
        self.health.tick_succeeded(self._clock.now())
        for skipped in result.skipped:
            self._skipped(skipped)

    def _skipped(self, skipped: Skipped) -> None:
        """One bad input left out: counted each time, logged once per process."""
        self.health.skipped(skipped.kind)
        with self._lock:
            new = skipped not in self._reported
            if new and len(self._reported) < 10_000:
                self._reported.add(skipped)
        if new:
            log.error(
                "alerting skipped a bad input; the other alerts still flow",
                kind=skipped.kind.value,
                name=skipped.name,
                reason=skipped.reason,
            )

    def _beat(self) -> None:
        """What the loop does each interval: tick, then start deliveries without waiting."""
        with self._stepping:
            try:
                self._tick()
            except Exception:  # the store may be down for a while: keep trying
                log.exception("alert tick failed")
            try:
                self._current()[1].start_due()
            except Exception:
                log.exception("alert delivery could not start")

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()

    def stop(self, flush_within: float) -> None:
        """Stop ticking; deliver what is due once more if time allows (nothing is lost:
        undelivered rows stay in the outbox for the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(flush_within, 0.1))
        if flush_within > 0:
            flush = threading.Thread(target=self._flush, daemon=True)
            flush.start()
            flush.join(timeout=flush_within)
        self._current()[1].close()

    def _flush(self) -> None:
        try:
            self.step()
        except Exception:
            log.exception("final alert tick and outbox flush failed")
