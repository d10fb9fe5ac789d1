"""Tables people read (findings, scan, targets, silences, outbox) never cut rule ids, targets
or subjects, at 80 columns (a pipe) as on a wide terminal; findings come worst first, and
resolved ones say when they resolved."""

from __future__ import annotations

import io
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.display import HumanConsole
from monitor.model import (
    CheckKind,
    CheckOutput,
    CheckRun,
    Finding,
    FindingStatus,
    RunStatus,
    Severity,
    StoredFinding,
)
from monitor.render import print_findings, print_scan
from tests.support.daemon_process import APIVIGIL, run_cli, write_config

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULE = "INVENTORY-UNAUTHENTICATED-OPERATION"
TARGET = "payments-gateway-eu-west-1.internal"
SUBJECT = "POST /v2/merchants/{merchantId}/payouts/{payoutId}/reversals"


def stored(
    severity: Severity, status: FindingStatus = FindingStatus.OPEN, rule: str = RULE
) -> StoredFinding:
    return StoredFinding(
        fingerprint=f"fp-{severity.value}-{status.value}",
        check=CheckKind.API_INVENTORY,
        target=TARGET,
        rule_id=rule,
        subject=SUBJECT,
        severity=severity,
        title="An operation answers without authentication although the spec requires it",
        evidence="e",
        remediation="r",
        status=status,
        first_seen=NOW - timedelta(days=3),
        last_seen=NOW - timedelta(days=1),
        resolved_at=NOW - timedelta(hours=5) if status is FindingStatus.RESOLVED else None,
    )


def rendered(width: int, draw: object) -> str:
    buffer = io.StringIO()
    console = HumanConsole(file=buffer, width=width, soft_wrap=False)
    draw(console)  # type: ignore[operator]
    return buffer.getvalue()


def columns_of(text: str) -> list[str]:
    """The text of each column of a one-row table, its folded lines joined, spaces dropped."""
    body = [line for line in text.splitlines() if line.startswith("│")]
    cells = [[part.strip() for part in line.strip("│").split("│")] for line in body]
    return ["".join(parts).replace(" ", "") for parts in zip(*cells, strict=True)]


@pytest.mark.unit
@pytest.mark.parametrize("width", [80, 120, 250])
def test_findings_table_never_cuts_rule_ids_targets_or_subjects(width: int) -> None:
    text = rendered(width, lambda c: print_findings(c, [stored(Severity.HIGH)]))
    assert "…" not in text, text
    assert all(len(line) <= width for line in text.splitlines()), text
    shown = columns_of(text)
    for value in (RULE, TARGET, SUBJECT):
        # a dropped title is folded in under the subject, so the cell starts with it
        assert any(cell.startswith(value.replace(" ", "")) for cell in shown), (value, shown)
    title = stored(Severity.HIGH).title.replace(" ", "")
    assert title in "".join(shown), "the title (what the finding is about) is left out"
    if width >= 120:
        assert RULE in text, text  # whole on one line when there is room
        assert TARGET in text, text


@pytest.mark.unit
def test_findings_come_worst_first_and_resolved_ones_say_when() -> None:
    found = [
        stored(Severity.LOW, rule="R-LOW"),
        stored(Severity.CRITICAL, FindingStatus.RESOLVED, rule="R-CRIT"),
        stored(Severity.MEDIUM, rule="R-MED"),
    ]
    text = rendered(250, lambda c: print_findings(c, found))
    assert text.index("R-CRIT") < text.index("R-MED") < text.index("R-LOW"), text
    assert "resolved" in text
    assert (NOW - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M") in text


@pytest.mark.unit
def test_scan_table_keeps_rule_ids_targets_and_subjects_at_80_columns() -> None:
    finding = Finding(RULE, Severity.HIGH, "t" * 60, SUBJECT, "e", "r")
    run = CheckRun(
        id="run-1",
        check=CheckKind.API_INVENTORY,
        target=TARGET,
        started_at=NOW,
        finished_at=NOW + timedelta(seconds=1),
        status=RunStatus.OK,
        output=CheckOutput(findings=(finding,)),
    )
    text = rendered(80, lambda c: print_scan(c, [run]))
    assert "…" not in text, text
    table = text.split("TLS posture")[-1].split("1 run(s)")[0]
    shown = columns_of(table)
    for value in (RULE, TARGET, SUBJECT):
        assert any(cell.startswith(value.replace(" ", "")) for cell in shown), (value, shown)


@pytest.mark.e2e
def test_targets_as_json_and_as_a_table_piped_at_80_columns(tmp_path: Path) -> None:
    url = "https://payments-gateway-eu-west-1.internal.example.com:8443"
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "targets": [
                {
                    "name": TARGET,
                    "url": url,
                    "labels": {"env": "prod"},
                    "checks": {"cert_expiry": {}},
                }
            ]
        },
    )
    as_json = run_cli("targets", "--config", str(config), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    (entry,) = json.loads(as_json.stdout)
    assert (entry["target"], entry["url"], entry["check"]) == (TARGET, url, "cert_expiry")
    assert entry["labels"] == {"env": "prod"}
    piped = subprocess.run(
        [*APIVIGIL, "targets", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if k != "COLUMNS"},
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert "…" not in piped.stdout, piped.stdout
    assert all(len(line) <= 80 for line in piped.stdout.splitlines()), piped.stdout
    shown = columns_of(piped.stdout)
    assert TARGET in shown, shown
    assert url in shown, shown
