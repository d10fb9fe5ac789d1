"""Pure judgement of a config_drift run: drift against the approved baseline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from checks.baseline_diff import Change, block_name, block_summary, is_masked
from checks.config_drift.diff import DriftItem, diff, ignored_by, is_volatile, severity_of
from checks.config_drift.facts import DriftRaw, ReadAs, ReadNote
from checks.config_drift.params import ConfigDriftParams
from checks.interface import baseline_subject, source_prefix
from monitor.model import (
    BaselineUpdate,
    CheckKind,
    CheckOutput,
    Finding,
    Observation,
    Severity,
)

_RULE_IDS = {
    Change.ADDED: "DRIFT-ADDED",
    Change.REMOVED: "DRIFT-REMOVED",
    Change.CHANGED: "DRIFT-CHANGED",
}
_VALUE_LIMIT = 300


def evaluate(raw: DriftRaw, params: ConfigDriftParams, now: datetime) -> CheckOutput:
    approved: dict[str, Any] = dict(raw.baseline.content) if raw.baseline else {}
    findings: list[Finding] = []
    observations: list[Observation] = []
    undetermined: list[str] = []
    first_seen: list[str] = []
    for state in raw.states:
        findings.extend(_read_as(state.source, note) for note in state.notes)
        if state.source not in approved:
            first_seen.append(state.source)
            continue
        unreadable = dict(state.unreadable)
        kept = partial(_kept, params=params, now=now, unreadable=tuple(unreadable))
        items = _judged(diff(state.source, approved[state.source], state.entries), kept)
        findings.extend(_drift_finding(item, params, raw.target) for item in items)
        for prefix, reason in unreadable.items():
            findings.append(_unavailable(baseline_subject(state.source, prefix), reason))
            undetermined.append(baseline_subject(state.source, prefix))
        observations.append(Observation("drift_items", float(len(items)), {"source": state.source}))
    for failure in raw.failures:
        findings.append(_unavailable(failure.source, failure.reason))
        undetermined.append(source_prefix(failure.source))
    if raw.baseline is not None:
        age = (now - raw.baseline.approved_at).total_seconds()
        observations.append(
            Observation("baseline_age_seconds", max(age, 0.0), {"check": CheckKind.CONFIG_DRIFT})
        )
    update = None
    if first_seen:
        content = {
            **approved,
            **{s.source: dict(s.entries) for s in raw.states if s.source in first_seen},
        }
        update = BaselineUpdate(content, f"first observation of {', '.join(first_seen)}")
    return CheckOutput(
        observations=tuple(observations),
        findings=tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.rule_id, f.subject))),
        snapshot={state.source: dict(state.entries) for state in raw.states},
        undetermined=tuple(undetermined),
        baseline_update=update,
    )


def _judged(items: list[DriftItem], kept: Callable[[DriftItem], bool]) -> list[DriftItem]:
    """The items to report: a block keeps the members that are not ignored (none: no
    block), and is dropped when ignored itself."""
    judged: list[DriftItem] = []
    for item in items:
        if not kept(item):
            continue
        members = tuple(member for member in item.members if kept(member))
        if len(members) == len(item.members):
            judged.append(item)
        elif members:
            summary = block_summary(members, item.path)
            was, now = (summary, None) if item.change is Change.REMOVED else (None, summary)
            judged.append(replace(item, before=was, after=now, members=members))
    return judged


def _kept(
    item: DriftItem, params: ConfigDriftParams, now: datetime, unreadable: tuple[str, ...]
) -> bool:
    return (
        not is_volatile(item)
        and ignored_by(item, params.ignore, now) is None
        and not any(_under(item.path, prefix) for prefix in unreadable)
    )


def _under(path: str, prefix: str) -> bool:
    """Whether `path` belongs to the unreadable directory (`sub/`) or file `prefix`."""
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith((f"{prefix}#", f"{prefix}:"))


def _drift_finding(item: DriftItem, params: ConfigDriftParams, target: str) -> Finding:
    # a block is as serious as its most serious setting (a new server with weak TLS is high)
    severity = max(
        (
            severity_of(one, params.severity, params.default_severity)
            for one in (item, *item.members)
        ),
        key=lambda s: s.rank,
    )
    what = f"block {item.path}" if item.is_block else item.path
    return Finding(
        rule_id=_RULE_IDS[item.change],
        severity=severity,
        title=f"{item.source}: {what} {item.change.value} since the approved baseline",
        subject=item.subject,
        evidence=_evidence(item),
        remediation=(
            "Restore the approved value, or approve the new state with "
            f"`apivigil baseline accept {target} --source '{item.source}' --reason ...`."
        ),
    )


def _evidence(item: DriftItem) -> str:
    if item.is_block:
        settings = len(item.members)
        plural = "setting" if settings == 1 else "settings"
        verb = "added" if item.change is Change.ADDED else "removed"
        return f"{verb} block {block_name(item)!r} ({settings} {plural}): " + _short(
            item.after if item.after is not None else item.before
        )
    if any(value is not None and is_masked(value) for value in (item.before, item.after)):
        return {
            Change.ADDED: "a secret value was added (values are not shown)",
            Change.REMOVED: "a secret value was removed (values are not shown)",
            Change.CHANGED: "a secret value changed (values are not shown)",
        }[item.change]
    match item.change:
        case Change.ADDED:
            return f"added: {_short(item.after)}"
        case Change.REMOVED:
            return f"removed (was: {_short(item.before)})"
        case Change.CHANGED:
            return f"before: {_short(item.before)}; after: {_short(item.after)}"


def _short(value: str | None) -> str:
    text = value or ""
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 1] + "…"


def _read_as(source: str, note: ReadNote) -> Finding:
    # `#format`: a directory's file has drift items under its own name too
    subject = baseline_subject(source, f"{note.where}#format") if note.where else source
    text = note.read_as is ReadAs.TEXT
    return Finding(
        rule_id="DRIFT-READ-AS-TEXT" if text else "DRIFT-READ-AS-DIGEST",
        severity=Severity.LOW,
        title=f"Configuration source {subject} was compared as {note.read_as.value}",
        subject=subject,
        evidence=note.reason,
        remediation=(
            "Fix the file's syntax, or give it an explicit format (`format:` for a file, "
            "`formats:` for a directory's files; `text` when text lines are meant); until "
            "then its drift is judged line by line."
            if text
            else "Split the file, or watch it as a file source of its own; until then any "
            "change to it is one changed digest."
        ),
    )


def _unavailable(subject: str, reason: str) -> Finding:
    return Finding(
        rule_id="DRIFT-SOURCE-UNAVAILABLE",
        severity=Severity.MEDIUM,
        title=f"Configuration source {subject} could not be read",
        subject=subject,
        evidence=reason,
        remediation=(
            "Make the source readable by apivigil again; drift under it is not judged "
            "(neither raised nor resolved) until then."
        ),
    )
