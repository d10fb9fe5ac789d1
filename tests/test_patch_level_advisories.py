"""patch_level advisories: OSV parsing, version ordering, matching, alias merging, the index."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.patch_level.advisories import (
    AdvisoryIndex,
    AdvisoryIndexError,
    MatchResult,
    MemoryCatalogue,
    OsvFormatError,
    UnorderableVersion,
    ZipLimits,
    build_index,
    choose_severity,
    compare,
    match_inventory,
    parse_record,
    version_key,
)
from checks.patch_level.packages import Ecosystem, InstalledPackage, SeveritySource
from tests.support.daemon_process import run_cli
from tests.support.osv_records import (
    CVSS3_CRITICAL,
    CVSS3_MEDIUM,
    CVSS4_HIGH,
    affected,
    events,
    osv_range,
    record,
    write_directory,
    write_zip,
)

# ---------------------------------------------------------------- builders


def package(
    ecosystem: Ecosystem,
    name: str,
    version: str,
    release: str | None = None,
    source_name: str | None = None,
) -> InstalledPackage:
    return InstalledPackage(
        ecosystem, name, version, "test", release=release, source_name=source_name
    )


def match_records(documents: list[dict[str, Any]], *packages: InstalledPackage) -> MatchResult:
    records = [parse_record(json.dumps(d).encode(), f"{d['id']}.json") for d in documents]
    return match_inventory(packages, MemoryCatalogue.from_records(records))


def affected_versions(
    documents: list[dict[str, Any]], ecosystem: Ecosystem, name: str, *versions: str
) -> set[str]:
    result = match_records(documents, *(package(ecosystem, name, v) for v in versions))
    return {match.package.version for match in result.matches}


# ---------------------------------------------------------------- version ordering


@pytest.mark.unit
def test_debian_epoch_outranks_upstream_version_and_tilde_sorts_before_release() -> None:
    assert compare(Ecosystem.DEBIAN, "1:1.0", "2.0") == 1
    assert compare(Ecosystem.DEBIAN, "1.0~rc1", "1.0") == -1
    assert compare(Ecosystem.UBUNTU, "1.2-1ubuntu0.1", "1.2-1") == 1


@pytest.mark.unit
def test_rpm_epoch_outranks_version_and_release_compares_numerically() -> None:
    assert compare(Ecosystem.RED_HAT, "1:1.0-1", "0:2.0-1") == 1
    assert compare(Ecosystem.ROCKY, "1.0-2.el9", "1.0-10.el9") == -1
    assert compare(Ecosystem.ALMA, "2.0-1", "2.0-1") == 0


@pytest.mark.unit
def test_alpine_revisions_compare_numerically() -> None:
    assert compare(Ecosystem.ALPINE, "1.2.3-r2", "1.2.3-r10") == -1


@pytest.mark.unit
def test_pep440_orders_dev_pre_post_and_local_and_ignores_trailing_zeros() -> None:
    ordered = ["1.0.dev1", "1.0a1", "1.0rc1", "1.0", "1.0+local.1", "1.0.post1", "1.1"]
    keys = [version_key(Ecosystem.PYPI, v) for v in ordered]
    assert keys == sorted(keys)
    assert compare(Ecosystem.PYPI, "2.2", "2.2.0") == 0


@pytest.mark.unit
def test_semver_orders_pre_releases_before_the_release_and_ignores_build_metadata() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.1"]
    keys = [version_key(Ecosystem.NPM, v) for v in ordered]
    assert keys == sorted(keys)
    assert compare(Ecosystem.CRATES_IO, "1.0.0+build.5", "1.0.0") == 0


@pytest.mark.unit
def test_go_versions_compare_equal_with_and_without_v_prefix() -> None:
    assert compare(Ecosystem.GO, "v1.2.3", "1.2.3") == 0
    assert compare(Ecosystem.GO, "v1.2.3", "1.10.0") == -1


@pytest.mark.unit
@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("5.2.20.RELEASE", "5.2.20"),
        ("5.2.20-RELEASE", "5.2.20"),
        ("1.0.GA", "1"),
        ("1.0-ga", "1.0"),
        ("4.1.100.Final", "4.1.100"),
        ("9.0.0-M26", "9.0.0.M26"),
        ("2.0.0.CR2", "2.0.0-RC2"),
        ("1.0-cr1", "1.0-rc1"),
        ("1.0-alpha1", "1.0.alpha1"),
        ("1.0a1", "1.0-alpha-1"),
        ("1.0", "1.0.0"),
    ],
)
def test_maven_versions_equal_under_comparable_version_compare_equal(left: str, right: str) -> None:
    assert compare(Ecosystem.MAVEN, left, right) == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("5.2.20.RELEASE", "5.2.21"),
        ("5.2.19", "5.2.20.RELEASE"),
        ("9.0.0.M26", "9.0.0"),
        ("9.0.0-M26", "9.0.0-RC1"),
        ("1.0-SNAPSHOT", "1.0"),
        ("1.0", "1.0-sp1"),
        ("4.1.99.Final", "4.1.100.Final"),
    ],
)
def test_maven_qualifiers_order_as_comparable_version_does(lower: str, higher: str) -> None:
    assert compare(Ecosystem.MAVEN, lower, higher) == -1


@pytest.mark.unit
def test_maven_snapshot_sorts_before_release() -> None:
    assert compare(Ecosystem.MAVEN, "1.0-SNAPSHOT", "1.0") == -1


@pytest.mark.unit
def test_unparseable_version_raises_unorderable_version_naming_it() -> None:
    with pytest.raises(UnorderableVersion, match="not a version"):
        version_key(Ecosystem.PYPI, "not a version")


# ---------------------------------------------------------------- range evaluation


@pytest.mark.unit
def test_multiple_ranges_are_ored_and_unsorted_events_are_sorted_first() -> None:
    documents = [
        record(
            "PYSEC-2024-1",
            affected(
                "PyPI",
                "flask",
                osv_range(
                    ("fixed", "1.2"), ("introduced", "2.0"), ("introduced", "1.0"), ("fixed", "2.3")
                ),
                osv_range(("introduced", "3.0"), ("fixed", "3.1")),
            ),
        )
    ]
    versions = ["0.9", "1.0", "1.1", "1.2", "1.5", "2.2", "2.3", "3.0", "3.1"]
    found = affected_versions(documents, Ecosystem.PYPI, "flask", *versions)
    assert found == {"1.0", "1.1", "2.2", "3.0"}


@pytest.mark.unit
def test_introduced_zero_affects_everything_before_the_fix() -> None:
    documents = [
        record(
            "GHSA-aaaa-bbbb-cccc",
            affected("npm", "lodash", osv_range(("introduced", "0"), ("fixed", "4.17.21"))),
        )
    ]
    assert affected_versions(documents, Ecosystem.NPM, "lodash", "0.0.1", "4.17.20", "4.17.21") == {
        "0.0.1",
        "4.17.20",
    }


@pytest.mark.unit
def test_last_affected_closes_the_range_after_its_version() -> None:
    documents = [
        record(
            "GHSA-1",
            affected("PyPI", "h2", osv_range(("introduced", "0"), ("last_affected", "1.4"))),
        )
    ]
    assert affected_versions(documents, Ecosystem.PYPI, "h2", "1.3", "1.4", "1.4.1") == {
        "1.3",
        "1.4",
    }


@pytest.mark.unit
def test_limit_caps_a_range_without_a_fix_and_star_means_unlimited() -> None:
    documents = [
        record(
            "GHSA-2",
            affected(
                "npm", "capped", osv_range(("introduced", "1.0.0"), ("limit", "2.0.0")), versions=()
            ),
        ),
        record(
            "GHSA-3", affected("npm", "open", osv_range(("introduced", "1.0.0"), ("limit", "*")))
        ),
    ]
    assert affected_versions(
        documents, Ecosystem.NPM, "capped", "0.9.0", "1.5.0", "2.0.0", "2.1.0"
    ) == {"1.5.0"}
    assert affected_versions(documents, Ecosystem.NPM, "open", "0.9.0", "9.0.0") == {"9.0.0"}


@pytest.mark.unit
def test_explicit_versions_list_matches_exactly_those_versions() -> None:
    documents = [record("PYSEC-2", affected("PyPI", "listed", versions=("1.0.5", "1.0.7")))]
    assert affected_versions(documents, Ecosystem.PYPI, "listed", "1.0.5", "1.0.6", "1.0.7") == {
        "1.0.5",
        "1.0.7",
    }


@pytest.mark.unit
def test_git_ranges_are_ignored() -> None:
    git = {
        "type": "GIT",
        "repo": "https://example.test/repo.git",
        "events": events(("introduced", "0")),
    }
    documents = [record("OSV-1", affected("PyPI", "gitonly", git))]
    assert affected_versions(documents, Ecosystem.PYPI, "gitonly", "1.0") == set()


@pytest.mark.unit
def test_withdrawn_record_never_matches() -> None:
    documents = [
        record(
            "GHSA-4",
            affected("PyPI", "gone", osv_range(("introduced", "0"))),
            withdrawn="2024-05-01T00:00:00Z",
        )
    ]
    assert affected_versions(documents, Ecosystem.PYPI, "gone", "1.0") == set()


@pytest.mark.unit
def test_pypi_prerelease_before_the_introduced_release_is_outside_the_range() -> None:
    documents = [
        record(
            "PYSEC-3", affected("PyPI", "pre", osv_range(("introduced", "2.0"), ("fixed", "2.1")))
        )
    ]
    assert affected_versions(
        documents, Ecosystem.PYPI, "pre", "2.0rc1", "2.0", "2.1rc1", "2.1"
    ) == {
        "2.0",
        "2.1rc1",
    }


@pytest.mark.unit
def test_semver_prerelease_sorts_before_its_release_in_ranges() -> None:
    documents = [
        record(
            "GHSA-5",
            affected(
                "npm", "beta-in", osv_range(("introduced", "0"), ("fixed", "1.0.0"), kind="SEMVER")
            ),
        ),
        record(
            "GHSA-6",
            affected(
                "npm",
                "beta-out",
                osv_range(("introduced", "1.0.0"), ("fixed", "1.1.0"), kind="SEMVER"),
            ),
        ),
    ]
    assert affected_versions(documents, Ecosystem.NPM, "beta-in", "1.0.0-beta") == {"1.0.0-beta"}
    assert affected_versions(documents, Ecosystem.NPM, "beta-out", "1.0.0-beta") == set()


@pytest.mark.unit
def test_pypi_versions_equal_with_trailing_zero_match_range_bounds() -> None:
    documents = [
        record(
            "PYSEC-4",
            affected("PyPI", "zeros", osv_range(("introduced", "2.2.0"), ("fixed", "2.3"))),
        ),
        record(
            "PYSEC-5",
            affected("PyPI", "fixedzero", osv_range(("introduced", "0"), ("fixed", "2.2.0"))),
        ),
    ]
    assert affected_versions(documents, Ecosystem.PYPI, "zeros", "2.2") == {"2.2"}
    assert affected_versions(documents, Ecosystem.PYPI, "fixedzero", "2.2") == set()


@pytest.mark.unit
def test_pypi_names_match_after_pep503_normalisation() -> None:
    documents = [
        record(
            "PYSEC-6",
            affected("PyPI", "Django", osv_range(("introduced", "0"), ("fixed", "4.2.1"))),
        ),
        record(
            "PYSEC-7",
            affected("PyPI", "zope.interface", osv_range(("introduced", "0"), ("fixed", "6.0"))),
        ),
    ]
    result = match_records(
        documents,
        package(Ecosystem.PYPI, "django", "4.2"),
        package(Ecosystem.PYPI, "zope-interface", "5.0"),
        package(Ecosystem.PYPI, "Zope_Interface", "5.1"),
    )
    assert sorted((m.package.name, m.advisory.id) for m in result.matches) == [
        ("Zope_Interface", "PYSEC-7"),
        ("django", "PYSEC-6"),
        ("zope-interface", "PYSEC-7"),
    ]


@pytest.mark.unit
def test_npm_and_go_names_keep_case_but_match_a_producers_lower_cased_spelling() -> None:
    documents = [
        record("GHSA-7", affected("npm", "JSONStream", osv_range(("introduced", "0")))),
        record(
            "GO-2023-1",
            affected(
                "Go",
                "github.com/BurntSushi/toml",
                osv_range(("introduced", "0"), ("fixed", "1.2.0")),
            ),
        ),
    ]
    # as the record writes it, and lower-cased by a producer or purl library: both match
    assert affected_versions(documents, Ecosystem.NPM, "JSONStream", "1.0.0") == {"1.0.0"}
    assert affected_versions(documents, Ecosystem.NPM, "jsonstream", "1.0.0") == {"1.0.0"}
    assert affected_versions(documents, Ecosystem.GO, "github.com/burntsushi/toml", "v1.1.0") == {
        "v1.1.0"
    }
    # a name written in another mixed case is another package
    assert affected_versions(documents, Ecosystem.NPM, "JsonStream", "1.0.0") == set()
    assert affected_versions(documents, Ecosystem.GO, "github.com/burntsushi/toml", "v1.2.0") == (
        set()
    )


@pytest.mark.unit
def test_case_folded_lookup_works_against_the_built_index_too(tmp_path: Path) -> None:
    documents = [record("GHSA-7", affected("npm", "JSONStream", osv_range(("introduced", "0"))))]
    index_path = tmp_path / "advisories.db"
    build_index([write_directory(tmp_path / "osv", documents)], index_path)

    with AdvisoryIndex.open(index_path) as index:
        result = index.match([package(Ecosystem.NPM, "jsonstream", "1.0.0")])

    assert [m.advisory.id for m in result.matches] == ["GHSA-7"]


@pytest.mark.unit
def test_debian_advisories_match_the_source_package_of_the_release() -> None:
    documents = [
        record(
            "DSA-5532-1",
            affected(
                "Debian:12",
                "openssl",
                osv_range(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")),
            ),
        )
    ]
    bookworm = package(
        Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u1", release="12", source_name="openssl"
    )
    bullseye = package(
        Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u1", release="11", source_name="openssl"
    )
    unknown_release = package(
        Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u1", source_name="openssl"
    )
    binary_name_only = package(Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u1", release="12")
    result = match_records(documents, bookworm, bullseye, unknown_release, binary_name_only)
    # An unknown release is matched on purpose: over-reporting is safer than hiding.
    assert [m.package for m in result.matches] == [bookworm, unknown_release]
    assert result.matches[0].fixed_versions == ("3.0.11-1~deb12u2",)


@pytest.mark.unit
def test_alpine_and_ubuntu_releases_match_their_osv_spelling() -> None:
    documents = [
        record(
            "ALPINE-1",
            affected("Alpine:v3.19", "musl", osv_range(("introduced", "0"), ("fixed", "1.2.4-r3"))),
        ),
        record(
            "UBUNTU-1",
            affected(
                "Ubuntu:22.04:LTS",
                "curl",
                osv_range(("introduced", "0"), ("fixed", "7.81.0-1ubuntu1.15")),
            ),
        ),
    ]
    result = match_records(
        documents,
        package(Ecosystem.ALPINE, "musl", "1.2.4-r2", release="3.19"),
        package(Ecosystem.ALPINE, "musl", "1.2.4-r2", release="3.18"),
        package(
            Ecosystem.UBUNTU, "libcurl4", "7.81.0-1ubuntu1.14", release="22.04", source_name="curl"
        ),
        package(
            Ecosystem.UBUNTU, "libcurl4", "7.81.0-1ubuntu1.14", release="24.04", source_name="curl"
        ),
    )
    assert sorted((m.advisory.id, m.package.release) for m in result.matches) == [
        ("ALPINE-1", "3.19"),
        ("UBUNTU-1", "22.04"),
    ]


@pytest.mark.unit
def test_fixed_versions_are_those_after_the_installed_version_ascending() -> None:
    documents = [
        record(
            "GHSA-8",
            affected(
                "PyPI",
                "multi",
                osv_range(
                    ("introduced", "2.0"), ("fixed", "2.3"), ("introduced", "0"), ("fixed", "1.2")
                ),
                osv_range(("introduced", "3.0"), ("fixed", "3.0.1")),
            ),
        )
    ]
    result = match_records(
        documents, package(Ecosystem.PYPI, "multi", "1.1"), package(Ecosystem.PYPI, "multi", "2.1")
    )
    assert [m.fixed_versions for m in result.matches] == [("1.2", "2.3", "3.0.1"), ("2.3", "3.0.1")]


@pytest.mark.unit
def test_unorderable_installed_version_falls_back_to_the_versions_list_with_a_note() -> None:
    documents = [
        record(
            "PYSEC-8",
            affected(
                "PyPI",
                "odd",
                osv_range(("introduced", "0"), ("fixed", "2.0")),
                versions=("weird!build",),
            ),
        )
    ]
    result = match_records(
        documents,
        package(Ecosystem.PYPI, "odd", "weird!build"),
        package(Ecosystem.PYPI, "odd", "other!build"),
    )
    assert [m.package.version for m in result.matches] == ["weird!build"]
    assert any("weird!build" in note and "explicit version lists" in note for note in result.notes)


@pytest.mark.unit
def test_unorderable_event_version_skips_that_range_with_a_note() -> None:
    documents = [
        record(
            "PYSEC-9",
            affected("PyPI", "badevent", osv_range(("introduced", "0"), ("fixed", "not!ok"))),
        )
    ]
    result = match_records(documents, package(Ecosystem.PYPI, "badevent", "1.0"))
    assert result.matches == ()
    assert any(note.startswith("PYSEC-9: a range") and "not!ok" in note for note in result.notes)
    # ... and the pair is undetermined, never clean
    [undetermined] = result.undetermined
    assert (undetermined.package, undetermined.advisory_id) == (
        package(Ecosystem.PYPI, "badevent", "1.0"),
        "PYSEC-9",
    )
    assert "not!ok" in undetermined.reason


@pytest.mark.unit
def test_a_fixed_list_written_as_one_string_is_undetermined_not_clean() -> None:
    # a real record shape: two fixed versions in one event, "8.0.3, 7.0.7"
    documents = [
        record(
            "GHSA-comma",
            affected(
                "npm", "list-fixed", osv_range(("introduced", "0"), ("fixed", "8.0.3, 7.0.7"))
            ),
        )
    ]
    result = match_records(documents, package(Ecosystem.NPM, "list-fixed", "7.0.1"))

    assert result.matches == ()
    [undetermined] = result.undetermined
    assert undetermined.advisory_id == "GHSA-comma"
    assert "8.0.3, 7.0.7" in undetermined.reason


@pytest.mark.unit
def test_unorderable_installed_version_not_in_the_versions_list_is_undetermined() -> None:
    documents = [
        record(
            "PYSEC-8",
            affected("PyPI", "odd", osv_range(("introduced", "0"), ("fixed", "2.0"))),
        )
    ]
    result = match_records(documents, package(Ecosystem.PYPI, "odd", "other!build"))

    assert result.matches == ()
    assert [u.advisory_id for u in result.undetermined] == ["PYSEC-8"]
    assert "installed version cannot be ordered" in result.undetermined[0].reason


@pytest.mark.unit
def test_fix_published_is_the_published_date_else_the_modified_date() -> None:
    documents = [
        record(
            "GHSA-9",
            affected("npm", "dated", osv_range(("introduced", "0"))),
            published="2024-02-02T00:00:00Z",
        ),
        record(
            "GHSA-10", affected("npm", "undated", osv_range(("introduced", "0"))), published=None
        ),
    ]
    result = match_records(
        documents,
        package(Ecosystem.NPM, "dated", "1.0.0"),
        package(Ecosystem.NPM, "undated", "1.0.0"),
    )
    assert [m.fix_published for m in result.matches] == [
        datetime(2024, 2, 2, tzinfo=UTC),
        datetime(2024, 4, 1, tzinfo=UTC),
    ]


# ---------------------------------------------------------------- aliases


def alias_records() -> list[dict[str, Any]]:
    """PYSEC names GHSA, CVE names GHSA, GHSA names nobody: one vulnerability."""
    return [
        record(
            "PYSEC-2024-10",
            affected("PyPI", "requests", osv_range(("introduced", "0"), ("fixed", "2.31.0"))),
            aliases=("GHSA-j8r2-6x86-q33q",),
            published="2024-05-01T00:00:00Z",
        ),
        record(
            "GHSA-j8r2-6x86-q33q",
            affected("PyPI", "requests", osv_range(("introduced", "2.3.0"), ("fixed", "2.32.0"))),
            severity=(("CVSS_V3", CVSS3_MEDIUM),),
            published="2024-04-01T00:00:00Z",
        ),
        record(
            "CVE-2023-32681",
            affected("PyPI", "requests", osv_range(("introduced", "0"), ("fixed", "2.31.0"))),
            aliases=("GHSA-j8r2-6x86-q33q",),
            severity=(("CVSS_V3", CVSS3_CRITICAL),),
            published="2024-06-01T00:00:00Z",
        ),
    ]


@pytest.mark.unit
def test_records_aliasing_each_other_transitively_are_reported_once() -> None:
    result = match_records(alias_records(), package(Ecosystem.PYPI, "requests", "2.30.0"))
    assert len(result.matches) == 1
    match = result.matches[0]
    assert match.advisory.id == "CVE-2023-32681"
    assert set(match.advisory.aliases) == {"GHSA-j8r2-6x86-q33q", "PYSEC-2024-10"}
    assert match.advisory.severity_label == "critical"
    assert match.advisory.cvss_score == pytest.approx(9.8)
    assert match.advisory.published == datetime(2024, 4, 1, tzinfo=UTC)
    assert match.fixed_versions == ("2.31.0", "2.32.0")


@pytest.mark.unit
def test_alias_group_without_a_cve_prefers_the_ghsa_id() -> None:
    documents = alias_records()[:2]
    result = match_records(documents, package(Ecosystem.PYPI, "requests", "2.30.0"))
    assert [m.advisory.id for m in result.matches] == ["GHSA-j8r2-6x86-q33q"]


# ---------------------------------------------------------------- severity


def severity_of(**fields: Any) -> Any:
    return choose_severity(parse_record(json.dumps(record("X-1", **fields)).encode(), "x.json"))


@pytest.mark.unit
def test_cvss_v3_vector_gives_base_score_and_label() -> None:
    rating = severity_of(severity=(("CVSS_V3", CVSS3_CRITICAL),))
    assert (rating.label, rating.score, rating.source) == ("critical", 9.8, SeveritySource.CVSS_V3)
    assert rating.vector == CVSS3_CRITICAL


@pytest.mark.unit
def test_cvss_v4_vector_is_preferred_over_v3() -> None:
    rating = severity_of(severity=(("CVSS_V3", CVSS3_CRITICAL), ("CVSS_V4", CVSS4_HIGH)))
    assert (rating.label, rating.score, rating.source) == ("high", 7.1, SeveritySource.CVSS_V4)


@pytest.mark.unit
def test_invalid_cvss_v4_vector_falls_back_to_v3() -> None:
    rating = severity_of(severity=(("CVSS_V4", "CVSS:4.0/AV:N"), ("CVSS_V3", CVSS3_MEDIUM)))
    assert (rating.label, rating.score, rating.source) == ("medium", 4.2, SeveritySource.CVSS_V3)


@pytest.mark.unit
def test_advisory_labels_are_used_without_a_vector() -> None:
    ghsa = severity_of(database_specific={"severity": "MODERATE"})
    red_hat = severity_of(
        affected=[
            {
                "package": {"ecosystem": "Red Hat", "name": "x"},
                "ecosystem_specific": {"severity": "Important"},
            }
        ]
    )
    debian = severity_of(
        affected=[
            {
                "package": {"ecosystem": "Debian:12", "name": "x"},
                "ecosystem_specific": {"urgency": "low"},
            }
        ]
    )
    assert (ghsa.label, ghsa.source) == ("medium", SeveritySource.ADVISORY)
    assert red_hat.label == "high"
    assert debian.label == "low"


@pytest.mark.unit
def test_no_usable_severity_is_unknown() -> None:
    rating = severity_of(
        severity=(("CVSS_V3", "garbage"),), database_specific={"severity": "unknown"}
    )
    assert (rating.label, rating.score, rating.source) == (None, None, SeveritySource.UNKNOWN)


@pytest.mark.unit
def test_zero_score_is_labelled_none() -> None:
    rating = severity_of(severity=(("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"),))
    assert (rating.label, rating.score) == ("none", 0.0)


# ---------------------------------------------------------------- OSV schema


@pytest.mark.unit
@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"modified": "2024-01-01T00:00:00Z"}, "id"),
        (
            record(
                "BAD-1",
                {
                    "package": {"ecosystem": "npm", "name": "x"},
                    "ranges": [
                        {"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1.0.0"}]}
                    ],
                },
            ),
            "exactly one",
        ),
        ({**record("BAD-2"), "aliases": "CVE-1"}, "aliases"),
        (record("BAD-3", {"package": {"ecosystem": "npm", "name": 5}}), "name"),
    ],
)
def test_schema_violations_raise_osv_format_error(document: dict[str, Any], problem: str) -> None:
    with pytest.raises(OsvFormatError, match=problem) as caught:
        parse_record(json.dumps(document).encode(), "feed/file.json")
    assert str(caught.value).startswith("feed/file.json")
    if "id" in document:
        assert f"(record {document['id']})" in str(caught.value)


@pytest.mark.unit
def test_unknown_fields_are_ignored() -> None:
    document = record("OK-1", credits=[{"name": "someone"}], future_field={"x": 1})
    assert parse_record(json.dumps(document).encode(), "ok.json").id == "OK-1"


# ---------------------------------------------------------------- the index


def inventory() -> list[InstalledPackage]:
    return [
        package(Ecosystem.PYPI, "requests", "2.30.0"),
        package(Ecosystem.PYPI, "Django", "4.2"),
        package(
            Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u1", release="12", source_name="openssl"
        ),
        package(Ecosystem.NPM, "left-pad", "1.0.0"),
    ]


def index_documents() -> list[dict[str, Any]]:
    return [
        *alias_records(),
        record(
            "PYSEC-6",
            affected("PyPI", "django", osv_range(("introduced", "0"), ("fixed", "4.2.1"))),
        ),
        record(
            "DSA-5532-1",
            affected(
                "Debian:12",
                "openssl",
                osv_range(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")),
            ),
        ),
        record(
            "GHSA-gone",
            affected("npm", "left-pad", osv_range(("introduced", "0"))),
            withdrawn="2024-05-01T00:00:00Z",
        ),
    ]


@pytest.mark.unit
def test_index_built_from_directory_and_zip_matches_like_memory(tmp_path: Path) -> None:
    documents = index_documents()
    sources = [
        write_directory(tmp_path / "feed", documents[:3]),
        write_zip(tmp_path / "dump" / "all.zip", documents[3:]),
    ]
    progress: list[int] = []
    stats = build_index(sources, tmp_path / "index.sqlite", progress.append)
    assert (stats.records, stats.withdrawn, stats.vulnerability_groups) == (5, 1, 3)
    assert dict(stats.records_per_ecosystem) == {"Debian": 1, "PyPI": 4}
    assert stats.rejected == ()
    assert progress[-1] == 6
    with AdvisoryIndex.open(tmp_path / "index.sqlite") as index:
        result = index.match(inventory())
        assert index.metadata.records == 5
        assert index.metadata.sources == tuple(str(s) for s in sources)
    expected = match_records(documents, *inventory())
    assert result == expected
    assert sorted(m.advisory.id for m in result.matches) == [
        "CVE-2023-32681",
        "DSA-5532-1",
        "PYSEC-6",
    ]


@pytest.mark.unit
def test_newest_copy_of_a_record_wins_across_sources(tmp_path: Path) -> None:
    old = record(
        "GHSA-dup",
        affected("npm", "dup", osv_range(("introduced", "0"), ("fixed", "1.0.0"))),
        modified="2024-01-01T00:00:00Z",
    )
    new = record(
        "GHSA-dup",
        affected("npm", "dup", osv_range(("introduced", "0"), ("fixed", "2.0.0"))),
        modified="2024-02-01T00:00:00Z",
    )
    sources = [write_directory(tmp_path / "new", [new]), write_directory(tmp_path / "old", [old])]
    stats = build_index(sources, tmp_path / "index.sqlite")
    assert (stats.records, stats.superseded) == (1, 1)
    with AdvisoryIndex.open(tmp_path / "index.sqlite") as index:
        (match,) = index.match([package(Ecosystem.NPM, "dup", "1.5.0")]).matches
    assert match.fixed_versions == ("2.0.0",)


@pytest.mark.unit
def test_invalid_record_is_rejected_by_name_while_the_rest_is_indexed(tmp_path: Path) -> None:
    feed = write_directory(tmp_path / "feed", index_documents())
    broken = record(
        "GHSA-broken",
        {
            "package": {"ecosystem": "npm", "name": "x"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1"}]}],
        },
    )
    (feed / "broken.json").write_text(json.dumps(broken))
    (feed / "truncated.json").write_text('{"id": "GHSA-cut", "modif')
    stats = build_index([feed], tmp_path / "index.sqlite")
    assert stats.records == 5
    rejected = {(Path(r.origin).name, r.record_id) for r in stats.rejected}
    assert rejected == {("broken.json", "GHSA-broken"), ("truncated.json", None)}
    assert any("exactly one" in str(r) and "broken.json" in str(r) for r in stats.rejected)
    with AdvisoryIndex.open(tmp_path / "index.sqlite") as index:
        assert len(index.match(inventory()).matches) == 3


def write_zeros_member(archive: zipfile.ZipFile, name: str, size: int) -> None:
    chunk = bytes(2**20)
    with archive.open(name, "w", force_zip64=True) as member:
        for _ in range(size // len(chunk)):
            member.write(chunk)


@pytest.mark.unit
def test_zip_bomb_is_refused_and_the_previous_index_is_untouched(tmp_path: Path) -> None:
    index_path = tmp_path / "index.sqlite"
    build_index([write_directory(tmp_path / "feed", index_documents())], index_path)
    before = index_path.read_bytes()
    bomb = tmp_path / "PyPI" / "all.zip"
    bomb.parent.mkdir()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("PYSEC-ok.json", json.dumps(index_documents()[3]))
        write_zeros_member(archive, "PYSEC-bomb.json", 200 * 2**20)
    assert bomb.stat().st_size < 2 * 2**20

    with pytest.raises(AdvisoryIndexError) as caught:
        build_index([bomb], index_path)

    assert caught.value.member == "PYSEC-bomb.json"
    assert str(bomb) in str(caught.value)
    assert "PYSEC-bomb.json" in str(caught.value)
    assert index_path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".building")] == []
    with AdvisoryIndex.open(index_path) as index:
        assert len(index.match(inventory()).matches) == 3


@pytest.mark.unit
def test_zip_member_inflating_past_its_declared_size_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "all.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("LIAR-1.json", bytes(8 * 2**20))
    declared = (1000).to_bytes(4, "little")
    real = (8 * 2**20).to_bytes(4, "little")
    data = bomb.read_bytes()
    assert data.count(real) == 2  # the local header and the central directory
    bomb.write_bytes(data.replace(real, declared))

    with pytest.raises(AdvisoryIndexError, match=r"LIAR-1\.json") as caught:
        build_index([bomb], tmp_path / "index.sqlite")
    assert caught.value.member == "LIAR-1.json"
    assert not (tmp_path / "index.sqlite").exists()


@pytest.mark.unit
def test_zip_member_with_an_extreme_compression_ratio_is_refused(tmp_path: Path) -> None:
    dump = tmp_path / "all.zip"
    with zipfile.ZipFile(dump, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("DENSE-1.json", bytes(4 * 2**20))  # under the size cap, ~1000:1

    with pytest.raises(AdvisoryIndexError, match="ratio") as caught:
        build_index([dump], tmp_path / "index.sqlite")
    assert caught.value.member == "DENSE-1.json"


@pytest.mark.unit
def test_archive_total_and_member_count_limits_are_enforced(tmp_path: Path) -> None:
    dump = write_zip(tmp_path / "all.zip", index_documents())
    with pytest.raises(AdvisoryIndexError, match="in all"):
        build_index([dump], tmp_path / "a.sqlite", limits=ZipLimits(max_archive_bytes=2000))
    with pytest.raises(AdvisoryIndexError, match="members"):
        build_index([dump], tmp_path / "b.sqlite", limits=ZipLimits(max_members=3))


@pytest.mark.unit
def test_missing_source_is_an_index_error(tmp_path: Path) -> None:
    with pytest.raises(AdvisoryIndexError, match="neither"):
        build_index([tmp_path / "nowhere"], tmp_path / "index.sqlite")


@pytest.mark.unit
def test_opening_an_index_of_another_format_asks_for_an_update(tmp_path: Path) -> None:
    index_path = tmp_path / "index.sqlite"
    build_index([write_directory(tmp_path / "feed", index_documents())], index_path)
    with sqlite3.connect(index_path) as connection:
        connection.execute("UPDATE meta SET value = '0' WHERE key = 'format_version'")
    connection.close()
    with pytest.raises(AdvisoryIndexError, match="apivigil advisories update"):
        AdvisoryIndex.open(index_path)


@pytest.mark.unit
def test_opening_a_missing_or_foreign_file_asks_for_an_update(tmp_path: Path) -> None:
    with pytest.raises(AdvisoryIndexError, match="apivigil advisories update"):
        AdvisoryIndex.open(tmp_path / "missing.sqlite")
    (tmp_path / "text.sqlite").write_text("not a database at all, " * 100)
    with pytest.raises(AdvisoryIndexError, match="apivigil advisories update"):
        AdvisoryIndex.open(tmp_path / "text.sqlite")


def _deep_record(record_id: str, depth: int) -> str:
    nested = "[" * depth + "]" * depth
    return f'{{"id": "{record_id}", "modified": "2024-04-01T00:00:00Z", "details": {nested}}}'


@pytest.mark.e2e
@pytest.mark.hostile_peer
def test_a_record_nested_100k_deep_is_skipped_by_name_and_the_rest_is_indexed(
    tmp_path: Path,
) -> None:
    feed = write_directory(tmp_path / "feed", index_documents())
    (feed / "deep.json").write_text(_deep_record("GHSA-deep", 100_000))
    (feed / "deep-anonymous.json").write_text("[" * 100_000 + "]" * 100_000)
    (feed / "deep-object.json").write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    index_path = tmp_path / "index.sqlite"

    updated = run_cli("advisories", "update", "--from", str(feed), "--index", str(index_path))

    output = updated.stdout + updated.stderr
    assert updated.returncode == 0, output
    assert "Traceback" not in output
    for name in ("deep.json", "deep-anonymous.json", "deep-object.json"):
        assert f"{feed / name}" in output, output
    assert "(record GHSA-deep): Invalid JSON: recursion limit exceeded" in output, output
    with AdvisoryIndex.open(index_path) as index:
        assert len(index.match(inventory()).matches) == 3


@pytest.mark.e2e
def test_an_update_where_every_record_was_rejected_fails_and_keeps_the_old_index(
    tmp_path: Path,
) -> None:
    index_path = tmp_path / "index.sqlite"
    build_index([write_directory(tmp_path / "good", index_documents())], index_path)
    before = index_path.read_bytes()
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "deep.json").write_text(_deep_record("GHSA-deep", 100_000))

    updated = run_cli("advisories", "update", "--from", str(hostile), "--index", str(index_path))

    output = updated.stdout + updated.stderr
    assert updated.returncode == 2, output
    assert "Traceback" not in output
    assert "advisory index not updated" in output, output
    assert "GHSA-deep" in output, output
    assert index_path.read_bytes() == before
