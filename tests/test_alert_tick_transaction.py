"""One engine tick is one store transaction, opened by alerting (`alerts.transaction.run_tick`
over `monitor.alert_records.AlertRecords`): a tick that dies before its commit leaves no group
state and no outbox row behind, so the next tick decides (and sends) again; on PostgreSQL the
tick lock is held from the first read to the commit, so two instances never tick at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from alerts.interface import TickRecords
from alerts.model import NotificationKind, TickResult
from alerts.transaction import run_tick
from monitor.alert_records import AlertRecords
from monitor.alerting import repeat_overrides
from monitor.model import Target
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock
from tests.support.outbox_records import CONFIG, T0, record, tls10

pytestmark = pytest.mark.integration


class DiesBeforeCommit(AlertRecords):
    """AlertRecords whose tick fails after the engine wrote everything, before the commit."""

    @contextmanager
    def tick_transaction(self) -> Iterator[TickRecords]:
        with super().tick_transaction() as records:
            yield records
            raise RuntimeError("the process dies between the writes and the commit")


def written(store: SqlStore) -> tuple[int, int]:
    """(alert groups, outbox rows) in the store."""
    with store.engine.connect() as connection:
        groups = connection.execute(sa.text("SELECT count(*) FROM alert_group")).scalar_one()
        rows = connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()
    return int(groups), int(rows)


def test_a_tick_that_fails_before_its_commit_writes_nothing_and_the_next_one_sends(
    store: SqlStore,
) -> None:
    clock = ManualClock(T0)
    store.sync_targets([Target("payments")], T0)
    record(store, clock, "payments", tls10())
    overrides = repeat_overrides(CONFIG)

    with pytest.raises(RuntimeError, match="between the writes and the commit"):
        run_tick(DiesBeforeCommit(store), CONFIG, clock.now(), overrides)

    assert written(store) == (0, 0)
    again = run_tick(AlertRecords(store), CONFIG, clock.now(), overrides)
    assert [n.kind for n in again.notifications] == [NotificationKind.FIRING]
    assert written(store) == (1, 1)


@pytest.mark.postgres
def test_the_tick_lock_is_held_from_the_first_read_to_the_commit(postgres_url: str) -> None:
    store = SqlStore(postgres_url)
    store.upgrade_schema()
    other = sa.create_engine(postgres_url)

    def lock_is_free() -> bool:
        """Whether another instance could take the tick lock now (released at once)."""
        with other.connect() as connection:
            return bool(
                connection.execute(
                    sa.text("SELECT pg_try_advisory_xact_lock(hashtext('apivigil:tick'))")
                ).scalar_one()
            )

    try:
        assert lock_is_free()
        held: list[bool] = []
        with AlertRecords(store).tick_transaction() as records:
            held.append(not lock_is_free())
            records.finding_candidates()
            records.failing_checks(3)
            records.group_states()
            records.silences_for_tick(T0)
            held.append(not lock_is_free())
            records.write_tick(TickResult((), (), (), ()), T0)
            held.append(not lock_is_free())
        assert held == [True, True, True]
        assert lock_is_free()
    finally:
        other.dispose()
        store.close()
