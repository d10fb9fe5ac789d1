"""SqlStore: the Store protocol on SQLModel/SQLAlchemy, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlmodel import Session, SQLModel, col, func, select

from monitor.model import (
    Baseline,
    CheckKind,
    CheckRun,
    RunStatus,
    Severity,
    StoredFinding,
    Target,
    Transition,
)
from monitor.store import baseline_rows, counters, report_queries, retention, run_length, schema
from monitor.store.engine import DEFAULT_LIMITS, create_engine_for
from monitor.store.interface import (
    ApprovalResult,
    AuditEntry,
    BaselineApproval,
    FindingQuery,
    HysteresisPolicy,
    MetricsState,
    ReportQuery,
    ReportRows,
    RunSlot,
    RunSummary,
    SchemaState,
    StoreError,
    StoreUnavailable,
)
from monitor.store.lifecycle import apply_findings, log_transitions
from monitor.store.limits import ConnectionLimits
from monitor.store.retention import PruneResult, RetentionPolicy
from monitor.store.rows import audit_entry_from_row, finding_from_row, run_summary_from_row
from monitor.store.sql_alerting import SqlAlertingMixin
from monitor.store.sql_metrics import as_utc, known_kind, read_metrics_state
from monitor.store.tables import (
    ActionClaimRow,
    AuditLogRow,
    CheckRunRow,
    FindingRow,
    SnapshotRow,
    TargetRow,
)

VACUUM_PAGES = 4096  # per retention pass: 16 MiB of 4 KiB pages
SNAPSHOT_SEEN_STEP = timedelta(days=1)  # a snapshot seen again moves its taken_at at most daily


class SqlStore(SqlAlertingMixin):
    def __init__(
        self, url: str, limits: ConnectionLimits = DEFAULT_LIMITS, run_length: bool = True
    ) -> None:
        """`run_length` False writes a row per run (for comparisons; see run_length)."""
        self.url = url
        self.limits = limits
        self.run_length = run_length
        self.engine = create_engine_for(url, limits)

    def describe(self) -> str:
        """The URL with any password hidden, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except sa.exc.TimeoutError as error:  # no pooled connection came free in time
            raise StoreUnavailable(f"store {self.describe()} unavailable: {error}") from error
        except (OperationalError, DBAPIError) as error:
            if isinstance(error, OperationalError) or error.connection_invalidated:
                raise StoreUnavailable(
                    f"store {self.describe()} unavailable: {error.orig}"
                ) from error
            raise StoreError(f"store {self.describe()}: {error.orig}") from error
        except SQLAlchemyError as error:
            raise StoreError(f"store {self.describe()}: {error}") from error

    # schema -------------------------------------------------------------

    def schema_state(self) -> SchemaState:
        try:
            return schema.schema_state(self.engine)
        except OperationalError as error:
            raise StoreUnavailable(f"store {self.describe()} unavailable: {error.orig}") from error

    def upgrade_schema(self) -> None:
        engine = self.engine
        if engine.dialect.name == "postgresql":  # migrations may take long and wait on locks
            engine = create_engine_for(self.url, self.limits.unbounded_statements())
        try:
            schema.upgrade(engine)
        except OperationalError as error:
            raise StoreUnavailable(f"store {self.describe()} unavailable: {error.orig}") from error
        finally:
            if engine is not self.engine:
                engine.dispose()

    def ping(self) -> None:
        with self._session() as session:
            session.exec(select(1)).one()

    def close(self) -> None:
        self.engine.dispose()

    # targets -------------------------------------------------------------

    def sync_targets(self, targets: Sequence[Target], now: datetime) -> None:
        wanted = {target.name: target for target in targets}
        with self._session() as session:
            rows = {row.name: row for row in session.exec(select(TargetRow)).all()}
            for name, target in wanted.items():
                row = rows.get(name) or TargetRow(name=name, updated_at=now)
                row.url = target.url
                row.labels = json.dumps(dict(target.labels), sort_keys=True)
                row.active = True
                row.updated_at = now
                session.add(row)
            for name, row in rows.items():
                if name not in wanted and row.active:
                    row.active = False
                    row.updated_at = now
                    session.add(row)
            session.commit()

    # runs ---------------------------------------------------------------

    def record(self, run: CheckRun, policy: HysteresisPolicy, slot: RunSlot | None = None) -> None:
        with self._session() as session:
            if self.engine.dialect.name == "postgresql":
                # runs of one (check, target) recorded by several workers update the same
                # finding rows: take turns, or hysteresis counters lose updates
                session.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": _lock_key(f"record|{run.check.value}|{run.target}")},
                )
            if slot is not None and run_length.slot_taken(session, run, slot):
                session.rollback()  # this slot was recorded before: a redelivery
                return
            snapshot_sha = self._store_snapshot(session, run)
            output = run.output
            transitions: list[Transition] = []
            # finding events are added (not flushed) by apply_findings: they go in after the
            # run's row, which is written only once it is known whether the run extends one
            with session.no_autoflush:
                if run.evaluated and output is not None:
                    transitions = apply_findings(
                        session, run, output.findings, policy, output.undetermined
                    )
                outcome = run_length.outcome_key(run, snapshot_sha)
                extended = None
                if outcome is not None and not transitions and self.run_length:
                    extended = run_length.extend_previous(session, run, outcome, slot)
                if extended is not None:
                    row_id = extended.row_id
                    session.add_all(extended.samples)
                else:
                    row_id = run.id
                    if not self._insert_run(session, run, snapshot_sha, outcome, slot):
                        session.rollback()  # this slot was recorded before: a redelivery
                        return
                    if output is not None:
                        session.add_all(
                            run_length.new_sample(run, run.id, observation)
                            for observation in output.observations
                        )
            if run.evaluated and output is not None and output.baseline_update is not None:
                baseline_rows.apply_update(session, run, output.baseline_update)  # after the row
            # last: on PostgreSQL the per-check totals stay locked only until the commit
            counters.count_run(session, run, row_id)
            session.commit()
        log_transitions(run, transitions)

    def _insert_run(
        self,
        session: Session,
        run: CheckRun,
        snapshot_sha: str | None,
        outcome: str | None,
        slot: RunSlot | None,
    ) -> bool:
        """Write `run` as a row of its own; False when its slot was recorded before."""
        output = run.output
        row = CheckRunRow(
            id=run.id,
            check=run.check.value,
            target=run.target,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=run.duration.total_seconds(),
            status=run.status.value,
            error_reason=run.error_reason.value if run.error_reason else None,
            error_message=run.error_message,
            finding_count=len(output.findings) if output else 0,
            snapshot_sha256=snapshot_sha,
            slot_key=slot.key if slot else None,
            slot_at=slot.at if slot else None,
            outcome=outcome,
        )
        if slot is None:
            session.execute(sa.insert(CheckRunRow).values(**row.model_dump()))
            return True
        return self._insert_once(session, CheckRunRow, row.model_dump(), "slot_key")

    def _insert_once(
        self, session: Session, table: type[SQLModel], values: dict[str, Any], unique: str
    ) -> bool:
        """INSERT ... ON CONFLICT (unique) DO NOTHING; True when the row was inserted.

        On PostgreSQL a concurrent insert of the same key waits for the other transaction
        and then does nothing, so exactly one of them wins.
        """
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        statement: Any = (
            insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[unique])
            .returning(sa.literal_column("1"))
        )
        return session.execute(statement).first() is not None

    def _store_snapshot(self, session: Session, run: CheckRun) -> str | None:
        if run.output is None or run.output.snapshot is None:
            return None
        content, sha = baseline_rows.encode_document(run.output.snapshot)
        stored = session.get(SnapshotRow, sha)
        if stored is not None:
            if stored.taken_at < run.started_at - SNAPSHOT_SEEN_STEP:
                # seen again (A -> B -> A): retention keeps it for the evidence period from now
                session.execute(
                    sa.update(SnapshotRow)
                    .where(
                        col(SnapshotRow.sha256) == sha, col(SnapshotRow.taken_at) < run.started_at
                    )
                    .values(taken_at=run.started_at)
                )
        else:
            # content-addressed: another worker may store the same document right now
            self._insert_once(
                session,
                SnapshotRow,
                {
                    "sha256": sha,
                    "check": run.check.value,
                    "target": run.target,
                    "taken_at": run.started_at,
                    "content": content,
                },
                "sha256",
            )
        return sha

    def slot_recorded(self, key: str) -> bool:
        with self._session() as session:
            found = session.exec(
                select(CheckRunRow.id)
                .where(
                    sa.or_(col(CheckRunRow.slot_key) == key, col(CheckRunRow.last_slot_key) == key)
                )
                .limit(1)
            ).first()
        return found is not None

    # baselines, snapshots and the audit log --------------------------------

    def approved_baseline(self, check: CheckKind, target: str) -> Baseline | None:
        with self._session() as session:
            return baseline_rows.latest(session, check, target)

    def baseline_history(self, check: CheckKind, target: str) -> list[Baseline]:
        with self._session() as session:
            return baseline_rows.history(session, check, target)

    def approve_baseline(self, approval: BaselineApproval) -> ApprovalResult:
        with self._session() as session:
            baseline = baseline_rows.insert_version(
                session,
                approval.check,
                approval.target,
                approval.content,
                approval.approved_by,
                approval.reason,
                approval.at,
            )
            transitions = baseline_rows.resolve_accepted(
                session, approval.check, approval.target, approval.resolves, approval.at
            )
            session.commit()
        return ApprovalResult(baseline=baseline, transitions=tuple(transitions))

    def latest_snapshot(self, check: CheckKind, target: str) -> dict[str, Any] | None:
        with self._session() as session:
            return baseline_rows.latest_snapshot(session, check, target)

    def hash_key(self) -> bytes:
        for _attempt in range(2):
            try:
                with self._session() as session:
                    key = baseline_rows.instance_key(session, datetime.now(UTC))
                    session.commit()
                    return key
            except StoreError as error:
                if not isinstance(error.__cause__, IntegrityError):
                    raise  # another process created it first: read theirs
        raise StoreError(f"store {self.describe()}: could not create the instance key")

    def claim_action(
        self, check: CheckKind, target: str, action: str, at: datetime, every: timedelta
    ) -> datetime | None:
        key = (
            col(ActionClaimRow.check) == check.value,
            col(ActionClaimRow.target) == target,
            col(ActionClaimRow.action) == action,
        )
        with self._session() as session:
            # a concurrent claim of the same key waits for this transaction on PostgreSQL
            # (row lock or unique key) and then finds the new time: exactly one wins
            moved = session.execute(
                sa.update(ActionClaimRow)
                .where(*key, col(ActionClaimRow.claimed_at) <= at - every)
                .values(claimed_at=at)
            )
            claimed = getattr(moved, "rowcount", 0) == 1
            if not claimed:
                insert = (
                    postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
                )
                statement: Any = (
                    insert(ActionClaimRow)
                    .values(check=check.value, target=target, action=action, claimed_at=at)
                    .on_conflict_do_nothing(index_elements=["check", "target", "action"])
                    .returning(sa.literal_column("1"))
                )
                claimed = session.execute(statement).first() is not None
            last = None if claimed else session.exec(select(ActionClaimRow).where(*key)).first()
            session.commit()
        return None if claimed or last is None else last.claimed_at

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        with self._session() as session:
            rows = session.exec(
                select(AuditLogRow).order_by(col(AuditLogRow.at).desc()).limit(limit)
            ).all()
        return [audit_entry_from_row(row) for row in rows]

    def report_rows(self, query: ReportQuery) -> ReportRows:
        with self._session() as session:
            return report_queries.read(session, self.engine.dialect.name, query)

    # reads --------------------------------------------------------------

    def last_run_started(self) -> dict[tuple[CheckKind, str], datetime]:
        return self._latest_per_job(run_length.last_started())

    def last_slots(self) -> dict[tuple[CheckKind, str], datetime]:
        return self._latest_per_job(
            func.coalesce(
                CheckRunRow.last_slot_at,
                CheckRunRow.slot_at,
                CheckRunRow.last_started_at,
                CheckRunRow.started_at,
            )
        )

    def _latest_per_job(self, moment: Any) -> dict[tuple[CheckKind, str], datetime]:
        """The latest `moment` (a column expression) of each (check, target)'s non-skipped
        runs; checks this version does not know are left out."""
        statement = (
            select(CheckRunRow.check, CheckRunRow.target, func.max(moment))
            .where(CheckRunRow.status != RunStatus.SKIPPED.value)
            .group_by(CheckRunRow.check, CheckRunRow.target)
        )
        with self._session() as session:
            rows = session.exec(statement).all()
        result: dict[tuple[CheckKind, str], datetime] = {}
        for check, target, latest in rows:
            kind = known_kind(check)
            if kind is not None and latest is not None:
                result[(kind, target)] = as_utc(latest)
        return result

    def findings(self, query: FindingQuery) -> list[StoredFinding]:
        statement = select(FindingRow)
        if query.target is not None:
            statement = statement.where(FindingRow.target == query.target)
        if query.check is not None:
            statement = statement.where(FindingRow.check == query.check.value)
        if query.statuses:
            statement = statement.where(
                col(FindingRow.status).in_([s.value for s in query.statuses])
            )
        if query.min_severity is not None:
            allowed = [s.value for s in Severity if s.at_least(query.min_severity)]
            statement = statement.where(col(FindingRow.severity).in_(allowed))
        with self._session() as session:
            rows = session.exec(statement).all()
        found = [f for f in map(finding_from_row, rows) if f is not None]
        return sorted(found, key=lambda f: (-f.severity.rank, f.target, f.rule_id, f.subject))

    def runs(
        self, check: CheckKind | None = None, target: str | None = None, limit: int = 100
    ) -> list[RunSummary]:
        statement = select(CheckRunRow)
        if check is not None:
            statement = statement.where(CheckRunRow.check == check.value)
        if target is not None:
            statement = statement.where(CheckRunRow.target == target)
        statement = statement.order_by(col(CheckRunRow.started_at).desc()).limit(limit)
        with self._session() as session:
            rows = session.exec(statement).all()
        return [run for run in map(run_summary_from_row, rows) if run is not None]

    def prune(
        self,
        policy: RetentionPolicy,
        now: datetime,
        budget_seconds: float = 5.0,
        dry_run: bool = False,
    ) -> PruneResult:
        """Roll up and delete what `policy` lets go (see monitor.store.retention); on SQLite
        give up to `VACUUM_PAGES` freed pages back to the file system afterwards."""
        with self._session() as session:
            result = retention.prune(session, policy, now, budget_seconds, dry_run)
        if not dry_run and self.engine.dialect.name == "sqlite" and result.removed:
            with self.engine.connect() as connection:
                # the pragma frees one page per step; Python's sqlite3 steps a statement
                # once, its executescript runs each to the end
                connection.connection.driver_connection.executescript(  # type: ignore[union-attr]
                    f"PRAGMA incremental_vacuum({VACUUM_PAGES});"
                )
        return result

    def sqlite_auto_vacuum(self) -> bool | None:
        """Whether the SQLite file shrinks as rows are deleted (None: not SQLite)."""
        if self.engine.dialect.name != "sqlite":
            return None
        with self.engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2

    def metrics_state(self, duration_buckets: Sequence[float]) -> MetricsState:
        with self._session() as session:
            return read_metrics_state(session, duration_buckets)


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for PostgreSQL advisory locks."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
