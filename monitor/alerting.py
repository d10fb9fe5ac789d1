"""Alerting in the daemon: build the receivers from the config, then tick the engine and
deliver the outbox in one background thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta

import structlog

from alerts.alertmanager import AlertmanagerNotifier
from alerts.config import AlertsConfig, ReceiverConfig
from alerts.email import EmailNotifier
from alerts.engine import AlertCandidate, GroupState, TickResult, tick
from alerts.grafana_annotations import GrafanaAnnotationNotifier
from alerts.interface import Notifier
from alerts.model import Silence
from alerts.outbox import DeliveryReport, Dispatcher
from alerts.slack import SlackNotifier
from alerts.webhook import WebhookNotifier
from monitor.clock import Clock
from monitor.store.sql import SqlStore

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


def run_tick(store: SqlStore, config: AlertsConfig, clock: Clock) -> TickResult:
    now = clock.now()

    def decide(
        candidates: list[AlertCandidate], states: list[GroupState], silences: list[Silence]
    ) -> TickResult:
        return tick(config, candidates, states, silences, now, repeat_overrides(config))

    return store.alert_tick(decide, config.check_failing_after, now)


class AlertLoop:
    """Every `interval`: one engine tick, then one pass over the due outbox rows."""

    def __init__(
        self,
        store: SqlStore,
        config: AlertsConfig,
        clock: Clock,
        interval: float = 1.0,
        notifiers: Mapping[str, Notifier] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._stepping = threading.Lock()  # one tick at a time, or groups notify twice
        self._thread: threading.Thread | None = None
        self._config = config
        self._dispatcher = self._make_dispatcher(config, notifiers)

    def _make_dispatcher(
        self, config: AlertsConfig, notifiers: Mapping[str, Notifier] | None
    ) -> Dispatcher:
        built = (
            dict(notifiers)
            if notifiers is not None
            else {receiver.name: build_notifier(receiver, config) for receiver in config.receivers}
        )
        return Dispatcher(self._store, built, config.dispatcher, self._clock)

    def reconfigure(self, config: AlertsConfig) -> None:
        """Use new routes and receivers from the next tick on (SIGHUP)."""
        dispatcher = self._make_dispatcher(config, None)
        with self._stepping:  # never close the dispatcher a step is using
            with self._lock:
                old, self._dispatcher, self._config = self._dispatcher, dispatcher, config
            old.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="apivigil-alerts", daemon=True)
        self._thread.start()

    def step(self) -> DeliveryReport:
        """One tick and one delivery pass (what the loop does each interval)."""
        with self._stepping:
            with self._lock:
                config, dispatcher = self._config, self._dispatcher
            if config.routes:
                run_tick(self._store, config, self._clock)
            return dispatcher.deliver_due()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.step()
            except Exception:  # the store may be down for a while: keep trying
                log.exception("alert tick failed")

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
        with self._lock:
            dispatcher = self._dispatcher
        dispatcher.close()

    def _flush(self) -> None:
        try:
            self.step()
        except Exception:
            log.exception("final alert tick and outbox flush failed")
