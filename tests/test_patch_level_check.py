"""patch_level end to end: real files, a real HTTP server, an index built from OSV records
the test writes, the real runner and store."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.config import AlertsConfig
from checks.egress import EgressPolicy
from checks.patch_level.advisories import build_index
from checks.patch_level.params import PatchLevelParams
from monitor.alerting import run_tick
from monitor.model import CheckKind, CheckRun, FindingStatus, RunStatus, Severity, Target
from monitor.runner import CheckJob, Runner
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.clocks import ManualClock
from tests.support.daemon_process import run_cli, write_config
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.osv_records import (
    CVSS3_CRITICAL,
    CVSS3_MEDIUM,
    CVSS4_HIGH,
    affected,
    osv_range,
    record,
    write_directory,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
STRICT = HysteresisPolicy(open_after=1, resolve_after=1)

OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
DPKG_STATUS = """\
Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u1)
Version: 3.0.11-1~deb12u1

Package: zlib1g
Status: install ok installed
Source: zlib
Version: 1:1.2.13.dfsg-1
"""
REQUIREMENTS = "Django==4.2.1\nrequests==2.30.0  # pinned\nflask>=2\n"
SBOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "components": [
        {
            "type": "library",
            "name": "lodash",
            "version": "4.17.20",
            "purl": "pkg:npm/lodash@4.17.20",
        },
    ],
}


def osv_documents() -> list[dict[str, Any]]:
    django_range = osv_range(("introduced", "0"), ("fixed", "4.2.8"))
    return [
        # one vulnerability under three ids, each record naming only some of the others
        record(
            "PYSEC-2024-1",
            affected("PyPI", "django", django_range),
            aliases=("CVE-2024-0001",),
            severity=(("CVSS_V3", CVSS3_CRITICAL),),
            published="2024-01-02T00:00:00Z",
        ),
        record(
            "GHSA-aaaa-bbbb-cccc",
            affected("PyPI", "Django", django_range),
            aliases=("CVE-2024-0001",),
            published="2024-01-03T00:00:00Z",
        ),
        record(
            "CVE-2024-0001",
            affected("PyPI", "django", django_range),
            published="2024-01-01T00:00:00Z",
        ),
        record(
            "GHSA-rrrr-eeee-qqqq",
            affected("PyPI", "requests", osv_range(("introduced", "2.0"), ("fixed", "2.31.0"))),
            severity=(("CVSS_V4", CVSS4_HIGH),),
            published=(NOW - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        record(
            "DSA-5532-1",
            affected(
                "Debian:12",
                "openssl",
                osv_range(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")),
            ),
            severity=(("CVSS_V3", CVSS3_MEDIUM),),
            published="2024-02-01T00:00:00Z",
        ),
        record(
            "GHSA-lllll-oooo-dddd",
            affected(
                "npm",
                "lodash",
                osv_range(("introduced", "0"), ("fixed", "4.17.21")),
            ),
            severity=(("CVSS_V3", CVSS3_CRITICAL),),
            published="2021-02-15T00:00:00Z",
        ),
        record(
            "OSV-WITHDRAWN",
            affected("PyPI", "requests", osv_range(("introduced", "0"))),
            withdrawn="2024-05-01T00:00:00Z",
        ),
    ]


EOL_DATA = {
    "nginx": [{"cycle": "1.18", "eol": "2021-04-20", "latest": "1.18.0"}],
    "php": [{"cycle": "7.4", "eol": "2022-11-28", "latest": "7.4.33"}],
    "debian": {
        "result": {
            "releases": [
                {"name": "12", "isEol": False, "eolFrom": "2028-06-30", "latest": {"name": "12.8"}}
            ]
        }
    },
    "django": [{"cycle": "4.2", "eol": "2027-04-30", "latest": "4.2.16"}],
}


class Host:
    """A host's files, an advisory index and an HTTP server, and the check run against them."""

    def __init__(self, root: Path, web: ScriptedHttpServer, store: SqlStore) -> None:
        self.root = root
        self.store = store
        (root / "os-release").write_text(OS_RELEASE)
        (root / "status").write_text(DPKG_STATUS)
        (root / "requirements.txt").write_text(REQUIREMENTS)
        (root / "sbom.cdx.json").write_text(json.dumps(SBOM))
        eol = root / "eol"
        eol.mkdir()
        for product, document in EOL_DATA.items():
            (eol / f"{product}.json").write_text(json.dumps(document))
        self.index = root / "advisories.db"
        build_index([write_directory(root / "osv", osv_documents())], self.index)
        web.replies["/"] = Reply(200, {"Server": "nginx/1.18.0", "X-Powered-By": "PHP/7.4.3"})
        self.target = Target("shop", url=web.url)
        self.params = PatchLevelParams.model_validate(
            {
                "sources": [
                    {
                        "name": "os",
                        "dpkg_status": str(root / "status"),
                        "os_release": str(root / "os-release"),
                    },
                    {"name": "python", "requirements": str(root / "requirements.txt")},
                    {"name": "sbom", "sbom": str(root / "sbom.cdx.json")},
                    {"name": "banner", "banner": True},
                ],
                "advisories": str(self.index),
                "eol_data": str(eol),
                "os_release": str(root / "os-release"),
            }
        )

    def run(self, at: datetime = NOW) -> CheckRun:
        job = CheckJob(CheckKind.PATCH_LEVEL, self.target, self.params, timedelta(seconds=60))
        run = Runner(clock=ManualClock(at), egress=EgressPolicy()).run(job)
        assert run.status is RunStatus.OK, run.error_message
        self.store.record(run, STRICT)
        return run

    def open_findings(self) -> dict[tuple[str, str], Any]:
        found = self.store.findings(
            FindingQuery(target="shop", statuses=frozenset({FindingStatus.OPEN}))
        )
        return {(f.rule_id, f.subject): f for f in found}


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


@pytest.mark.integration
def test_vulnerable_eol_outdated_and_disclosed_components_are_found(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)

    run = host.run()
    found = host.open_findings()

    django = found[("PATCH-VULNERABLE", "python|django@4.2.1 CVE-2024-0001")]
    assert django.severity is Severity.CRITICAL
    assert "GHSA-aaaa-bbbb-cccc" in django.evidence
    assert "PYSEC-2024-1" in django.evidence
    assert "fixed in: 4.2.8" in django.evidence
    assert "cvss_v3" in django.evidence
    assert (
        sum(1 for rule, subject in found if "django@" in subject and rule == "PATCH-VULNERABLE")
        == 1
    )
    assert django.evidence.startswith("overdue: true")
    requests = found[("PATCH-VULNERABLE", "python|requests@2.30.0 GHSA-rrrr-eeee-qqqq")]
    assert requests.severity is Severity.HIGH
    assert "overdue" not in requests.evidence
    openssl = found[("PATCH-VULNERABLE", "os|libssl3@3.0.11-1~deb12u1 DSA-5532-1")]
    assert "source package openssl" in openssl.evidence
    assert openssl.evidence.startswith("overdue: true")
    assert not any(rule == "PATCH-OVERDUE" for rule, _ in found)
    assert ("PATCH-VULNERABLE", "sbom|lodash@4.17.20 GHSA-lllll-oooo-dddd") in found
    assert ("PATCH-VERSION-DISCLOSED", "banner|Server: nginx/1.18.0") in found
    nginx_eol = found[("PATCH-EOL", "banner|Server: nginx/1.18.0")]
    assert "low confidence" in nginx_eol.evidence
    assert ("PATCH-EOL", "banner|X-Powered-By: php/7.4.3") in found
    assert ("PATCH-OUTDATED", "python|django@4.2.1") in found
    assert not any(rule == "PATCH-EOL" and subject.startswith("os|") for rule, subject in found)

    assert run.output is not None
    samples = {(o.name, tuple(sorted(o.labels.items()))): o.value for o in run.output.observations}
    assert samples[("patch_vulnerabilities", (("severity", "critical"),))] == 2
    assert samples[("patch_overdue", (("severity", "critical"),))] == 2
    assert samples[("patch_packages", (("source", "os"),))] == 2
    assert samples[("patch_oldest_unpatched_age_seconds", ())] > 2 * 365 * 86400


def samples_of(run: CheckRun) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert run.output is not None
    return {(o.name, tuple(sorted(o.labels.items()))): o.value for o in run.output.observations}


@pytest.mark.integration
def test_a_vulnerability_past_its_deadline_is_one_finding_marked_overdue_and_raised(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    subject = ("PATCH-VULNERABLE", "python|requests@2.30.0 GHSA-rrrr-eeee-qqqq")
    host.run()
    before = host.open_findings()[subject]
    assert before.severity is Severity.HIGH
    assert "overdue" not in before.evidence

    run = host.run(NOW + timedelta(days=26))  # published NOW - 5 d, high: due after 30 d
    found = host.open_findings()

    after = found[subject]
    assert after.fingerprint == before.fingerprint
    assert after.severity is Severity.CRITICAL
    assert after.evidence.startswith("overdue: true")
    due = NOW - timedelta(days=5) + timedelta(days=30)
    assert f"deadline {due:%Y-%m-%d}, 1 day(s) past it" in after.evidence
    assert after.title.startswith("[overdue 1 d] requests 2.30.0")
    assert [key for key in found if "requests@" in key[1]] == [subject]
    assert not any(rule == "PATCH-OVERDUE" for rule, _ in found)
    samples = samples_of(run)
    assert samples[("patch_overdue", (("severity", "high"),))] == 1
    assert samples[("patch_vulnerabilities", (("severity", "high"),))] == 1


@pytest.mark.integration
def test_an_overdue_vulnerability_carries_an_overdue_label_that_routes_match(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    hook = {"url": "http://127.0.0.1:9/h", "secret": "s"}
    config = AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "patch-desk", "webhook": hook},
                {"name": "everything", "webhook": hook},
            ],
            "routes": [
                {
                    "match": {"labels": {"overdue": "true"}},
                    "receivers": ["patch-desk"],
                    "group_wait": "0s",
                    "group_by": ["fingerprint"],
                },
                {"receivers": ["everything"], "group_wait": "0s", "group_by": ["fingerprint"]},
            ],
        }
    )
    host.run()

    result = run_tick(store, config, ManualClock(NOW + timedelta(minutes=1)))

    routed = {
        alert.subject: notification.receiver
        for notification in result.notifications
        for alert in notification.firing
        if alert.rule_id == "PATCH-VULNERABLE"
    }
    assert routed["python|django@4.2.1 CVE-2024-0001"] == "patch-desk"
    assert routed["os|libssl3@3.0.11-1~deb12u1 DSA-5532-1"] == "patch-desk"
    assert routed["python|requests@2.30.0 GHSA-rrrr-eeee-qqqq"] == "everything"


@pytest.mark.integration
def test_a_configured_overdue_severity_replaces_the_one_step_raise(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    host.params = host.params.model_copy(update={"overdue_severity": Severity.HIGH})

    host.run()
    openssl = host.open_findings()[("PATCH-VULNERABLE", "os|libssl3@3.0.11-1~deb12u1 DSA-5532-1")]

    assert openssl.severity is Severity.HIGH  # medium, overdue
    assert "severity raised to high" in openssl.evidence


@pytest.mark.integration
def test_an_index_older_than_the_maximum_age_is_a_finding_and_its_age_is_exported_per_source(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    osv = tmp_path / "osv"
    build_index([osv], host.index, clock=lambda: NOW - timedelta(days=6))
    fresh = host.run()
    assert not any(rule == "PATCH-ADVISORIES-STALE" for rule, _ in host.open_findings())
    assert samples_of(fresh)[("patch_advisories_age_seconds", (("source", str(osv)),))] == (
        6 * 86400
    )

    build_index([osv], host.index, clock=lambda: NOW - timedelta(days=8))
    stale = host.run()

    finding = host.open_findings()[("PATCH-ADVISORIES-STALE", str(host.index))]
    assert finding.severity is Severity.MEDIUM
    assert "8 day(s) old" in finding.title
    assert str(osv) in finding.evidence
    assert "maximum age is 7 day(s)" in finding.evidence
    assert samples_of(stale)[("patch_advisories_age_seconds", (("source", str(osv)),))] == (
        8 * 86400
    )


@pytest.mark.integration
def test_broken_sources_are_named_and_leave_their_findings_untouched(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    host.run()
    before = host.open_findings()
    assert ("PATCH-VULNERABLE", "sbom|lodash@4.17.20 GHSA-lllll-oooo-dddd") in before

    (tmp_path / "sbom.cdx.json").write_text(json.dumps(SBOM)[:40])
    (tmp_path / "status").write_text(DPKG_STATUS + "\nPackage: broken\ngarbage line here\n")
    for _ in range(2):
        host.run()
    after = host.open_findings()

    sbom = after[("PATCH-SOURCE-UNAVAILABLE", "sbom")]
    assert "sbom.cdx.json" in sbom.evidence
    assert "line 1" in sbom.evidence
    dpkg = after[("PATCH-SOURCE-UNAVAILABLE", "os")]
    assert "status" in dpkg.evidence
    assert "broken" in dpkg.evidence
    kept = {key for key in before if key[1].startswith(("sbom|", "os|"))}
    assert kept <= set(after), "findings of a source that failed were resolved"
    assert ("PATCH-VULNERABLE", "python|django@4.2.1 CVE-2024-0001") in after


@pytest.mark.integration
def test_a_missing_advisory_index_is_a_misconfiguration_naming_the_fix(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    host.index.unlink()
    job = CheckJob(CheckKind.PATCH_LEVEL, host.target, host.params, timedelta(seconds=60))

    run = Runner(egress=EgressPolicy()).run(job)

    assert run.status is RunStatus.ERROR
    assert "apivigil advisories update" in (run.error_message or "")


@pytest.mark.e2e
def test_cli_builds_the_index_and_keeps_the_old_one_when_a_dump_is_a_zip_bomb(
    tmp_path: Path,
) -> None:
    osv = write_directory(tmp_path / "osv", osv_documents())
    index = tmp_path / "advisories.db"
    built = run_cli("advisories", "update", "--from", str(osv), "--index", str(index))
    assert built.returncode == 0, built.stderr
    assert "records" in built.stdout
    before = index.read_bytes()

    bomb = tmp_path / "all.zip"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("GHSA-bomb.json", "w") as member,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(64):
            member.write(chunk)
    refused = run_cli("advisories", "update", "--from", str(bomb), "--index", str(index))

    assert refused.returncode == 2
    assert "all.zip" in refused.stderr
    assert "GHSA-bomb.json" in refused.stderr
    assert index.read_bytes() == before


@pytest.mark.e2e
def test_inventory_show_prints_every_source(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "targets": [
                {
                    "name": "shop",
                    "url": web.url,
                    "checks": {
                        "patch_level": host.params.model_dump(mode="json", exclude_defaults=True)
                    },
                }
            ]
        },
    )

    shown = run_cli("inventory", "show", "shop", "--config", str(config))

    assert shown.returncode == 0, shown.stderr
    for expected in (
        "libssl3",
        "openssl",
        "Debian:12",
        "django",
        "4.2.1",
        "lodash",
        "nginx",
        "1 unpinned requirement(s) not checked",
    ):
        assert expected in shown.stdout


class OsvApiFake:
    """Follows the OSV API's documented contract: POST /v1/querybatch answers, per query in
    order, the ids (and modified times) of the vulnerabilities; GET /v1/vulns/ID the record."""

    def __init__(self, server: ScriptedHttpServer, documents: list[dict[str, Any]]) -> None:
        self.documents = {d["id"]: d for d in documents}
        self.queries: list[dict[str, Any]] = []
        server.post_handlers["/v1/querybatch"] = self.querybatch
        for document in documents:
            server.replies[f"/v1/vulns/{document['id']}"] = Reply(
                200, {"Content-Type": "application/json"}, json.dumps(document).encode()
            )

    def querybatch(self, body: bytes) -> Reply:
        queries = json.loads(body)["queries"]
        self.queries.extend(queries)
        results = []
        for query in queries:
            name, ecosystem = query["package"]["name"], query["package"]["ecosystem"]
            vulns = [
                {"id": d["id"], "modified": d["modified"]}
                for d in self.documents.values()
                if any(
                    a["package"]["name"].lower() == name.lower()
                    and ecosystem.startswith(a["package"]["ecosystem"].split(":")[0])
                    for a in d["affected"]
                )
            ]
            results.append({"vulns": vulns} if vulns else {})
        return Reply(
            200, {"Content-Type": "application/json"}, json.dumps({"results": results}).encode()
        )


@pytest.mark.integration
def test_the_osv_api_adds_advisories_newer_than_the_offline_index(
    tmp_path: Path, web: ScriptedHttpServer, store: SqlStore
) -> None:
    host = Host(tmp_path, web, store)
    newer = record(
        "GHSA-newr-newr-newr",
        affected("PyPI", "requests", osv_range(("introduced", "0"), ("fixed", "2.32.0"))),
        severity=(("CVSS_V3", CVSS3_MEDIUM),),
        published="2026-11-20T00:00:00Z",
    )
    with ScriptedHttpServer() as api:
        fake = OsvApiFake(api, [*osv_documents(), newer])
        host.params = PatchLevelParams.model_validate(
            {**host.params.model_dump(), "osv_api": {"url": api.url}}
        )

        host.run()

    found = host.open_findings()
    assert ("PATCH-VULNERABLE", "python|requests@2.30.0 GHSA-newr-newr-newr") in found
    assert ("PATCH-VULNERABLE", "python|requests@2.30.0 GHSA-rrrr-eeee-qqqq") in found
    assert (
        sum(1 for rule, subject in found if rule == "PATCH-VULNERABLE" and "django@" in subject)
        == 1
    )
    assert {"name": "openssl", "ecosystem": "Debian:12"} in [q["package"] for q in fake.queries]
