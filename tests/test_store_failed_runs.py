"""The failing-checks read of every alert tick on SQLite and PostgreSQL: the same answer as
a brute-force walk over every run recorded (run-length ok rows, skipped runs with and
without a reason, pairs with only skipped runs), read by the (check, target, started_at)
index per pair rather than by a scan of check_run's history."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from monitor.model import CheckKind, CheckRun, ErrorReason, RunStatus
from monitor.store import alert_rows
from monitor.store.alert_rows import FailedRuns
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from monitor.store.tables import CheckRunRow
from tests.support.check_runs import a_run as any_run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
CHECKS = (CheckKind.CERT_EXPIRY, CheckKind.TLS_POSTURE)
FAILED = {RunStatus.ERROR, RunStatus.TIMEOUT, RunStatus.SKIPPED}
KNOWN = [f"t{number}" for number in range(8)]
INDEX = "ix_check_run_check_target_started"


def a_run(
    check: CheckKind, target: str, at: datetime, status: RunStatus, reason: bool = True
) -> CheckRun:
    # every ok run has the same (empty) outcome: consecutive ok runs fold
    return any_run(
        target,
        at,
        status,
        check=check,
        reason=ErrorReason.UNREACHABLE if reason else None,
        message=f"{status.value} at {at.isoformat()}",
    )


def generated_runs(seed: int) -> list[CheckRun]:
    """A few hundred runs of 2 checks on 9 targets (one not among the known targets), each
    pair failing more or less often; one pair only ever skipped (stuck from the start)."""
    rng = random.Random(seed)
    runs = []
    for check in CHECKS:
        for target in [*KNOWN, "gone"]:
            failing = rng.choice((0.0, 0.2, 0.6, 0.9, 1.0))
            at = T0 + rng.randrange(60) * timedelta(seconds=1)
            for _ in range(rng.randrange(8, 30)):
                at += STEP
                if rng.random() >= failing:
                    runs.append(a_run(check, target, at, RunStatus.OK))
                    continue
                kind = rng.choice((RunStatus.ERROR, RunStatus.TIMEOUT, RunStatus.SKIPPED))
                runs.append(a_run(check, target, at, kind, reason=rng.random() < 0.7))
    for number in range(4):
        at = T0 + (number + 1) * STEP
        runs.append(a_run(CheckKind.CERT_EXPIRY, "stuck", at, RunStatus.SKIPPED))
    return runs


def brute_force(runs: Sequence[CheckRun], after: int, targets: set[str]) -> set[FailedRuns]:
    """Straight from the definition, over runs rather than rows."""
    result = set()
    for check, target in {(run.check, run.target) for run in runs}:
        counted = sorted(
            (
                run
                for run in runs
                if (run.check, run.target) == (check, target)
                and (run.status is not RunStatus.SKIPPED or run.error_reason is not None)
            ),
            key=lambda run: run.started_at,
        )[-after:]
        if target in targets and len(counted) == after and all(r.status in FAILED for r in counted):
            last_error = counted[-1].error_message
            result.add(FailedRuns(check.value, target, after, counted[0].started_at, last_error))
    return result


def recorded(store: SqlStore, runs: Sequence[CheckRun]) -> None:
    for run in runs:
        store.record(run, HysteresisPolicy())


@pytest.mark.parametrize("seed", [1, 2])
def test_failing_checks_equal_a_brute_force_walk_over_every_run(store: SqlStore, seed: int) -> None:
    runs = generated_runs(seed)
    recorded(store, runs)
    targets = {*KNOWN, "stuck"}
    with Session(store.engine) as session:
        folded = session.execute(sa.select(sa.func.max(CheckRunRow.run_count))).scalar_one()
        assert folded > 1  # run-length ok rows are among those read
        for after in (1, 2, 3, 5):
            found = alert_rows.failed_runs(session, after, targets)
            assert len(found) == len(set(found))
            assert set(found) == brute_force(runs, after, targets)
            assert found  # something fails at every threshold in these runs


def test_a_pair_with_only_skipped_runs_is_failing(store: SqlStore) -> None:
    recorded(
        store,
        [a_run(CheckKind.CERT_EXPIRY, "stuck", T0 + n * STEP, RunStatus.SKIPPED) for n in range(3)],
    )
    with Session(store.engine) as session:
        (failed,) = alert_rows.failed_runs(session, 3, {"stuck"})
    assert (failed.check, failed.target, failed.first_started_at) == ("cert_expiry", "stuck", T0)


def query_plan(session: Session, after: int) -> str:
    statement = alert_rows.newest_counted_rows(session, after)
    connection = session.connection()
    sql = str(statement.compile(connection, compile_kwargs={"literal_binds": True}))
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()
        return "\n".join(str(row[-1]) for row in rows)
    connection.exec_driver_sql("ANALYZE check_run")
    return "\n".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {sql}").all())


def test_failing_checks_read_check_run_by_index_per_pair_not_by_a_scan(store: SqlStore) -> None:
    recorded(store, generated_runs(3))
    with Session(store.engine) as session:
        plan = query_plan(session, 3)
    assert INDEX in plan
    if store.engine.dialect.name == "sqlite":
        assert "SCAN run" not in plan
        assert "SCAN cutoff" not in plan
        assert f"SEARCH cutoff USING INDEX {INDEX} (check=? AND target=?)" in plan
        assert f"SEARCH run USING INDEX {INDEX} (check=? AND target=? AND started_at>?)" in plan
    else:
        assert "Seq Scan on check_run" not in plan
        # an index condition on the pair: a probe per pair, not a walk of the whole index
        assert f"Index Scan Backward using {INDEX} on check_run" in plan
        assert 'Index Cond: ((("check")::text = ' in plan
