"""An `apivigil run` instance in a cluster: campaign for leadership, lead or follow.

Every candidate serves /metrics and the API from the shared store. Only the leader syncs
targets, schedules and enqueues; the daemon hears about leadership changes (to tick the
alert engine on the leader only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import psycopg
import structlog

from monitor.clock import Clock
from monitor.cluster.broker import CheckQueue
from monitor.cluster.election import LeaderElection, connection_params, default_lock_id
from monitor.cluster.leader import LeaderSchedule
from monitor.cluster.role import Role
from monitor.settings import Settings
from monitor.store.interface import Store

log = structlog.get_logger("apivigil.cluster")


class ClusterCoordinator:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        on_leadership: Callable[[bool], None],
        clock: Clock,
    ) -> None:
        cluster = settings.cluster
        self._settings = settings
        self._store = store
        self._on_leadership = on_leadership
        self._clock = clock
        self._lock = threading.Lock()
        self._schedule: LeaderSchedule | None = None
        self._queue = CheckQueue(cluster)
        params = connection_params(settings.store, cluster.election)
        self._election = LeaderElection(
            connect=lambda: _connect(params),
            lock_id=(
                cluster.election.lock_id
                if cluster.election.lock_id is not None
                else default_lock_id(cluster.namespace)
            ),
            config=cluster.election,
            on_elected=self._elected,
            on_deposed=self._deposed,
            clock=clock,
        )

    def start(self) -> None:
        self._election.start()

    def role(self) -> Role:
        # no lock: probes must answer while a new leader is still catching up
        leading = self._schedule is not None
        return Role.LEADER if leading and self._election.is_leader() else Role.FOLLOWER

    def alive(self) -> bool:
        """The election loop runs and, on the leader, the scheduler loop too."""
        schedule = self._schedule
        return self._election.alive() and (schedule is None or schedule.alive())

    def reload(self, settings: Settings) -> None:
        with self._lock:
            self._settings = settings
            if self._schedule is not None:
                self._sync_targets(settings)
                self._schedule.reconcile(settings)

    def stop(self) -> None:
        """Step down (the scheduler stops first) and leave the election."""
        self._election.stop()
        self._queue.close()

    def _elected(self) -> None:
        with self._lock:
            settings = self._settings
            self._sync_targets(settings)
            schedule = LeaderSchedule(
                settings, self._store, self._queue, self._election.is_leader, self._clock
            )
            schedule.begin()
            self._schedule = schedule
        self._on_leadership(True)

    def _deposed(self) -> None:
        with self._lock:
            schedule, self._schedule = self._schedule, None
            if schedule is not None:
                schedule.end()
        log.info("following")
        self._on_leadership(False)

    def _sync_targets(self, settings: Settings) -> None:
        self._store.sync_targets([t.to_target() for t in settings.targets], self._clock.now())


def _connect(params: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(autocommit=True, **params)
