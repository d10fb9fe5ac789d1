"""Write a SQLite store with N targets x D days of monitoring history, fast (bulk inserts).

Per target: cert_expiry and config_drift hourly, tls_posture, api_inventory and patch_level
every 6 hours (60 runs a day), about 2 % of runs failing; the samples each check writes;
two chronic open findings (one whose severity rises) and an expiring certificate on every
tenth target; drift findings that open every 2-4 days and resolve hours to days later; an
inventory change every 10 days. The schema is made by Alembic (`upgrade_schema`); indexes
are dropped for the inserts and rebuilt after them.

Usage: history.py STORE.db TARGETS DAYS   (also writes STORE.yaml, the matching config)
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from monitor.model import finding_fingerprint
from monitor.store.sql import SqlStore

INTERVAL_HOURS = {
    "cert_expiry": 1,
    "config_drift": 1,
    "tls_posture": 6,
    "api_inventory": 6,
    "patch_level": 6,
}
# (name, labels) of the samples each check writes per ok run
SAMPLES: dict[str, list[tuple[str, dict[str, str]]]] = {
    "cert_expiry": [
        ("cert_not_after_timestamp_seconds", {"position": "leaf", "serial": "01"}),
        ("cert_not_before_timestamp_seconds", {"position": "leaf", "serial": "01"}),
    ],
    "config_drift": [("drift_items", {"source": "file:/etc/app.yaml"})],
    "tls_posture": [
        ("tls_grade_score", {}),
        ("tls_grade_info", {"grade": "A"}),
        ("tls_scan_complete", {}),
    ],
    "api_inventory": [
        ("inventory_operations", {"state": "documented"}),
        ("inventory_operations", {"state": "shadow"}),
    ],
    "patch_level": [
        ("patch_vulnerabilities", {"severity": "high"}),
        ("patch_packages", {"source": "dpkg"}),
    ],
}
FAILURE_SHARE = 0.02


def stamp(moment: datetime) -> str:
    """SQLAlchemy's SQLite DateTime text: naive UTC with microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def write_history(path: Path, targets: int, days: int, now: datetime) -> dict[str, int]:
    url = f"sqlite:///{path}"
    store = SqlStore(url)
    store.upgrade_schema()
    store.close()
    start = now - timedelta(days=days)
    names = [f"api-{n:04d}" for n in range(targets)]
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    indexes = connection.execute(
        "select name, sql from sqlite_master where type='index' and sql is not null"
    ).fetchall()
    for name, _sql in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    connection.executemany(
        "insert into target (name, url, labels, active, updated_at) values (?, ?, ?, 1, ?)",
        [(n, f"https://{n}.example:443", json.dumps({"env": "prod"}), stamp(start)) for n in names],
    )
    counts = {"runs": 0, "samples": 0}
    random.seed(7)
    samples: list[tuple[object, ...]] = []

    def runs() -> Iterator[tuple[object, ...]]:
        number = 0
        for index, target in enumerate(names):
            # one certificate per target, 3 to 400 days left; every 20th expires within 30
            days_left = 3 + (index * 37) % 397 if index % 20 else 3 + index % 27
            values = {
                "cert_not_after_timestamp_seconds": (now + timedelta(days=days_left)).timestamp(),
                "cert_not_before_timestamp_seconds": (now - timedelta(days=300)).timestamp(),
                "drift_items": 1.0,
                "tls_grade_score": 90.0,
                "tls_grade_info": 1.0,
                "tls_scan_complete": 1.0,
                "inventory_operations": 40.0,
                "patch_vulnerabilities": 1.0,
                "patch_packages": 300.0,
            }
            labels = {
                name: json.dumps({**sample_labels, "subject": f"CN={target}"}, sort_keys=True)
                for samples_of_check in SAMPLES.values()
                for name, sample_labels in samples_of_check
            }
            for check, hours in INTERVAL_HOURS.items():
                offset = timedelta(minutes=random.randrange(60))
                at = start + offset
                step = timedelta(hours=hours)
                while at < now:
                    number += 1
                    run_id = f"00000000-0000-4000-8000-{number:012d}"
                    failed = random.random() < FAILURE_SHARE
                    text = stamp(at)
                    yield (
                        run_id,
                        check,
                        target,
                        text,
                        stamp(at + timedelta(seconds=2)),
                        2.0,
                        "error" if failed else "ok",
                        "unreachable" if failed else None,
                        "connection refused" if failed else None,
                        0,
                    )
                    if not failed:
                        samples.extend(
                            (run_id, text, check, target, name, labels[name], values[name])
                            for name, _ in SAMPLES[check]
                        )
                    at += step
                    counts["runs"] += 1

    batch: list[tuple[object, ...]] = []
    insert_run = (
        'insert into check_run (id, "check", target, started_at, finished_at, duration_seconds,'
        " status, error_reason, error_message, finding_count) values (?,?,?,?,?,?,?,?,?,?)"
    )
    insert_sample = (
        'insert into sample (run_id, time, "check", target, name, labels, value)'
        " values (?,?,?,?,?,?,?)"
    )
    for row in runs():
        batch.append(row)
        if len(batch) >= 50_000:
            connection.executemany(insert_run, batch)
            connection.executemany(insert_sample, samples)
            counts["samples"] += len(samples)
            batch.clear()
            samples.clear()
    connection.executemany(insert_run, batch)
    connection.executemany(insert_sample, samples)
    counts["samples"] += len(samples)
    counts.update(_findings(connection, names, start, now, days))
    for _name, sql in indexes:
        connection.execute(sql)
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return counts


def _findings(
    connection: sqlite3.Connection, names: list[str], start: datetime, now: datetime, days: int
) -> dict[str, int]:
    findings: list[tuple[object, ...]] = []
    events: list[tuple[object, ...]] = []

    def finding(
        target: str,
        check: str,
        rule: str,
        subject: str,
        severity: str,
        opened: datetime,
        resolved: datetime | None,
        escalated: datetime | None = None,
    ) -> None:
        fingerprint = finding_fingerprint(check, target, rule, subject)
        findings.append(
            (
                fingerprint,
                check,
                target,
                rule,
                subject,
                "high" if escalated else severity,
                f"{rule} on {target}",
                "observed",
                "fix it",
                "resolved" if resolved else "open",
                stamp(opened),
                stamp(resolved or now),
                stamp(resolved) if resolved else None,
                0 if resolved else 1,
                2 if resolved else 0,
            )
        )
        events.append((fingerprint, stamp(opened), "opened", severity, None))
        if escalated:
            events.append((fingerprint, stamp(escalated), "severity_changed", "high", severity))
        if resolved:
            events.append((fingerprint, stamp(resolved), "resolved", severity, None))

    for index, target in enumerate(names):
        early = start + timedelta(hours=random.randrange(24 * 10))
        finding(target, "tls_posture", "TLS-HSTS-MISSING", f"{target}:443", "low", early, None)
        finding(
            target,
            "patch_level",
            "PATCH-VULNERABLE",
            "openssl 3.0.11 CVE-2024-0001",
            "medium",
            early,
            None,
            escalated=early + timedelta(days=days // 2),
        )
        if index % 10 == 0:
            finding(
                target,
                "cert_expiry",
                "CERT-EXPIRES-SOON",
                f"CN={target}",
                "medium",
                now - timedelta(days=5),
                None,
            )
        at = start + timedelta(hours=random.randrange(72))
        number = 0
        while at < now - timedelta(hours=1):
            number += 1
            fixed = at + timedelta(hours=random.randrange(2, 96))
            finding(
                target,
                "config_drift",
                "DRIFT-CHANGED",
                f"file:/etc/app.yaml|key{number}",
                "medium",
                at,
                fixed if fixed < now else None,
            )
            at += timedelta(hours=random.randrange(48, 96))
        at = start + timedelta(days=random.randrange(10))
        while at < now:
            number += 1
            fixed = at + timedelta(days=random.randrange(1, 6))
            finding(
                target,
                "api_inventory",
                "INVENTORY-OPERATION-ADDED",
                f"op{number}",
                "low",
                at,
                fixed if fixed < now else None,
            )
            at += timedelta(days=10)
    connection.executemany(
        'insert into finding (fingerprint, "check", target, rule_id, subject, severity, title,'
        " evidence, remediation, status, first_seen, last_seen, resolved_at, seen_streak,"
        " missing_streak) values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        findings,
    )
    connection.executemany(
        "insert into finding_event (fingerprint, run_id, at, kind, severity, previous_severity)"
        " values (?, null, ?, ?, ?, ?)",
        events,
    )
    return {"findings": len(findings), "finding_events": len(events)}


def write_config(path: Path, store: Path, targets: int) -> None:
    checks = {
        "cert_expiry": {"interval": "1h"},
        "tls_posture": {"interval": "6h"},
        "config_drift": {"interval": "1h", "sources": [{"http": {"path": "/"}}]},
        "api_inventory": {"interval": "6h", "spec_path": "/openapi.json"},
        "patch_level": {"interval": "6h", "sources": [{"banner": True}]},
    }
    config = {
        "store": f"sqlite:///{store}",
        "defaults": {"timeout": "60s", "jitter": "0s"},
        "targets": [
            {"name": f"api-{n:04d}", "url": f"https://api-{n:04d}.example:443", "checks": checks}
            for n in range(targets)
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def main() -> None:
    path, targets, days = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    began = time.perf_counter()
    counts = write_history(path, targets, days, datetime.now(UTC))
    write_config(path.with_suffix(".yaml"), path, targets)
    counts["seconds"] = round(time.perf_counter() - began, 1)
    counts["bytes"] = path.stat().st_size
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
