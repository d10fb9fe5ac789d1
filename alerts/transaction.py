"""One engine tick as one store transaction: read what fires and what each group last said,
decide (alerts.engine, pure), write the new group states and outbox rows, commit. The
alerting side opens the transaction; the store only keeps the records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from alerts.check_failing import check_failing_candidate
from alerts.config import AlertsConfig
from alerts.engine import tick
from alerts.interface import AlertStore
from alerts.model import TickResult


def run_tick(
    store: AlertStore,
    config: AlertsConfig,
    now: datetime,
    repeat_overrides: Mapping[str, timedelta] | None = None,
) -> TickResult:
    """Tick the engine once at `now`; returns what it decided (already written)."""
    with store.tick_transaction() as records:
        candidates = records.finding_candidates()
        candidates.extend(
            check_failing_candidate(failing)
            for failing in records.failing_checks(config.check_failing_after)
        )
        result = tick(
            config,
            candidates,
            records.group_states(),
            records.silences_for_tick(now),
            now,
            repeat_overrides,
        )
        records.write_tick(result, now)
    return result
