"""The long-running service: assembly, signals (SIGTERM drains, SIGHUP reloads) and lifecycle."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from alerts.config import AlertsConfig
from monitor.alert_records import AlertRecords
from monitor.alerting import AlertLoop
from monitor.alerting_health import AlertingHealth
from monitor.api import ApiServer, Probes
from monitor.clock import Clock, SystemClock
from monitor.jobs import scheduled_checks
from monitor.model import RunStatus
from monitor.pruner import Pruner
from monitor.recorder import RunRecorder
from monitor.runner import CheckJob, Runner
from monitor.scheduler import CheckScheduler
from monitor.serving import DaemonError, serve_api, serve_until_signalled, settings_for_reload
from monitor.settings import Settings, ignored_keys
from monitor.store.interface import (
    HysteresisPolicy,
    SchemaState,
    Store,
)
from monitor.store.sql import SqlStore

if TYPE_CHECKING:
    from monitor.cluster.coordinator import ClusterCoordinator

log = structlog.get_logger("apivigil.daemon")


def open_service_store(settings: Settings, migrate: bool) -> Store:
    """Open the configured store, refusing an out-of-date schema unless `migrate`."""
    store = SqlStore(settings.store, settings.store_timeouts.limits())
    state = store.schema_state()
    if state is SchemaState.CURRENT:
        return store
    if state is SchemaState.NEWER:
        raise DaemonError(
            f"the store {store.describe()} was migrated by a newer apivigil; upgrade apivigil"
        )
    if not migrate:
        raise DaemonError(
            f"the store {store.describe()} schema is {state.value}: run `apivigil db upgrade` "
            "or start with --migrate"
        )
    log.info("migrating store schema", store=store.describe(), state=state.value)
    store.upgrade_schema()
    return store


class Daemon:
    def __init__(
        self,
        settings: Settings,
        config_path: Path | None,
        migrate: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.config_path = config_path
        self._migrate = migrate
        self._clock = clock or SystemClock()
        self._stop = threading.Event()
        self.store: Store | None = None
        self.runner = Runner(clock=self._clock, egress=settings.egress.policy())
        self.scheduler: CheckScheduler | None = None
        self.api: ApiServer | None = None
        self.alerts: AlertLoop | None = None
        # the routes of the config (not of a follower's delivery-only loop): with routes and no
        # instance ticking, Prometheus's ApivigilAlertingNotTicking fires
        self.alerting_health = AlertingHealth(lambda: len(self.settings.alerts.routes))
        self._active_lock = threading.Lock()
        self.recorder: RunRecorder | None = None
        self._active = 0  # _execute calls under way, recording included
        self.cluster: ClusterCoordinator | None = None
        self._leading = False
        self._alerting_lock = threading.Lock()
        self.pruner: Pruner | None = None

    def _policy(self) -> HysteresisPolicy:
        return HysteresisPolicy(
            open_after=self.settings.hysteresis.open_after,
            resolve_after=self.settings.hysteresis.resolve_after,
        )

    def start(self) -> None:
        settings = self.settings
        _warn_about_ignored_keys(settings)
        store = open_service_store(settings, self._migrate)
        self.store = store
        self.runner = Runner(clock=self._clock, history=store, egress=settings.egress.policy())
        if settings.cluster.enabled:
            self._start_clustered(store)
            return
        store.sync_targets([t.to_target() for t in settings.targets], self._clock.now())
        # a single instance: nobody else holds claims
        released = AlertRecords(store).outbox_release_claims()
        if released:
            log.info("notifications claimed before a crash are sent again", count=released)
        self.scheduler = CheckScheduler(
            self._execute,
            workers=settings.scheduler.workers,
            misfire_grace=settings.scheduler.misfire_grace,
            initial_spread=settings.scheduler.initial_spread,
            clock=self._clock,
            overdue_after=settings.health.scheduler_overdue_after,
        )
        self.recorder = RunRecorder(
            store, self._policy, self._clock, settings.health.recorder_stalled_after.total_seconds()
        )
        self.recorder.start()
        self._serve_api(
            store,
            Probes(
                scheduler_alive=self.scheduler.alive,
                store=lambda: store,
                stalls=self._stalls,
            ),
        )
        self.scheduler.start(scheduled_checks(settings), store.last_run_started())
        self.alerts = AlertLoop(store, settings.alerts, self._clock, health=self.alerting_health)
        self.alerts.start()
        self._start_pruner(store)
        self._log_started(store)

    def _start_clustered(self, store: Store) -> None:
        """Campaign for leadership: the leader schedules and enqueues, workers run checks;
        every candidate serves the API and delivers the outbox."""
        from monitor.cluster.coordinator import ClusterCoordinator  # noqa: PLC0415 (Dramatiq)

        self.cluster = ClusterCoordinator(
            self.settings, store, self._leadership_changed, self._clock
        )
        cluster = self.cluster
        self._serve_api(
            store, Probes(scheduler_alive=cluster.alive, store=lambda: store, role=cluster.role)
        )
        self.alerts = AlertLoop(
            store, _delivery_only(self.settings.alerts), self._clock, health=self.alerting_health
        )
        self.alerts.start()
        cluster.start()
        self._start_pruner(store, leading=lambda: self._leading)
        self._log_started(store)

    def _start_pruner(self, store: Store, leading: Callable[[], bool] = lambda: True) -> None:
        self.pruner = Pruner(store, lambda: self.settings.retention, self._clock, leading)
        self.pruner.start()

    def _leadership_changed(self, leading: bool) -> None:
        with self._alerting_lock:
            self._leading = leading
            self._apply_alerting()

    def _apply_alerting(self) -> None:
        """Only the leader ticks the alert engine; any instance delivers the outbox. Called
        under `_alerting_lock`, so a reload and a leadership change cannot interleave and
        leave a leader delivery-only (or a follower ticking): the later one sees both."""
        if self.alerts is not None:
            alerts = self.settings.alerts
            self.alerts.reconfigure(alerts if self._leading else _delivery_only(alerts))

    def _schedule(self) -> dict[tuple[str, str], float]:
        return {
            (planned.job.check.value, planned.job.target.name): planned.interval.total_seconds()
            for planned in scheduled_checks(self.settings)
        }

    def _serve_api(self, store: Store, probes: Probes) -> None:
        settings = self.settings
        self.api = serve_api(
            settings,
            store,
            probes,
            address=(settings.listen_host, settings.listen_port),
            clock=self._clock,
            schedule=self._schedule,
            alerting=self.alerting_health,
        )

    def _log_started(self, store: Store) -> None:
        log.info(
            "apivigil started",
            listen=self.settings.listen,
            store=store.describe(),
            targets=len(self.settings.targets),
            config=str(self.config_path) if self.config_path else None,
            cluster=self.settings.cluster.enabled,
        )

    def _stalls(self) -> list[str]:
        """Why this process is stuck (for /healthz): the recorder or the scheduler."""
        assert self.recorder is not None
        assert self.scheduler is not None
        stalled = [self.recorder.stalled(), self.scheduler.stalled()]
        return [reason for reason in stalled if reason is not None]

    def active_runs(self) -> int:
        with self._active_lock:
            return self._active

    def _execute(self, job: CheckJob) -> None:
        with self._active_lock:
            self._active += 1
        try:
            self._run_and_record(job)
        finally:
            with self._active_lock:
                self._active -= 1

    def _run_and_record(self, job: CheckJob) -> None:
        run = self.runner.run(job)
        if run.status is RunStatus.SKIPPED and self._stop.is_set():
            log.info("run abandoned at shutdown", check=str(run.check), target=run.target)
            return
        assert self.recorder is not None
        self.recorder.submit(run)

    def reload(self) -> bool:
        """Re-read the config file; keep the running config when the new one is invalid."""
        new = settings_for_reload(self.config_path, log)
        if new is None:
            return False
        _warn_about_ignored_keys(new)  # as at start: a reload may add a deprecated key
        for field in ("store", "listen", "cluster"):
            if getattr(new, field) != getattr(self.settings, field):
                log.warning("changing this needs a restart; keeping the running value", key=field)
        new = new.model_copy(
            update={
                "store": self.settings.store,
                "listen": self.settings.listen,
                "cluster": self.settings.cluster,
            }
        )
        self.settings = new
        self.runner.replace_egress(new.egress.policy())
        assert self.store is not None
        if self.cluster is not None:
            self.cluster.reload(new)  # the leader syncs targets and reschedules
            with self._alerting_lock:
                self._apply_alerting()
            log.info("config reloaded", targets=len(new.targets))
            return True
        assert self.scheduler is not None
        self.store.sync_targets([t.to_target() for t in new.targets], self._clock.now())
        self.scheduler.reconcile(scheduled_checks(new), self.store.last_run_started())
        if self.alerts is not None:
            self.alerts.reconfigure(new.alerts)
        log.info("config reloaded", targets=len(new.targets))
        return True

    def stop(self) -> None:
        """Stop scheduling, give running checks the grace period, then close everything."""
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.cluster is not None:
            self.cluster.stop()  # steps down first: a follower takes over at once
        grace = self.settings.shutdown_grace.total_seconds()
        deadline = time.monotonic() + grace
        while self.active_runs() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.active_runs():
            log.warning(
                "abandoning checks still running after the grace period",
                running=self.active_runs(),
                grace_seconds=grace,
            )
            self.runner.abandon_running()
            settle = time.monotonic() + 2.0  # abandoned runs return within one poll interval
            while self.active_runs() and time.monotonic() < settle:
                time.sleep(0.05)
        if self.recorder is not None:
            self.recorder.stop()
            lost = self.recorder.flush()
            if lost:
                log.error("runs held during a store outage are lost at shutdown", lost=lost)
        if self.pruner is not None:
            self.pruner.stop()
        if self.alerts is not None:
            # one last tick and delivery pass: findings of the drained runs are announced
            self.alerts.stop(flush_within=max(1.0, deadline - time.monotonic()))
        if self.api is not None:
            self.api.stop()
        if self.store is not None:
            self.store.close()
        log.info("apivigil stopped")

    def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT; SIGHUP reloads. Must be called from the main thread."""
        serve_until_signalled(self.start, self.stop, self.reload, self._stop)


def _warn_about_ignored_keys(settings: Settings) -> None:
    """Keys the config sets that are accepted but ignored (a route's old hysteresis)."""
    for ignored in ignored_keys(settings):
        log.warning("config key ignored", key=ignored.location, reason=ignored.message)


def _delivery_only(alerts: AlertsConfig) -> AlertsConfig:
    """Alerting for a non-leader: no routes (no engine ticks), the outbox still delivered."""
    return alerts.model_copy(update={"routes": ()})


def exit_leaving_library_threads() -> None:
    """After a drained stop, exit now even if non-daemon library threads still run.

    sslyze scans in worker threads of its own that the interpreter would wait for at exit,
    however long their network timeouts; the grace period has already been given.
    """
    lingering = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]
    if lingering:
        log.info("exiting without waiting for library threads", threads=len(lingering))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
