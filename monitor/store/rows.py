"""Stored rows to domain values: one conversion per row type, for every read of the store.

A domain value's fields are named as its row's columns; `_from_row` copies those and takes
the ones that need converting (enums, JSON) as keywords.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, TypeVar

from sqlmodel import SQLModel

from monitor.model import FindingStatus, RunStatus, Severity, StoredFinding, Target
from monitor.store.interface import AuditEntry, RunSummary
from monitor.store.sql_metrics import known_kind
from monitor.store.tables import AuditLogRow, CheckRunRow, FindingRow, TargetRow

ValueT = TypeVar("ValueT")


def _from_row(kind: type[ValueT], row: SQLModel, **converted: Any) -> ValueT:
    copied = {
        field.name: getattr(row, field.name)
        for field in fields(kind)  # type: ignore[arg-type]
        if field.name not in converted
    }
    return kind(**copied, **converted)


def finding_from_row(row: FindingRow) -> StoredFinding | None:
    """The finding a row holds; None when its check is not one of ours (`known_kind`)."""
    check = known_kind(row.check)
    if check is None:
        return None
    return _from_row(
        StoredFinding,
        row,
        check=check,
        severity=Severity(row.severity),
        status=FindingStatus(row.status),
    )


def run_summary_from_row(row: CheckRunRow) -> RunSummary | None:
    """The run a row holds; None when its check is not one of ours (`known_kind`)."""
    check = known_kind(row.check)
    if check is None:
        return None
    return _from_row(
        RunSummary,
        row,
        check=check,
        status=RunStatus(row.status),
        last_started_at=row.last_started_at or row.started_at,
    )


def audit_entry_from_row(row: AuditLogRow) -> AuditEntry:
    return _from_row(AuditEntry, row, detail=json.loads(row.detail))


def target_from_row(row: TargetRow) -> Target:
    return Target(name=row.name, url=row.url, labels=json.loads(row.labels))
