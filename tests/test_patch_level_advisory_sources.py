"""patch_level advisories as the sources publish them: JSON and YAML trees in the layouts of
the advisory repositories, zip dumps, records that cannot be read, and updates that would
lose what the index had. Every tree is written by the test."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.patch_level.advisories import (
    AdvisoryIndex,
    IndexRefused,
    build_index,
    parse_record,
)
from checks.patch_level.evaluate import evaluate
from checks.patch_level.facts import PatchRaw, SourceInventory, SourceMatch
from checks.patch_level.packages import Ecosystem, InstalledPackage
from checks.patch_level.params import PatchLevelParams
from monitor.model import Finding
from tests.support.daemon_process import run_cli
from tests.support.osv_records import (
    CVSS3_CRITICAL,
    affected,
    github_checkout,
    golang_checkout,
    osv_range,
    pypa_checkout,
    record,
    rustsec_checkout,
    write_json,
    write_yaml,
    write_zip,
)


def package(ecosystem: Ecosystem, name: str, version: str) -> InstalledPackage:
    return InstalledPackage(ecosystem, name, version, "test")


def pypi(record_id: str, name: str, fixed: str, **extra: Any) -> dict[str, Any]:
    return record(
        record_id, affected("PyPI", name, osv_range(("introduced", "0"), ("fixed", fixed))), **extra
    )


def pypa_records() -> list[dict[str, Any]]:
    return [pypi(f"PYSEC-2024-{n}", f"pkg{n}", "2.0") for n in range(1, 4)]


def github_records() -> list[dict[str, Any]]:
    return [
        record(
            "GHSA-aaaa-bbbb-0001",
            affected("npm", "left-pad", osv_range(("introduced", "0"), ("fixed", "1.3.0"))),
        ),
        pypi("GHSA-aaaa-bbbb-0002", "pkg9", "1.1"),
    ]


def golang_records() -> list[dict[str, Any]]:
    return [
        record(
            "GO-2024-0001",
            affected("Go", "golang.org/x/net", osv_range(("introduced", "0"), ("fixed", "0.23.0"))),
        )
    ]


def rustsec_records() -> list[dict[str, Any]]:
    return [
        record(
            "RUSTSEC-2024-0001",
            affected("crates.io", "hyper", osv_range(("introduced", "0"), ("fixed", "0.14.10"))),
        )
    ]


def matched_ids(index_path: Path, *packages: InstalledPackage) -> set[str]:
    with AdvisoryIndex.open(index_path) as index:
        return {match.advisory.id for match in index.match(list(packages)).matches}


# ---------------------------------------------------------------- layouts


@pytest.mark.unit
def test_a_pypa_checkout_of_yaml_records_is_indexed_and_its_tooling_is_not_read(
    tmp_path: Path,
) -> None:
    root = pypa_checkout(tmp_path / "advisory-database", pypa_records())

    stats = build_index([root], tmp_path / "index.db")

    assert stats.records == 3
    assert stats.rejected == ()
    (source,) = stats.sources
    assert "pypa/advisory-database (vulns/)" in source.layout
    assert (source.documents, source.valid) == (3, 3)
    installed = [package(Ecosystem.PYPI, f"pkg{n}", "1.0") for n in range(1, 4)]
    assert matched_ids(tmp_path / "index.db", *installed) == {
        "PYSEC-2024-1",
        "PYSEC-2024-2",
        "PYSEC-2024-3",
    }


@pytest.mark.unit
def test_the_vulns_folder_of_a_pypa_checkout_reads_as_a_plain_yaml_tree(tmp_path: Path) -> None:
    root = pypa_checkout(tmp_path / "advisory-database", pypa_records())

    stats = build_index([root / "vulns"], tmp_path / "index.db")

    assert (stats.records, stats.rejected) == (3, ())
    assert stats.sources[0].layout == "files"


@pytest.mark.unit
def test_a_github_checkout_reads_only_reviewed_advisories(tmp_path: Path) -> None:
    root = github_checkout(tmp_path / "advisory-database", github_records())

    stats = build_index([root], tmp_path / "index.db")

    assert (stats.records, stats.rejected) == (2, ())
    assert "github/advisory-database" in stats.sources[0].layout
    assert matched_ids(tmp_path / "index.db", package(Ecosystem.NPM, "left-pad", "1.0.0")) == {
        "GHSA-aaaa-bbbb-0001"
    }


@pytest.mark.unit
def test_a_golang_vulndb_checkout_reads_data_osv_and_not_its_yaml_reports(tmp_path: Path) -> None:
    root = golang_checkout(tmp_path / "vulndb", golang_records())

    stats = build_index([root], tmp_path / "index.db")

    assert (stats.records, stats.rejected) == (1, ())
    assert "golang/vulndb (data/osv/)" in stats.sources[0].layout
    assert matched_ids(tmp_path / "index.db", package(Ecosystem.GO, "golang.org/x/net", "v0.1.0"))


@pytest.mark.unit
def test_a_rustsec_osv_export_is_indexed(tmp_path: Path) -> None:
    root = rustsec_checkout(tmp_path / "advisory-db", rustsec_records())

    stats = build_index([root], tmp_path / "index.db")

    assert (stats.records, stats.rejected) == (1, ())
    assert "RustSec" in stats.sources[0].layout
    assert matched_ids(tmp_path / "index.db", package(Ecosystem.CRATES_IO, "hyper", "0.14.1")) == {
        "RUSTSEC-2024-0001"
    }


@pytest.mark.e2e
def test_sources_of_every_kind_mix_in_one_update_from_the_cli(tmp_path: Path) -> None:
    pypa = pypa_checkout(tmp_path / "pypa", pypa_records())
    github = github_checkout(tmp_path / "github", github_records())
    golang = golang_checkout(tmp_path / "golang", golang_records())
    rustsec = rustsec_checkout(tmp_path / "rustsec", rustsec_records())
    dump = write_zip(tmp_path / "osv" / "PyPI" / "all.zip", [pypi("PYSEC-2023-7", "zipped", "3")])
    single = write_yaml(tmp_path / "one.yml", pypi("PYSEC-2023-8", "single", "3"))
    index = tmp_path / "index.db"
    report = tmp_path / "report.json"

    sources = [pypa, github, golang, rustsec, dump, single]
    arguments = [argument for source in sources for argument in ("--from", str(source))]
    built = run_cli(
        "advisories", "update", *arguments, "--index", str(index), "--report", str(report)
    )

    assert built.returncode == 0, built.stderr
    assert "9 records" in built.stdout
    assert "PyPI 6" in built.stdout
    assert "Go 1" in built.stdout
    assert "crates.io 1" in built.stdout
    assert "npm 1" in built.stdout
    assert "0 skipped" in built.stdout
    written = json.loads(report.read_text())
    assert written["updated"] is True
    assert written["records"] == 9
    assert [s["valid"] for s in written["sources"]] == [3, 2, 1, 1, 1, 1]
    status = run_cli("advisories", "status", "--index", str(index))
    assert status.returncode == 0, status.stderr
    assert "9 records" in status.stdout
    assert "0 d 0 h ago" in status.stdout
    for source in sources:
        assert f"source {source}" in status.stdout
    assert "pypa as pypa/advisory-database (vulns/): 3 valid, 0 skipped" in status.stdout


# ---------------------------------------------------------------- timestamps


@pytest.mark.unit
def test_records_with_year_1_and_year_9999_timestamps_are_indexed_and_matched(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    write_json(
        feed / "PYSEC-1.json",
        pypi("PYSEC-1", "ancient", "2.0", modified="0001-01-01T00:00:00Z", published=None),
    )
    write_yaml(
        feed / "PYSEC-2.yaml",
        pypi("PYSEC-2", "future", "2.0", modified="9999-12-31T23:59:59Z", published=None),
    )
    (feed / "PYSEC-3.yaml").write_text(
        "id: PYSEC-3\nmodified: 0001-01-01T00:00:00Z\naffected:\n- package: {name: hand, "
        "ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: '0'\n"
        "    - fixed: '2.0'\n"
    )

    stats = build_index([feed], tmp_path / "index.db")

    assert (stats.records, stats.rejected) == (3, ())
    assert stats.sources[0].newest_modified == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    with AdvisoryIndex.open(tmp_path / "index.db") as index:
        matches = index.match(
            [
                package(Ecosystem.PYPI, "ancient", "1.0"),
                package(Ecosystem.PYPI, "future", "1.0"),
                package(Ecosystem.PYPI, "hand", "1.0"),
            ]
        ).matches
    fixes = {m.advisory.id: m.fix_published for m in matches}
    assert fixes["PYSEC-1"] == datetime(1, 1, 1, tzinfo=UTC)
    assert fixes["PYSEC-2"] == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert fixes["PYSEC-3"] == datetime(1, 1, 1, tzinfo=UTC)


@pytest.mark.unit
def test_a_time_that_leaves_the_years_1_to_9999_in_utc_is_a_named_schema_error(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    write_json(feed / "ok.json", pypi("PYSEC-OK", "fine", "2.0"))
    write_json(
        feed / "early.json", pypi("PYSEC-EARLY", "x", "2", modified="0001-01-01T00:00:00+01:00")
    )

    stats = build_index([feed], tmp_path / "index.db")

    assert stats.records == 1
    (rejected,) = stats.rejected
    assert rejected.record_id == "PYSEC-EARLY"
    assert "outside the years 1-9999" in rejected.problem


# ---------------------------------------------------------------- records that cannot be read


def unreadable_records(folder: Path) -> dict[str, str]:
    """File name -> a word the reason for skipping it must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    depth = 100_000
    (folder / "deep.json").write_text('{"id": "DEEP-1", "x": ' + "[" * depth + "]" * depth + "}")
    (folder / "deep.yaml").write_text("id: DEEP-2\nx: " + "[" * depth + "]" * depth + "\n")
    (folder / "latin1.json").write_bytes(b'{"id": "LATIN-1", "summary": "caf\xe9"}')
    (folder / "latin1.yaml").write_bytes(b"id: LATIN-2\nsummary: caf\xe9\n")
    (folder / "broken.yaml").write_text("id: BROKEN-1\naffected: [\n  - {\n")
    (folder / "laughs.yaml").write_text(
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 10)}]\n"
            for n in range(8)
        )
    )
    (folder / "binary.yaml").write_text(
        "id: BIN-1\nmodified: 2024-01-01T00:00:00Z\nx: !!binary AAAA\n"
    )
    (folder / "list.yaml").write_text("- id: LIST-1\n")
    (folder / "empty.json").write_text("")
    return {
        "deep.json": "recursion limit exceeded",
        "deep.yaml": "nesting depth",
        "latin1.json": "JSON",
        "latin1.yaml": "YAML",
        "broken.yaml": "YAML",
        "laughs.yaml": "expands",
        "binary.yaml": "no place",
        "list.yaml": "object",
        "empty.json": "JSON",
    }


@pytest.mark.unit
def test_each_unreadable_record_is_skipped_by_name_and_the_rest_is_indexed(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    expected = unreadable_records(feed)
    write_json(feed / "good.json", pypi("PYSEC-GOOD", "good", "2.0"))
    write_yaml(feed / "good.yaml", pypi("PYSEC-GOOD-2", "good", "3.0"))
    os.mkfifo(feed / "pipe.json")  # opening it would block the build for good

    stats = build_index([feed], tmp_path / "index.db")

    assert stats.records == 2
    assert "1 (not a regular file)" in stats.sources[0].ignored
    reasons = {Path(r.origin).name: r.problem for r in stats.rejected}
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    assert max(len(problem) for problem in reasons.values()) < 400


@pytest.mark.e2e
def test_a_directory_of_only_unreadable_records_is_refused_and_the_old_index_kept(
    tmp_path: Path,
) -> None:
    index = tmp_path / "index.db"
    build_index([pypa_checkout(tmp_path / "pypa", pypa_records())], index)
    before = index.read_bytes()
    bad = tmp_path / "bad"
    expected = unreadable_records(bad)
    report = tmp_path / "report.json"

    refused = run_cli(
        "advisories", "update", "--from", str(bad), "--index", str(index), "--report", str(report)
    )

    assert refused.returncode == 2
    assert "no valid OSV record" in refused.stderr
    assert f"{bad} as files: {len(expected)} record file(s), {len(expected)} rejected" in (
        " ".join(refused.stderr.split())
    )
    assert "*.yaml" in refused.stderr
    assert "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert index.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".building")] == []
    written = json.loads(report.read_text())
    assert written["updated"] is False
    assert {Path(s["file"]).name for s in written["skipped"]} == set(expected)
    assert {s["id"] for s in written["skipped"]} >= {None}


@pytest.mark.unit
@pytest.mark.parametrize(
    "files", [{}, {"notes.txt": "hello", "data.csv": "a,b", "README.md": "# x"}]
)
def test_a_source_with_no_record_files_is_refused_naming_what_it_holds(
    tmp_path: Path, files: dict[str, str]
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)

    with pytest.raises(IndexRefused) as caught:
        build_index([source], tmp_path / "index.db")

    message = str(caught.value)
    assert "0 record file(s)" in message
    assert "*.json, *.yaml or *.yml" in message
    if files:
        assert all(part in message for part in ("1 .txt", "1 .csv", "1 .md"))
    assert not (tmp_path / "index.db").exists()


@pytest.mark.e2e
def test_an_update_losing_more_than_half_the_records_is_refused_unless_forced(
    tmp_path: Path,
) -> None:
    index = tmp_path / "index.db"
    full = [pypi(f"PYSEC-{n}", f"p{n}", "2") for n in range(10)]
    github_checkout(tmp_path / "full", full)
    build_index([tmp_path / "full"], index)
    before = index.read_bytes()
    partial = github_checkout(tmp_path / "partial", full[:4])

    refused = run_cli("advisories", "update", "--from", str(partial), "--index", str(index))
    assert refused.returncode == 2
    assert "replace 10 records with 4, a drop of 60%" in " ".join(refused.stderr.split())
    assert index.read_bytes() == before

    allowed = run_cli(
        "advisories", "update", "--from", str(partial), "--index", str(index), "--max-drop", "0.7"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "4 records" in allowed.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    forced = run_cli("advisories", "update", "--from", str(empty), "--index", str(index), "--force")
    assert forced.returncode == 0, forced.stderr
    with AdvisoryIndex.open(index) as opened:
        assert opened.metadata.records == 0


@pytest.mark.e2e
def test_status_of_a_missing_index_asks_for_an_update(tmp_path: Path) -> None:
    status = run_cli("advisories", "status", "--index", str(tmp_path / "none.db"))

    assert status.returncode == 2
    assert "apivigil advisories update" in status.stderr


# ---------------------------------------------------------------- severity through aliases


@pytest.mark.unit
def test_a_record_without_cvss_takes_the_severity_of_an_alias_and_names_it(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    write_yaml(
        feed / "PYSEC-2024-9.yaml",
        pypi("PYSEC-2024-9", "flask", "3.0", aliases=("CVE-2024-9",)),
    )
    write_json(
        feed / "GHSA-ffff-gggg-hhhh.json",
        pypi(
            "GHSA-ffff-gggg-hhhh",
            "flask",
            "3.0",
            aliases=("CVE-2024-9",),
            severity=(("CVSS_V3", CVSS3_CRITICAL),),
        ),
    )
    build_index([feed], tmp_path / "index.db")

    with AdvisoryIndex.open(tmp_path / "index.db") as index:
        (match,) = index.match([package(Ecosystem.PYPI, "flask", "2.0")]).matches

    assert match.advisory.id == "CVE-2024-9"
    assert match.advisory.severity_label == "critical"
    assert match.advisory.severity_from == "GHSA-ffff-gggg-hhhh"


@pytest.mark.unit
def test_parse_record_reads_yaml_as_json_does() -> None:
    document = pypi("PYSEC-Y", "same", "1.0", severity=(("CVSS_V3", CVSS3_CRITICAL),))
    path = Path("/nonexistent/PYSEC-Y.yaml")
    from_yaml = parse_record(yaml.safe_dump(document).encode(), str(path), is_yaml=True)

    assert from_yaml == parse_record(json.dumps(document).encode(), "PYSEC-Y.json")


def evaluated(index_path: Path, *packages: InstalledPackage) -> dict[str, Finding]:
    with AdvisoryIndex.open(index_path) as index:
        matches = index.match(list(packages)).matches
    raw = PatchRaw(
        sources=(SourceInventory("python", packages),),
        failures=(),
        matches=tuple(SourceMatch("python", match) for match in matches),
        match_notes=(),
        undetermined=(),
        operating_system=None,
        eol={},
        advisories_built_at=None,
    )
    params = PatchLevelParams.model_validate({"sources": [{"requirements": "r.txt"}]})
    output = evaluate(raw, params, datetime(2026, 12, 1, tzinfo=UTC))
    return {f.subject.split("|")[1].split("@")[0]: f for f in output.findings}


@pytest.mark.unit
def test_findings_name_the_alias_that_gave_the_severity_or_the_configured_default(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    write_yaml(feed / "PYSEC-1.yaml", pypi("PYSEC-1", "rated", "3.0", aliases=("CVE-2024-1",)))
    write_json(
        feed / "GHSA-1.json",
        pypi(
            "GHSA-1",
            "other",
            "3.0",
            aliases=("CVE-2024-1",),
            severity=(("CVSS_V3", CVSS3_CRITICAL),),
        ),
    )
    write_yaml(feed / "PYSEC-2.yaml", pypi("PYSEC-2", "unrated", "3.0", aliases=("CVE-2024-2",)))
    build_index([feed], tmp_path / "index.db")

    found = evaluated(
        tmp_path / "index.db",
        package(Ecosystem.PYPI, "rated", "1.0"),
        package(Ecosystem.PYPI, "unrated", "1.0"),
    )

    assert "severity from cvss_v3 of GHSA-1: CVSS 9.8" in found["rated"].evidence
    assert "rated by none of CVE-2024-2 nor PYSEC-2; the configured default" in (
        found["unrated"].evidence
    )


@pytest.mark.unit
def test_fixes_published_in_the_years_1_and_9999_are_judged_without_overflow(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    write_json(feed / "a.json", pypi("PYSEC-A", "ancient", "2", published="0001-01-01T00:00:00Z"))
    write_json(feed / "b.json", pypi("PYSEC-B", "future", "2", published="9999-12-31T23:59:59Z"))
    build_index([feed], tmp_path / "index.db")

    found = evaluated(
        tmp_path / "index.db",
        package(Ecosystem.PYPI, "ancient", "1"),
        package(Ecosystem.PYPI, "future", "1"),
    )

    assert found["ancient"].evidence.startswith("overdue: true")
    assert "overdue" not in found["future"].evidence
