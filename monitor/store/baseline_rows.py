"""Baselines (versioned, insert-only), the audit log, snapshots and the instance key."""

from __future__ import annotations

import hashlib
import json
import secrets
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from monitor.model import (
    FIRST_OBSERVATION,
    Baseline,
    BaselineUpdate,
    CheckKind,
    CheckRun,
    FindingStatus,
    RunStatus,
    Severity,
    Transition,
    TransitionKind,
)
from monitor.store.tables import (
    AuditLogRow,
    BaselineRow,
    CheckRunRow,
    FindingEventRow,
    FindingRow,
    InstanceKeyRow,
    SnapshotRow,
)

HASH_KEY_NAME = "secret-value-hash"


def encode_document(document: Mapping[str, Any]) -> tuple[bytes, str]:
    """Compressed canonical JSON of `document` and the SHA-256 of the uncompressed JSON."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return zlib.compress(text), hashlib.sha256(text).hexdigest()


def decode_document(content: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(zlib.decompress(content))
    return document


def latest(session: Session, check: CheckKind, target: str) -> Baseline | None:
    row = session.exec(
        select(BaselineRow)
        .where(BaselineRow.check == check.value, BaselineRow.target == target)
        .order_by(col(BaselineRow.version).desc())
        .limit(1)
    ).first()
    return _baseline(row) if row else None


def history(session: Session, check: CheckKind, target: str) -> list[Baseline]:
    rows = session.exec(
        select(BaselineRow)
        .where(BaselineRow.check == check.value, BaselineRow.target == target)
        .order_by(col(BaselineRow.version))
    ).all()
    return [_baseline(row) for row in rows]


def insert_version(
    session: Session,
    check: CheckKind,
    target: str,
    content: Mapping[str, Any],
    approved_by: str,
    reason: str,
    at: datetime,
) -> Baseline | None:
    """Add the next version unless `content` equals the current one; audit it either way."""
    current = session.exec(
        select(BaselineRow)
        .where(BaselineRow.check == check.value, BaselineRow.target == target)
        .order_by(col(BaselineRow.version).desc())
        .limit(1)
    ).first()
    encoded, sha = encode_document(content)
    if current is not None and current.content_sha256 == sha:
        return None
    row = BaselineRow(
        check=check.value,
        target=target,
        version=(current.version + 1) if current else 1,
        content=encoded,
        content_sha256=sha,
        approved_by=approved_by,
        approved_at=at,
        reason=reason,
    )
    session.add(row)
    session.add(
        AuditLogRow(
            at=at,
            actor=approved_by,
            action="baseline.approve",
            subject=f"{check.value}/{target}",
            detail=json.dumps({"version": row.version, "reason": reason, "sha256": sha}),
        )
    )
    session.flush()
    return _baseline(row)


def apply_update(session: Session, run: CheckRun, update: BaselineUpdate) -> None:
    """Add the parts of `update` the current version lacks (first observations); parts a
    person approved meanwhile are kept, never overwritten by what the run proposed."""
    current = latest(session, run.check, run.target)
    content = dict(current.content) if current else {}
    new_parts = {key: value for key, value in update.content.items() if key not in content}
    if not new_parts:
        return
    insert_version(
        session,
        run.check,
        run.target,
        {**content, **new_parts},
        FIRST_OBSERVATION,
        update.reason,
        run.finished_at,
    )


def resolve_accepted(
    session: Session,
    check: CheckKind,
    target: str,
    subject_prefixes: Sequence[str],
    at: datetime,
) -> list[Transition]:
    """Resolve live findings under `subject_prefixes`: their state was just approved."""
    rows = session.exec(
        select(FindingRow).where(
            FindingRow.check == check.value,
            FindingRow.target == target,
            col(FindingRow.status).in_([FindingStatus.OPEN.value, FindingStatus.PENDING.value]),
        )
    ).all()
    transitions: list[Transition] = []
    for row in rows:
        if not any(row.subject.startswith(prefix) for prefix in subject_prefixes):
            continue
        was_open = row.status == FindingStatus.OPEN.value
        row.status = FindingStatus.RESOLVED.value
        row.resolved_at = at
        row.seen_streak = 0
        session.add(row)
        if was_open:
            session.add(
                FindingEventRow(
                    fingerprint=row.fingerprint,
                    run_id=None,
                    at=at,
                    kind=TransitionKind.RESOLVED.value,
                    severity=row.severity,
                )
            )
            transitions.append(
                Transition(
                    fingerprint=row.fingerprint,
                    check=check,
                    target=target,
                    rule_id=row.rule_id,
                    subject=row.subject,
                    kind=TransitionKind.RESOLVED,
                    severity=Severity(row.severity),
                    previous_severity=None,
                    at=at,
                )
            )
    return transitions


def latest_snapshot(session: Session, check: CheckKind, target: str) -> dict[str, Any] | None:
    """The snapshot of the newest ok run of (check, target) that stored one."""
    row = session.exec(
        select(SnapshotRow)
        .join(CheckRunRow, col(CheckRunRow.snapshot_sha256) == col(SnapshotRow.sha256))
        .where(
            CheckRunRow.check == check.value,
            CheckRunRow.target == target,
            CheckRunRow.status == RunStatus.OK.value,
        )
        .order_by(col(CheckRunRow.started_at).desc())
        .limit(1)
    ).first()
    return decode_document(row.content) if row else None


def instance_key(session: Session, now: datetime) -> bytes:
    row = session.get(InstanceKeyRow, HASH_KEY_NAME)
    if row is None:
        row = InstanceKeyRow(name=HASH_KEY_NAME, value=secrets.token_bytes(32), created_at=now)
        session.add(row)
        session.flush()
    return row.value


def _baseline(row: BaselineRow) -> Baseline:
    return Baseline(
        check=CheckKind(row.check),
        target=row.target,
        version=row.version,
        content=decode_document(row.content),
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        reason=row.reason,
    )
