"""SqlStore: the Store protocol on SQLModel/SQLAlchemy, for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)
from sqlmodel import Session, col, func, select

from monitor.model import (
    Baseline,
    CheckKind,
    CheckRun,
    FindingStatus,
    RunStatus,
    Severity,
    StoredFinding,
    Target,
    Transition,
)
from monitor.store import alerting, baselines, schema
from monitor.store.interface import (
    ApprovalResult,
    AuditEntry,
    BaselineApproval,
    DurationHistogram,
    FindingQuery,
    HysteresisPolicy,
    LatestSample,
    MetricsState,
    OpenRule,
    RunSummary,
    SchemaState,
    StoreError,
    StoreUnavailable,
)
from monitor.store.lifecycle import apply_findings
from monitor.store.sql_alerting import SqlAlertingMixin
from monitor.store.tables import (
    AuditLogRow,
    CheckRunRow,
    FindingRow,
    SampleRow,
    SnapshotRow,
    TargetRow,
)


def create_engine_for(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, synchronous=NORMAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"store URL {url!r} is not valid: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            connect_args={"connect_timeout": 10},
        )
    raise StoreError(f"store URL {url!r}: only sqlite:/// and postgresql+psycopg:// are supported")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SqlStore(SqlAlertingMixin):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine_for(url)

    def describe(self) -> str:
        """The URL with any password hidden, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
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
        try:
            schema.upgrade(self.engine)
        except OperationalError as error:
            raise StoreUnavailable(f"store {self.describe()} unavailable: {error.orig}") from error

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

    def record(self, run: CheckRun, policy: HysteresisPolicy) -> list[Transition]:
        with self._session() as session:
            snapshot_sha = self._store_snapshot(session, run)
            output = run.output
            session.add(
                CheckRunRow(
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
                )
            )
            session.flush()
            if output is not None:
                session.add_all(
                    SampleRow(
                        run_id=run.id,
                        time=run.started_at,
                        check=run.check.value,
                        target=run.target,
                        name=observation.name,
                        labels=json.dumps(dict(observation.labels), sort_keys=True),
                        value=observation.value,
                    )
                    for observation in output.observations
                )
            transitions: list[Transition] = []
            if run.evaluated and output is not None:
                transitions = apply_findings(
                    session, run, output.findings, policy, output.undetermined
                )
                if output.baseline_update is not None:
                    baselines.apply_update(session, run, output.baseline_update)
            session.commit()
            return transitions

    def _store_snapshot(self, session: Session, run: CheckRun) -> str | None:
        if run.output is None or run.output.snapshot is None:
            return None
        content, sha = baselines.encode_document(run.output.snapshot)
        if session.get(SnapshotRow, sha) is None:
            session.add(
                SnapshotRow(
                    sha256=sha,
                    check=run.check.value,
                    target=run.target,
                    taken_at=run.started_at,
                    content=content,
                )
            )
            session.flush()
        return sha

    # baselines, snapshots and the audit log --------------------------------

    def approved_baseline(self, check: CheckKind, target: str) -> Baseline | None:
        with self._session() as session:
            return baselines.latest(session, check, target)

    def baseline_history(self, check: CheckKind, target: str) -> list[Baseline]:
        with self._session() as session:
            return baselines.history(session, check, target)

    def approve_baseline(self, approval: BaselineApproval) -> ApprovalResult:
        with self._session() as session:
            baseline = baselines.insert_version(
                session,
                approval.check,
                approval.target,
                approval.content,
                approval.approved_by,
                approval.reason,
                approval.at,
            )
            transitions = baselines.resolve_accepted(
                session, approval.check, approval.target, approval.resolves, approval.at
            )
            session.commit()
        return ApprovalResult(baseline=baseline, transitions=tuple(transitions))

    def latest_snapshot(self, check: CheckKind, target: str) -> dict[str, Any] | None:
        with self._session() as session:
            return baselines.latest_snapshot(session, check, target)

    def hash_key(self) -> bytes:
        for _attempt in range(2):
            try:
                with self._session() as session:
                    key = baselines.instance_key(session, datetime.now(UTC))
                    session.commit()
                    return key
            except StoreError as error:
                if not isinstance(error.__cause__, IntegrityError):
                    raise  # another process created it first: read theirs
        raise StoreError(f"store {self.describe()}: could not create the instance key")

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        with self._session() as session:
            rows = session.exec(
                select(AuditLogRow).order_by(col(AuditLogRow.at).desc()).limit(limit)
            ).all()
        return [
            AuditEntry(
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                detail=json.loads(row.detail),
            )
            for row in rows
        ]

    # reads --------------------------------------------------------------

    def last_run_started(self) -> dict[tuple[CheckKind, str], datetime]:
        statement = (
            select(CheckRunRow.check, CheckRunRow.target, func.max(CheckRunRow.started_at))
            .where(CheckRunRow.status != RunStatus.SKIPPED.value)
            .group_by(CheckRunRow.check, CheckRunRow.target)
        )
        with self._session() as session:
            rows = session.exec(statement).all()
        result: dict[tuple[CheckKind, str], datetime] = {}
        for check, target, started in rows:
            kind = _known_kind(check)
            if kind is not None and started is not None:
                result[(kind, target)] = _as_utc(started)
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
        found = [_stored_finding(row) for row in rows if _known_kind(row.check) is not None]
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
        return [
            RunSummary(
                id=row.id,
                check=CheckKind(row.check),
                target=row.target,
                started_at=row.started_at,
                finished_at=row.finished_at,
                status=RunStatus(row.status),
                error_reason=row.error_reason,
                error_message=row.error_message,
                finding_count=row.finding_count,
            )
            for row in rows
            if _known_kind(row.check) is not None
        ]

    def metrics_state(self, duration_buckets: Sequence[float]) -> MetricsState:
        with self._session() as session:
            targets = {
                row.name: json.loads(row.labels)
                for row in session.exec(
                    select(TargetRow).where(col(TargetRow.active).is_(True))
                ).all()
            }
            grouped = session.execute(
                sa.select(
                    col(CheckRunRow.check),
                    col(CheckRunRow.target),
                    col(CheckRunRow.status),
                    func.count(),
                    func.max(CheckRunRow.finished_at),
                ).group_by(CheckRunRow.check, CheckRunRow.target, CheckRunRow.status)
            ).all()
            latest = self._latest_runs(session)
            durations = self._duration_histograms(session, duration_buckets)
            open_counts = session.execute(
                sa.select(
                    col(FindingRow.check),
                    col(FindingRow.target),
                    col(FindingRow.severity),
                    func.count(),
                )
                .where(col(FindingRow.status) == FindingStatus.OPEN.value)
                .group_by(FindingRow.check, FindingRow.target, FindingRow.severity)
            ).all()
            open_rules = session.execute(
                sa.select(
                    col(FindingRow.check),
                    col(FindingRow.target),
                    col(FindingRow.rule_id),
                    col(FindingRow.severity),
                    func.count(),
                )
                .where(col(FindingRow.status) == FindingStatus.OPEN.value)
                .group_by(
                    FindingRow.check, FindingRow.target, FindingRow.rule_id, FindingRow.severity
                )
            ).all()
            samples = self._latest_samples(session)
            failed_notifications = alerting.failed_counts(session)
            pending_notifications = alerting.pending_counts(session)

        run_counts: dict[tuple[CheckKind, str, RunStatus], int] = {}
        last_run_at: dict[tuple[CheckKind, str, RunStatus], datetime] = {}
        for check, target, status, count, finished in grouped:
            kind = _known_kind(check)
            if kind is None or target not in targets:
                continue
            run_counts[(kind, target, RunStatus(status))] = count
            last_run_at[(kind, target, RunStatus(status))] = _as_utc(finished)
        return MetricsState(
            targets=targets,
            run_counts=run_counts,
            last_run_at=last_run_at,
            last_status={
                key: RunStatus(row.status) for key, row in latest.items() if key[1] in targets
            },
            durations=durations,
            open_findings={
                (kind, target, Severity(severity)): count
                for check, target, severity, count in open_counts
                if (kind := _known_kind(check)) is not None and target in targets
            },
            latest_samples=[sample for sample in samples if sample.target in targets],
            open_rules=[
                OpenRule(kind, target, rule_id, Severity(severity), int(count))
                for check, target, rule_id, severity, count in open_rules
                if (kind := _known_kind(check)) is not None and target in targets
            ],
            notifications_failed=failed_notifications,
            notifications_pending=pending_notifications,
        )

    def _latest_runs(
        self,
        session: Session,
        statuses: Sequence[RunStatus] = (RunStatus.OK, RunStatus.ERROR, RunStatus.TIMEOUT),
    ) -> dict[tuple[CheckKind, str], CheckRunRow]:
        newest = (
            select(
                CheckRunRow.check,
                CheckRunRow.target,
                func.max(CheckRunRow.started_at).label("started"),
            )
            .where(col(CheckRunRow.status).in_([s.value for s in statuses]))
            .group_by(CheckRunRow.check, CheckRunRow.target)
            .subquery()
        )
        rows = session.exec(
            select(CheckRunRow)
            .join(
                newest,
                sa.and_(
                    col(CheckRunRow.check) == newest.c.check,
                    col(CheckRunRow.target) == newest.c.target,
                    col(CheckRunRow.started_at) == newest.c.started,
                ),
            )
            .where(col(CheckRunRow.status).in_([s.value for s in statuses]))
        ).all()
        result: dict[tuple[CheckKind, str], CheckRunRow] = {}
        for row in rows:
            kind = _known_kind(row.check)
            if kind is not None:
                result[(kind, row.target)] = row
        return result

    def _latest_samples(self, session: Session) -> list[LatestSample]:
        latest_ok = self._latest_runs(session, statuses=(RunStatus.OK,))
        run_ids = [row.id for row in latest_ok.values()]
        samples: list[LatestSample] = []
        for start in range(0, len(run_ids), 500):
            rows = session.exec(
                select(SampleRow).where(col(SampleRow.run_id).in_(run_ids[start : start + 500]))
            ).all()
            samples.extend(
                LatestSample(
                    check=CheckKind(row.check),
                    target=row.target,
                    name=row.name,
                    labels=json.loads(row.labels),
                    value=row.value,
                )
                for row in rows
            )
        return samples

    def _duration_histograms(
        self, session: Session, bounds: Sequence[float]
    ) -> dict[CheckKind, DurationHistogram]:
        duration = col(CheckRunRow.duration_seconds)
        columns: list[Any] = [
            func.sum(sa.case((duration <= bound, 1), else_=0)) for bound in bounds
        ]
        selected: list[Any] = [col(CheckRunRow.check), func.count(), func.sum(duration), *columns]
        rows = session.execute(
            sa.select(*selected)
            .where(col(CheckRunRow.status) != RunStatus.SKIPPED.value)
            .group_by(CheckRunRow.check)
        ).all()
        result: dict[CheckKind, DurationHistogram] = {}
        for check, count, total, *cumulative in rows:
            kind = _known_kind(check)
            if kind is not None:
                result[kind] = DurationHistogram(
                    buckets=[
                        (bound, int(n or 0)) for bound, n in zip(bounds, cumulative, strict=True)
                    ],
                    total_seconds=float(total or 0.0),
                    count=int(count),
                )
        return result


def _known_kind(value: str) -> CheckKind | None:
    try:
        return CheckKind(value)
    except ValueError:
        return None  # written by a newer apivigil or a removed plugin: not ours to show


def _as_utc(moment: datetime | str) -> datetime:
    if isinstance(moment, str):  # SQLite aggregates bypass the column type
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stored_finding(row: FindingRow) -> StoredFinding:
    return StoredFinding(
        fingerprint=row.fingerprint,
        check=CheckKind(row.check),
        target=row.target,
        rule_id=row.rule_id,
        subject=row.subject,
        severity=Severity(row.severity),
        title=row.title,
        evidence=row.evidence,
        remediation=row.remediation,
        status=FindingStatus(row.status),
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        resolved_at=row.resolved_at,
    )
