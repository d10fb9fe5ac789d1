"""Slots are the same in every process, and a new leader catches up on what it missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.cluster.slots import SlotGrid, catch_up, next_slots, slot_key
from monitor.jobs import ScheduledCheck
from monitor.model import CheckKind, Target
from monitor.runner import CheckJob
from tests.support.checks_for_tests import Behaviour

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 15, 12, 0, 0, 123000, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(minutes=5)
SPREAD = timedelta(minutes=2)


def planned(name: str, interval: timedelta = MINUTE) -> ScheduledCheck:
    job = CheckJob(CheckKind.CERT_EXPIRY, Target(name), Behaviour(), timedelta(seconds=10))
    return ScheduledCheck(job=job, interval=interval, jitter=timedelta(0))


def grid(name: str, interval: timedelta = MINUTE) -> SlotGrid:
    return SlotGrid.of(CheckKind.CERT_EXPIRY, name, interval)


def test_two_processes_compute_the_same_slot_and_key_for_any_moment_inside_it() -> None:
    slot = grid("api").at_or_before(NOW)
    later = slot + timedelta(seconds=59, milliseconds=999)
    assert SlotGrid.of(CheckKind.CERT_EXPIRY, "api", MINUTE).at_or_before(later) == slot
    assert slot <= NOW < slot + MINUTE
    assert slot_key(CheckKind.CERT_EXPIRY, "api", slot) == (
        f"cert_expiry:api:{slot.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"
    )


def test_targets_get_different_offsets_so_their_slots_spread_over_the_interval() -> None:
    offsets = {grid(f"t{i}").offset_ms for i in range(50)}
    assert len(offsets) > 45
    assert all(0 <= offset < 60_000 for offset in offsets)


def test_the_next_slot_is_one_interval_after_the_current_one() -> None:
    g = grid("api")
    assert g.after(NOW) == g.at_or_before(NOW) + MINUTE
    assert g.after(g.at_or_before(NOW)) == g.at_or_before(NOW) + MINUTE


def test_a_new_leader_enqueues_every_slot_missed_since_the_last_recorded_one() -> None:
    g = grid("api")
    last = g.at_or_before(NOW) - 3 * MINUTE
    due = catch_up([planned("api")], {(CheckKind.CERT_EXPIRY, "api"): last}, NOW, GRACE, SPREAD)
    assert [d.at for d in due] == [last + MINUTE, last + 2 * MINUTE, last + 3 * MINUTE]
    assert all(d.delay == timedelta(0) for d in due)


def test_nothing_is_enqueued_when_the_last_slot_is_the_current_one() -> None:
    last = grid("api").at_or_before(NOW)
    assert (
        catch_up([planned("api")], {(CheckKind.CERT_EXPIRY, "api"): last}, NOW, GRACE, SPREAD) == []
    )


def test_slots_missed_longer_ago_than_the_grace_coalesce_into_the_newest_one() -> None:
    g = grid("api")
    last = g.at_or_before(NOW) - timedelta(days=3)
    due = catch_up([planned("api")], {(CheckKind.CERT_EXPIRY, "api"): last}, NOW, GRACE, SPREAD)
    assert [d.at for d in due] == [g.at_or_before(NOW)]


def test_an_outage_longer_than_the_grace_runs_each_check_once_not_every_missed_slot() -> None:
    g = grid("api")
    last = g.at_or_before(NOW) - timedelta(minutes=6)
    due = catch_up([planned("api")], {(CheckKind.CERT_EXPIRY, "api"): last}, NOW, GRACE, SPREAD)
    assert [d.at for d in due] == [g.at_or_before(NOW)]


def test_checks_that_never_ran_get_their_current_slot_spread_over_the_window() -> None:
    checks = [planned(f"t{i}") for i in range(4)]
    due = catch_up(checks, {}, NOW, GRACE, SPREAD)
    assert [d.at for d in due] == [grid(f"t{i}").at_or_before(NOW) for i in range(4)]
    assert [d.delay for d in due] == [timedelta(seconds=15 * i) for i in range(4)]  # <= interval


def test_the_scheduler_first_fires_each_job_at_its_next_slot() -> None:
    starts = next_slots([planned("api"), planned("b")], {}, NOW, SPREAD)
    assert starts == {
        "cert_expiry:api": grid("api").after(NOW),
        "cert_expiry:b": grid("b").after(NOW),
    }
