"""patch_level inventory sources, read from real files written here and a real HTTP server."""

from __future__ import annotations

import json
import re
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent

import pytest

from checks.egress import EgressPolicy
from checks.interface import BadInput, TargetUnreachable
from checks.patch_level.packages import BannerProduct, Ecosystem, InstalledPackage
from checks.patch_level.sources.apk import read_apk_installed
from checks.patch_level.sources.banners import fetch_banners, parse_banner, parse_banners
from checks.patch_level.sources.dpkg import read_dpkg_status
from checks.patch_level.sources.os_release import read_os_release, stated_distribution
from checks.patch_level.sources.purl import package_from_purl
from checks.patch_level.sources.python import (
    read_poetry_lock,
    read_requirements,
    read_site_packages,
    read_uv_lock,
)
from checks.patch_level.sources.rpm import (
    RPM_QUERY_FORMAT,
    query_installed_rpms,
    query_rpm,
    read_rpm_list,
)
from checks.patch_level.sources.sbom import SbomFormat, parse_sbom, read_sbom


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def by_name(packages: tuple[InstalledPackage, ...]) -> dict[str, InstalledPackage]:
    return {package.name: package for package in packages}


DEBIAN_12_OS_RELEASE = """
    PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
    NAME="Debian GNU/Linux"
    VERSION_ID="12"
    VERSION="12 (bookworm)"
    VERSION_CODENAME=bookworm
    ID=debian
    HOME_URL="https://www.debian.org/"
"""

DEBIAN = stated_distribution("Debian:12")

UBUNTU_2204_OS_RELEASE = """
    PRETTY_NAME="Ubuntu 22.04.3 LTS"
    NAME="Ubuntu"
    VERSION_ID="22.04"
    VERSION="22.04.3 LTS (Jammy Jellyfish)"
    VERSION_CODENAME=jammy
    ID=ubuntu
    ID_LIKE=debian
    UBUNTU_CODENAME=jammy
"""

ALPINE_OS_RELEASE = """
    NAME="Alpine Linux"
    ID=alpine
    VERSION_ID=3.19.1
    PRETTY_NAME="Alpine Linux v3.19"
    HOME_URL="https://alpinelinux.org/"
"""

ROCKY_OS_RELEASE = """
    NAME="Rocky Linux"
    VERSION="9.3 (Blue Onyx)"
    ID="rocky"
    ID_LIKE="rhel centos fedora"
    VERSION_ID="9.3"
    PLATFORM_ID="platform:el9"
"""

DPKG_STATUS = """
    Package: libssl3
    Status: install ok installed
    Priority: optional
    Section: libs
    Installed-Size: 6191
    Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
    Architecture: amd64
    Multi-Arch: same
    Source: openssl
    Version: 3.0.11-1~deb12u2
    Depends: libc6 (>= 2.34)
    Description: Secure Sockets Layer toolkit - shared libraries
     This package is part of the OpenSSL project's implementation of the SSL
     and TLS cryptographic protocols for secure communication over the
     Internet.
     .
     It provides the libssl and libcrypto shared libraries.
    Homepage: https://www.openssl.org/

    Package: passwd
    Status: install ok installed
    Priority: required
    Section: admin
    Installed-Size: 2763
    Maintainer: Shadow package maintainers <pkg-shadow-devel@lists.alioth.debian.org>
    Architecture: amd64
    Source: shadow (1:4.13+dfsg1-1)
    Version: 1:4.13+dfsg1-1+b1
    Depends: libaudit1 (>= 1:2.2.1), libc6 (>= 2.34), libpam-modules
    Conffiles:
     /etc/cron.daily/passwd db990990933b6f56322725223f13c2bc
     /etc/default/useradd cc9f9a7713ab62a32cd38363d958f396
     /etc/pam.d/chpasswd 9900720564cb4ee98b7da29e2d183cb2
    Description: change and administer password and group data
     This package includes passwd, chsh, chfn, and many other programs to
     maintain password and group data.

    Package: openssh-server
    Status: install ok installed
    Architecture: amd64
    Source: openssh
    Version: 1:9.2p1-2+deb12u2
    Description: secure shell (SSH) server, for secure access from remote machines

    Package: apache2
    Status: deinstall ok config-files
    Priority: optional
    Section: httpd
    Installed-Size: 564
    Architecture: amd64
    Version: 2.4.57-2
    Conffiles:
     /etc/apache2/apache2.conf 20589b50379161ebc8cb35f761af2646
     /etc/apache2/ports.conf a961f23471d985c2b819b652b7f64321
    Description: Apache HTTP Server

    Package: libc6
    Status: install ok installed
    Architecture: amd64
    Multi-Arch: same
    Source: glibc
    Version: 2.36-9+deb12u4
    Description: GNU C Library: Shared libraries

    Package: libc6
    Status: install ok installed
    Architecture: i386
    Multi-Arch: same
    Source: glibc
    Version: 2.36-9+deb12u4
    Description: GNU C Library: Shared libraries

    Package: bash
    Essential: yes
    Status: install ok installed
    Architecture: amd64
    Version: 5.2.15-2+b2
    Description: GNU Bourne Again SHell

    Package: oldlib
    Status: purge ok not-installed
    Architecture: amd64
"""


# --- dpkg ---------------------------------------------------------------------------------


@pytest.mark.unit
def test_dpkg_reads_installed_packages_with_source_versions_and_epochs(tmp_path: Path) -> None:
    status = write(tmp_path, "status", DPKG_STATUS)

    packages = read_dpkg_status(status, DEBIAN)

    assert [p.name for p in packages] == ["libssl3", "passwd", "openssh-server", "libc6", "bash"]
    found = by_name(packages)
    assert found["libssl3"] == InstalledPackage(
        Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u2", str(status), "12", "openssl"
    )
    # Source carries a version: Debian advisories are per source version
    assert found["passwd"].version == "1:4.13+dfsg1-1"
    assert found["passwd"].source_name == "shadow"
    assert found["openssh-server"].version == "1:9.2p1-2+deb12u2"
    assert found["bash"].source_name is None
    assert found["bash"].version == "5.2.15-2+b2"


@pytest.mark.unit
def test_dpkg_takes_ecosystem_and_release_from_os_release(tmp_path: Path) -> None:
    status = write(tmp_path, "status", DPKG_STATUS)
    debian = write(tmp_path, "debian-os-release", DEBIAN_12_OS_RELEASE)
    ubuntu = write(tmp_path, "ubuntu-os-release", UBUNTU_2204_OS_RELEASE)

    on_debian = read_dpkg_status(status, debian)
    on_ubuntu = read_dpkg_status(status, ubuntu)

    assert {(p.ecosystem, p.release) for p in on_debian} == {(Ecosystem.DEBIAN, "12")}
    assert {(p.ecosystem, p.release) for p in on_ubuntu} == {(Ecosystem.UBUNTU, "22.04")}


@pytest.mark.unit
def test_dpkg_line_without_field_name_names_file_stanza_and_package(tmp_path: Path) -> None:
    status = write(
        tmp_path,
        "status",
        DPKG_STATUS
        + """
    Package: libfoo
    Status: install ok installed
    garbage
    Version: 1.0-1
    """,
    )
    first_line = len(dedent(DPKG_STATUS).lstrip("\n").splitlines()) + 2

    with pytest.raises(BadInput) as raised:
        read_dpkg_status(status, DEBIAN)

    assert str(raised.value) == (
        f"{status}: stanza at line {first_line} (package 'libfoo'): "
        f"line {first_line + 2} 'garbage' has no field name"
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("stanza", "problem"),
    [
        ("Package: libbar\nStatus: install ok installed\n", "(package 'libbar'): no Version field"),
        ("Status: install ok installed\nVersion: 1.0\n", "stanza at line 1: no Package field"),
        ("Package: libbar\nVersion: 1.0\n", "(package 'libbar'): no Status field"),
        (" Package: libbar\n", "line 1 continues no field"),
        ("Package: a\nPackage: b\nStatus: install ok installed\n", "'Package' appears twice"),
        (
            "Package: libbar\nStatus: install ok installed\nVersion: 1\nSource: bar (1.0\n",
            "Source field 'bar (1.0' is not 'name (version)'",
        ),
    ],
)
def test_dpkg_incomplete_stanza_is_an_error_not_a_dropped_package(
    tmp_path: Path, stanza: str, problem: str
) -> None:
    status = tmp_path / "status"
    status.write_text(stanza, encoding="utf-8")

    with pytest.raises(BadInput, match=re.escape(str(status))) as raised:
        read_dpkg_status(status, DEBIAN)

    assert problem in str(raised.value)


@pytest.mark.unit
def test_dpkg_next_to_an_alpine_os_release_is_bad_input(tmp_path: Path) -> None:
    status = write(tmp_path, "status", DPKG_STATUS)
    alpine = write(tmp_path, "os-release", ALPINE_OS_RELEASE)

    with pytest.raises(BadInput, match="does not use dpkg"):
        read_dpkg_status(status, alpine)


@pytest.mark.unit
def test_missing_dpkg_status_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=re.escape(f"{tmp_path / 'nope'}: cannot read the file")):
        read_dpkg_status(tmp_path / "nope", DEBIAN)


# --- os-release -----------------------------------------------------------------------------


@pytest.mark.unit
def test_os_release_of_a_derivative_gets_the_parent_ecosystem_without_a_release(
    tmp_path: Path,
) -> None:
    mint = write(
        tmp_path,
        "os-release",
        """
        NAME="Linux Mint"
        VERSION="21.2 (Victoria)"
        ID=linuxmint
        ID_LIKE="ubuntu debian"
        VERSION_ID="21.2"
        """,
    )

    parsed = read_os_release(mint)

    assert (parsed.id, parsed.version_id, parsed.ecosystem, parsed.release) == (
        "linuxmint",
        "21.2",
        Ecosystem.UBUNTU,
        None,
    )


# --- rpm ------------------------------------------------------------------------------------

RPM_LIST = """
    openssl-libs|1|3.0.7|24.el9|x86_64
    bash|(none)|5.1.8|6.el9_1|x86_64
    gpg-pubkey|(none)|fd431d51|4ae0493b|(none)
    glibc|(none)|2.34|83.el9_3.7|x86_64
    glibc|(none)|2.34|83.el9_3.7|i686
    tzdata|0|2023c|1.el9|noarch
    kernel-core|(none)|5.14.0|362.13.1.el9_3|x86_64
"""


@pytest.mark.unit
def test_rpm_list_gives_osv_versions_with_and_without_epoch(tmp_path: Path) -> None:
    listing = write(tmp_path, "rpm-qa.txt", RPM_LIST)

    packages = read_rpm_list(listing, stated_distribution("Red Hat"))

    assert [(p.name, p.version) for p in packages] == [
        ("openssl-libs", "1:3.0.7-24.el9"),
        ("bash", "5.1.8-6.el9_1"),
        ("glibc", "2.34-83.el9_3.7"),
        ("tzdata", "0:2023c-1.el9"),
        ("kernel-core", "5.14.0-362.13.1.el9_3"),
    ]
    assert {(p.ecosystem, p.release, p.source) for p in packages} == {
        (Ecosystem.RED_HAT, None, str(listing))
    }


@pytest.mark.unit
def test_rpm_ecosystem_and_release_come_from_os_release(tmp_path: Path) -> None:
    listing = write(tmp_path, "rpm-qa.txt", RPM_LIST)
    rocky = write(tmp_path, "os-release", ROCKY_OS_RELEASE)

    packages = read_rpm_list(listing, rocky)

    assert {(p.ecosystem, p.release) for p in packages} == {(Ecosystem.ROCKY, "9")}


@pytest.mark.unit
def test_rpm_line_with_missing_fields_names_file_and_line(tmp_path: Path) -> None:
    listing = write(tmp_path, "rpm-qa.txt", "bash|(none)|5.1.8|6.el9_1|x86_64\nbroken|1.0\n")

    with pytest.raises(
        BadInput, match=re.escape(f"{listing}: line 2 'broken|1.0' is not name|epoch")
    ):
        read_rpm_list(listing, stated_distribution("rhel:9"))


def fake_rpm(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "rpm"
    path.write_text("#!/bin/sh\n" + dedent(script).lstrip("\n"), encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.integration
def test_rpm_query_runs_rpm_with_the_documented_query_format(tmp_path: Path) -> None:
    arguments = tmp_path / "arguments"
    rpm = fake_rpm(
        tmp_path,
        f"""
        for argument in "$@"; do printf '%s\\n' "$argument" >> {arguments}; done
        printf 'openssl-libs|1|3.0.7|24.el9|x86_64\\nbash|(none)|5.1.8|6.el9_1|x86_64\\n'
        """,
    )

    packages = query_installed_rpms(
        5.0, executable=str(rpm), root=Path("/mnt/image"), os_release=stated_distribution("Red Hat")
    )

    assert arguments.read_text().splitlines() == [
        "--root",
        "/mnt/image",
        "-qa",
        "--queryformat",
        RPM_QUERY_FORMAT,
    ]
    assert RPM_QUERY_FORMAT == r"%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}\n"
    assert [p.version for p in packages] == ["1:3.0.7-24.el9", "5.1.8-6.el9_1"]


@pytest.mark.integration
def test_missing_rpm_is_target_unreachable(tmp_path: Path) -> None:
    with pytest.raises(TargetUnreachable, match="is not installed"):
        query_rpm(5.0, executable=str(tmp_path / "no-rpm-here"))


@pytest.mark.integration
def test_failing_rpm_is_bad_input_with_its_stderr(tmp_path: Path) -> None:
    rpm = fake_rpm(tmp_path, "echo 'error: rpmdb: damaged header #42' >&2\nexit 1\n")

    with pytest.raises(BadInput, match="exited with status 1: error: rpmdb: damaged header"):
        query_rpm(5.0, executable=str(rpm))


@pytest.mark.integration
def test_rpm_that_hangs_is_target_unreachable_after_the_timeout(tmp_path: Path) -> None:
    rpm = fake_rpm(tmp_path, "exec sleep 10\n")

    started = time.monotonic()
    with pytest.raises(TargetUnreachable, match=r"no answer within 0\.3s"):
        query_rpm(0.3, executable=str(rpm))
    assert time.monotonic() - started < 5


# --- apk ------------------------------------------------------------------------------------

APK_INSTALLED = """
    C:Q1p0tDuqGKRj4uVGP9U/ZpGMTfJIs=
    P:musl
    V:1.2.4_git20230717-r4
    A:x86_64
    S:407595
    I:667648
    T:the musl c library (libc) implementation
    U:https://musl.libc.org/
    L:MIT
    o:musl
    m:Timo Teräs <timo.teras@iki.fi>
    t:1705503839
    c:ca7f2ab5e88794e4e654b40776f8a92256f50639
    p:so:libc.musl-x86_64.so.1=1
    F:lib
    R:ld-musl-x86_64.so.1
    a:0:0:755
    Z:Q1rNWoOBYGyoo1JnbyfJqfZgOTnTo=
    R:libc.musl-x86_64.so.1
    a:0:0:777
    Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

    C:Q1FGIiLEEr6c8Ty7L0QdQG7fnRWfg=
    P:libcrypto3
    V:3.1.4-r5
    A:x86_64
    S:1715044
    I:4186112
    T:Crypto library from openssl
    o:openssl
    D:so:libc.musl-x86_64.so.1
    F:lib
    R:libcrypto.so.3

    P:libssl3
    V:3.1.4-r5
    o:openssl
"""


@pytest.mark.unit
def test_apk_database_gives_packages_with_origin_and_alpine_release(tmp_path: Path) -> None:
    installed = write(tmp_path, "installed", APK_INSTALLED)
    alpine = write(tmp_path, "os-release", ALPINE_OS_RELEASE)

    packages = read_apk_installed(installed, alpine)

    assert packages == (
        InstalledPackage(Ecosystem.ALPINE, "musl", "1.2.4_git20230717-r4", str(installed), "v3.19"),
        InstalledPackage(
            Ecosystem.ALPINE, "libcrypto3", "3.1.4-r5", str(installed), "v3.19", "openssl"
        ),
        InstalledPackage(
            Ecosystem.ALPINE, "libssl3", "3.1.4-r5", str(installed), "v3.19", "openssl"
        ),
    )


@pytest.mark.unit
def test_apk_stanza_without_version_names_the_stanza(tmp_path: Path) -> None:
    database = dedent(APK_INSTALLED).lstrip("\n")
    installed = tmp_path / "installed"
    installed.write_text(database + "\nP:zlib\nA:x86_64\n", encoding="utf-8")
    first_line = len(database.splitlines()) + 2

    with pytest.raises(BadInput, match=rf"stanza at line {first_line} \(package 'zlib'\): no V:"):
        read_apk_installed(installed, stated_distribution("Alpine:v3.19"))


# --- Python ---------------------------------------------------------------------------------


def metadata(name: str, version: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        "Summary: A package\n"
        "Requires-Python: >=3.8\n"
        "Requires-Dist: idna<4,>=2.5\n"
        "Description-Content-Type: text/markdown\n"
        "\n"
        f"# {name}\n\nVersion: not-a-header-{version}\n"
    )


@pytest.mark.unit
def test_site_packages_reads_dist_info_and_egg_info(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    write(site, "requests-2.31.0.dist-info/METADATA", metadata("requests", "2.31.0"))
    write(site, "requests-2.31.0.dist-info/RECORD", "requests/__init__.py,,\n")
    write(site, "Django-4.2.7.dist-info/METADATA", metadata("Django", "4.2.7"))
    write(
        site, "typing_extensions-4.8.0.dist-info/METADATA", metadata("typing_extensions", "4.8.0")
    )
    write(site, "PyYAML-6.0.1-py3.11.egg-info/PKG-INFO", metadata("PyYAML", "6.0.1"))
    write(site, "zope.interface-5.4.0-py3.11.egg-info", metadata("zope.interface", "5.4.0"))
    write(site, "requests/__init__.py", "")

    packages = read_site_packages(site)

    assert [(p.name, p.version) for p in packages] == [
        ("django", "4.2.7"),
        ("pyyaml", "6.0.1"),
        ("requests", "2.31.0"),
        ("typing-extensions", "4.8.0"),
        ("zope-interface", "5.4.0"),
    ]
    assert {(p.ecosystem, p.source) for p in packages} == {(Ecosystem.PYPI, str(site))}


@pytest.mark.unit
def test_dist_info_without_version_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    broken = write(tmp_path, "foo-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: foo\n")

    with pytest.raises(
        BadInput, match=re.escape(f"{broken}: metadata without a Name and a Version")
    ):
        read_site_packages(tmp_path)


@pytest.mark.unit
def test_requirements_keep_pins_and_report_unpinned_lines(tmp_path: Path) -> None:
    requirements = write(
        tmp_path,
        "requirements.txt",
        """
        # This file is autogenerated by pip-compile with Python 3.11
        --index-url https://pypi.org/simple
        -r base.txt
        certifi==2023.11.17 \\
            --hash=sha256:e036ab49d5b79556f99cfc2d9320b34cfbe5be05c5871b51de9329f0603b0474 \\
            --hash=sha256:9b469f3a900bf28dc19b8cfbf8019bf47f7fdd1a65a1d4ffb98fc14166beb4d1
            # via requests
        uvicorn[standard]==0.24.0 ; python_version >= "3.8"
        Django==4.2.7  # LTS
        importlib-metadata===6.8.0
        requests>=2.31
        flask
        numpy==1.*
        ./vendor/mylib
        mylib @ https://example.test/mylib-1.0.tar.gz
        -e .
        """,
    )

    read = read_requirements(requirements)

    assert [(p.name, p.version) for p in read.packages] == [
        ("certifi", "2023.11.17"),
        ("uvicorn", "0.24.0"),
        ("django", "4.2.7"),
        ("importlib-metadata", "6.8.0"),
    ]
    assert read.unpinned == (
        "requests>=2.31",
        "flask",
        "numpy==1.*",
        "./vendor/mylib",
        "mylib @ https://example.test/mylib-1.0.tar.gz",
    )


@pytest.mark.unit
def test_unparseable_requirement_names_file_and_line(tmp_path: Path) -> None:
    requirements = write(tmp_path, "requirements.txt", "certifi==2023.11.17\nfoo==\n")

    with pytest.raises(BadInput, match=re.escape(f"{requirements}: line 2 'foo=='")):
        read_requirements(requirements)


@pytest.mark.unit
def test_poetry_lock_lists_every_package(tmp_path: Path) -> None:
    lock = write(
        tmp_path,
        "poetry.lock",
        """
        # This file is automatically @generated by Poetry 1.7.1 and should not be changed by hand.

        [[package]]
        name = "certifi"
        version = "2023.11.17"
        description = "Python package for providing Mozilla's CA Bundle."
        optional = false
        python-versions = ">=3.6"
        files = [
            {file = "certifi-2023.11.17-py3-none-any.whl", hash = "sha256:e036ab49d5b7"},
        ]

        [[package]]
        name = "Flask_Cors"
        version = "4.0.0"
        description = "A Flask extension adding a decorator for CORS support"
        optional = false
        python-versions = "*"
        files = []

        [package.dependencies]
        Flask = ">=0.9"

        [metadata]
        lock-version = "2.0"
        python-versions = "^3.11"
        content-hash = "6b2bd6fd5e2b1e4cbd1d0c2b1a4c6fbc0b2e6b6b4bd1c5a6b7d1e3f2c4a5b6c7"
        """,
    )

    packages = read_poetry_lock(lock)

    assert [(p.ecosystem, p.name, p.version) for p in packages] == [
        (Ecosystem.PYPI, "certifi", "2023.11.17"),
        (Ecosystem.PYPI, "flask-cors", "4.0.0"),
    ]


@pytest.mark.unit
def test_uv_lock_leaves_out_the_projects_own_packages(tmp_path: Path) -> None:
    lock = write(
        tmp_path,
        "uv.lock",
        """
        version = 1
        requires-python = ">=3.11"

        [manifest]
        members = ["docs", "myapp"]

        [[package]]
        name = "anyio"
        version = "4.2.0"
        source = { registry = "https://pypi.org/simple" }
        dependencies = [
            { name = "idna" },
            { name = "sniffio" },
        ]
        sdist = { url = "https://files.example.test/anyio-4.2.0.tar.gz", size = 158770 }

        [[package]]
        name = "docs"
        source = { virtual = "docs" }

        [[package]]
        name = "myapp"
        version = "0.1.0"
        source = { editable = "." }
        dependencies = [{ name = "anyio" }]

        [[package]]
        name = "typing-extensions"
        version = "4.9.0"
        source = { registry = "https://pypi.org/simple" }
        """,
    )

    packages = read_uv_lock(lock)

    assert [(p.name, p.version) for p in packages] == [
        ("anyio", "4.2.0"),
        ("typing-extensions", "4.9.0"),
    ]


@pytest.mark.unit
def test_invalid_lock_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    lock = write(tmp_path, "uv.lock", '[[package]]\nname = "anyio\n')

    with pytest.raises(BadInput, match=re.escape(f"{lock}: not valid TOML")):
        read_uv_lock(lock)


# --- SBOMs ----------------------------------------------------------------------------------


def cyclonedx(spec_version: str, components: list[dict[str, object]]) -> dict[str, object]:
    return {
        "bomFormat": "CycloneDX",
        "specVersion": spec_version,
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {
            "timestamp": "2024-01-15T10:00:00Z",
            "tools": {"components": [{"type": "application", "name": "syft"}]},
            "component": {
                "type": "application",
                "name": "shop-api",
                "version": "2.3.0",
                "purl": "pkg:pypi/shop-api@2.3.0",
            },
        },
        "components": components,
    }


CYCLONEDX_15_COMPONENTS: list[dict[str, object]] = [
    {"type": "library", "name": "Django", "version": "4.2.7", "purl": "pkg:pypi/Django@4.2.7"},
    {"type": "library", "name": "core", "purl": "pkg:npm/%40angular/core@16.2.12"},
    {
        "type": "library",
        "name": "log4j-core",
        "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "components": [
            {
                "type": "library",
                "name": "log4j-api",
                "purl": "pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1",
                "components": [
                    {
                        "type": "library",
                        "name": "mux",
                        "purl": "pkg:golang/github.com/gorilla/mux@v1.8.0",
                    }
                ],
            },
            {"type": "file", "name": "log4j2.xml"},
        ],
    },
    {
        "type": "library",
        "name": "libssl3",
        "purl": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64"
        "&upstream=openssl&distro=debian-12",
    },
    {
        "type": "library",
        "name": "openssl-libs",
        "purl": "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1"
        "&upstream=openssl-3.0.7-24.el9.src.rpm&distro=rhel-9.3",
    },
    {
        "type": "library",
        "name": "libcrypto3",
        "purl": "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64"
        "&upstream=openssl&distro=alpine-3.19.1",
    },
    {"type": "library", "name": "serde", "purl": "pkg:cargo/serde@1.0.193"},
    {"type": "library", "name": "rails", "purl": "pkg:gem/rails@7.1.2"},
    {"type": "library", "name": "Newtonsoft.Json", "purl": "pkg:nuget/Newtonsoft.Json@13.0.3"},
    {"type": "library", "name": "framework", "purl": "pkg:composer/laravel/framework@10.38.1"},
    {"type": "library", "name": "openssl", "purl": "pkg:generic/openssl@3.0.12"},
    {"type": "library", "name": "left-pad", "purl": "pkg:npm/left-pad"},
    {"type": "operating-system", "name": "debian", "version": "12.4"},
]


@pytest.mark.unit
def test_cyclonedx_15_reads_nested_components_of_every_supported_type(tmp_path: Path) -> None:
    document = cyclonedx("1.5", CYCLONEDX_15_COMPONENTS)
    path = tmp_path / "sbom.cdx.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")

    read = read_sbom(path)

    assert (read.format, read.spec_version) == (SbomFormat.CYCLONEDX, "1.5")
    summary = [(p.ecosystem, p.name, p.version, p.release, p.source_name) for p in read.packages]
    assert summary == [
        (Ecosystem.PYPI, "django", "4.2.7", None, None),
        (Ecosystem.NPM, "@angular/core", "16.2.12", None, None),
        (Ecosystem.MAVEN, "org.apache.logging.log4j:log4j-core", "2.14.1", None, None),
        (Ecosystem.MAVEN, "org.apache.logging.log4j:log4j-api", "2.14.1", None, None),
        (Ecosystem.GO, "github.com/gorilla/mux", "v1.8.0", None, None),
        (Ecosystem.DEBIAN, "libssl3", "3.0.11-1~deb12u2", "12", "openssl"),
        (Ecosystem.RED_HAT, "openssl-libs", "1:3.0.7-24.el9", "9", "openssl"),
        (Ecosystem.ALPINE, "libcrypto3", "3.1.4-r5", "v3.19", "openssl"),
        (Ecosystem.CRATES_IO, "serde", "1.0.193", None, None),
        (Ecosystem.RUBYGEMS, "rails", "7.1.2", None, None),
        (Ecosystem.NUGET, "Newtonsoft.Json", "13.0.3", None, None),
        (Ecosystem.PACKAGIST, "laravel/framework", "10.38.1", None, None),
    ]
    # the file without a purl, generic, no version, the operating system
    assert read.skipped == 4
    assert all(p.source == str(path) and p.purl for p in read.packages)


@pytest.mark.unit
@pytest.mark.parametrize("spec_version", ["1.4", "1.6"])
def test_cyclonedx_14_and_16_are_read_alike(spec_version: str) -> None:
    document = cyclonedx(
        spec_version,
        [
            {
                "type": "library",
                "bom-ref": "pkg:npm/express@4.18.2",
                "name": "express",
                "version": "4.18.2",
                "purl": "pkg:npm/express@4.18.2",
                "licenses": [{"license": {"id": "MIT"}}],
            },
            {
                "type": "library",
                "name": "ubuntu-libc6",
                "purl": "pkg:deb/ubuntu/libc6@2.35-0ubuntu3.5?arch=amd64&distro=ubuntu-22.04",
            },
        ],
    )

    read = parse_sbom(json.dumps(document).encode(), "https://sbom.example.test/api.json")

    assert read.spec_version == spec_version
    assert [(p.ecosystem, p.name, p.release) for p in read.packages] == [
        (Ecosystem.NPM, "express", None),
        (Ecosystem.UBUNTU, "libc6", "22.04"),
    ]
    assert read.packages[0].source == "https://sbom.example.test/api.json"


SPDX_23 = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "shop-api",
    "documentNamespace": "https://anchore.com/syft/dir/shop-api-5e4b1f28",
    "creationInfo": {"created": "2024-01-15T10:00:00Z", "creators": ["Tool: syft-0.99.0"]},
    "packages": [
        {
            "name": "requests",
            "SPDXID": "SPDXRef-Package-python-requests",
            "versionInfo": "2.31.0",
            "downloadLocation": "NOASSERTION",
            "externalRefs": [
                {
                    "referenceCategory": "SECURITY",
                    "referenceType": "cpe23Type",
                    "referenceLocator": "cpe:2.3:a:python:requests:2.31.0:*:*:*:*:*:*:*",
                },
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": "pkg:pypi/requests@2.31.0",
                },
            ],
        },
        {
            "name": "zlib1g",
            "SPDXID": "SPDXRef-Package-deb-zlib1g",
            "versionInfo": "1:1.2.13.dfsg-1",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64"
                    "&upstream=zlib&distro=debian-12",
                }
            ],
        },
        {"name": "shop-api", "SPDXID": "SPDXRef-DocumentRoot-Directory", "versionInfo": "2.3.0"},
    ],
    "relationships": [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relatedSpdxElement": "SPDXRef-DocumentRoot-Directory",
            "relationshipType": "DESCRIBES",
        }
    ],
}


@pytest.mark.unit
def test_spdx_23_reads_package_purls(tmp_path: Path) -> None:
    path = tmp_path / "sbom.spdx.json"
    path.write_text(json.dumps(SPDX_23), encoding="utf-8")

    read = read_sbom(path)

    assert (read.format, read.spec_version, read.skipped) == (SbomFormat.SPDX, "SPDX-2.3", 1)
    assert [(p.ecosystem, p.name, p.version, p.source_name) for p in read.packages] == [
        (Ecosystem.PYPI, "requests", "2.31.0", None),
        (Ecosystem.DEBIAN, "zlib1g", "1:1.2.13.dfsg-1", "zlib"),
    ]


@pytest.mark.unit
def test_truncated_sbom_names_the_file_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(cyclonedx("1.5", CYCLONEDX_15_COMPONENTS), indent=2)
    path = tmp_path / "sbom.cdx.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")

    with pytest.raises(
        BadInput, match=re.escape(f"{path}: not valid JSON at line ") + r"\d+, column \d+"
    ):
        read_sbom(path)


@pytest.mark.unit
def test_json_that_is_neither_cyclonedx_nor_spdx_is_bad_input() -> None:
    document = {"name": "shop-api", "dependencies": {"requests": "2.31.0"}}

    with pytest.raises(BadInput, match=r"package\.json: neither CycloneDX"):
        parse_sbom(json.dumps(document).encode(), "package.json")


@pytest.mark.unit
def test_sbom_over_the_size_limit_is_rejected_before_parsing() -> None:
    with pytest.raises(BadInput, match=r"big\.json: larger than the limit of 10 bytes"):
        parse_sbom(b"{" + b" " * 20, "big.json", max_bytes=10)


@pytest.mark.unit
def test_invalid_purl_names_the_component() -> None:
    document = cyclonedx("1.5", [{"type": "library", "name": "oops", "purl": "npm/oops@1.0"}])

    with pytest.raises(BadInput, match=r"sbom.json: components\[0\] \('oops'\): purl 'npm/oops"):
        parse_sbom(json.dumps(document).encode(), "sbom.json")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("purl", "properties", "expected"),
    [
        # Trivy: the epoch as a qualifier, the source package and its version in properties
        (
            "pkg:deb/debian/openssh-client@9.2p1-2%2Bdeb12u2?arch=amd64&distro=debian-12.5&epoch=1",
            {
                "aquasecurity:trivy:SrcName": "openssh",
                "aquasecurity:trivy:SrcVersion": "9.2p1",
                "aquasecurity:trivy:SrcRelease": "2+deb12u2",
                "aquasecurity:trivy:SrcEpoch": "1",
            },
            (Ecosystem.DEBIAN, "openssh-client", "1:9.2p1-2+deb12u2", "12", "openssh"),
        ),
        # cdxgen: the epoch in the version and as a qualifier, counted once; a code name
        (
            "pkg:deb/ubuntu/vim@2:8.2.3995-1ubuntu2.15?arch=amd64&distro_name=jammy&epoch=2",
            {},
            (Ecosystem.UBUNTU, "vim", "2:8.2.3995-1ubuntu2.15", "22.04", None),
        ),
        # Syft: the source package and its version in the upstream qualifier
        (
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?upstream=glibc%402.36-9%2Bdeb12u3&distro=debian-12",
            {},
            (Ecosystem.DEBIAN, "libc6", "2.36-9+deb12u3", "12", "glibc"),
        ),
        # Syft's RPM: the source RPM in a property
        (
            "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?epoch=1&distro=rhel-9.3",
            {"syft:metadata:sourceRpm": "openssl-3.0.7-24.el9.src.rpm"},
            (Ecosystem.RED_HAT, "openssl-libs", "1:3.0.7-24.el9", "9", "openssl"),
        ),
        # npm names keep their case
        ("pkg:npm/Haraka@2.8.0", {}, (Ecosystem.NPM, "Haraka", "2.8.0", None, None)),
    ],
)
def test_purls_are_read_as_each_producer_writes_them(
    purl: str, properties: dict[str, str], expected: tuple[object, ...]
) -> None:
    package = package_from_purl(purl, "sbom.json", properties=properties)

    assert isinstance(package, InstalledPackage)
    assert (
        package.ecosystem,
        package.name,
        package.version,
        package.release,
        package.source_name,
    ) == expected


# --- banners --------------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        ("Server", "nginx/1.18.0 (Ubuntu)", [("nginx", "1.18.0")]),
        (
            "Server",
            "Apache/2.4.41 (Ubuntu) OpenSSL/1.1.1f PHP/7.4.3",
            [("apache-http-server", "2.4.41"), ("openssl", "1.1.1f"), ("php", "7.4.3")],
        ),
        ("Server", "Microsoft-IIS/10.0", [("iis", "10.0")]),
        ("Server", "gunicorn/20.0.4", [("gunicorn", "20.0.4")]),
        ("Server", "Caddy", [("caddy", None)]),
        ("Server", "openresty/1.21.4.1", [("openresty", "1.21.4.1")]),
        ("Server", "Jetty(9.4.z-SNAPSHOT)", [("jetty", "9.4.z-SNAPSHOT")]),
        ("X-Powered-By", "PHP/8.1.2", [("php", "8.1.2")]),
        ("X-Powered-By", "Express", [("express", None)]),
        ("X-Powered-By", "ASP.NET", [("asp.net", None)]),
        ("X-Powered-By", "Servlet/3.1", [("servlet", "3.1")]),
        ("x-aspnet-version", "4.0.30319", [("dotnetfx", "4.0.30319")]),
        ("X-AspNetMvc-Version", "5.2", [("aspnet-mvc", "5.2")]),
        ("X-Generator", "Drupal 10 (https://www.drupal.org)", [("drupal", "10")]),
        ("X-Runtime", "0.012345", []),
        ("Content-Type", "text/html; charset=utf-8", []),
    ],
)
def test_banner_headers_name_products_and_versions(
    header: str, value: str, expected: list[tuple[str, str | None]]
) -> None:
    products = parse_banner(header, value)

    assert [(p.product, p.version) for p in products] == expected
    assert all(p.header == header and p.raw_value == value for p in products)


@pytest.mark.unit
def test_banner_header_names_are_case_insensitive() -> None:
    assert parse_banners([("SERVER", "nginx/1.25.3"), ("x-powered-by", "PHP/8.2.0")]) == (
        BannerProduct("nginx", "1.25.3", "SERVER", "nginx/1.25.3"),
        BannerProduct("php", "8.2.0", "x-powered-by", "PHP/8.2.0"),
    )


class BannerHandler(BaseHTTPRequestHandler):
    """Announces a 1 GiB body after its headers, sends one chunk of it, then stalls."""

    stalled = threading.Event()  # set to let stalled handlers go

    def version_string(self) -> str:
        return "nginx/1.18.0"

    def do_GET(self) -> None:
        if self.path == "/old":
            self.send_response(301)
            self.send_header("Location", "/")
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
        else:
            self.send_response(200)
            self.send_header("X-Powered-By", "PHP/7.4.3")
            self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(1024**3))
        self.end_headers()
        try:
            self.wfile.write(b"x" * 65536)
            self.wfile.flush()
        except OSError:
            return
        self.stalled.wait(30)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def banner_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BannerHandler)
    server.daemon_threads = True
    BannerHandler.stalled.clear()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        BannerHandler.stalled.set()
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_fetch_banners_reads_headers_without_downloading_the_body() -> None:
    with banner_server() as base_url:
        # Given a redirect and a page whose bodies would never finish arriving
        # When the banners are fetched with a read timeout of 3 seconds
        fetched = fetch_banners(base_url + "/old", timeout=3.0, egress=EgressPolicy())

    # Then the answer came from the headers alone (reading a body would have timed out)
    assert fetched.status_code == 200
    assert fetched.url == base_url + "/"
    assert [(b.product, b.version, b.header) for b in fetched.banners] == [
        ("nginx", "1.18.0", "Server"),
        ("php", "7.4.3", "X-Powered-By"),
    ]
    assert ("X-Powered-By", "PHP/7.4.3") in fetched.headers


@pytest.mark.integration
def test_fetch_banners_stops_after_three_redirects() -> None:
    with banner_server() as base_url, pytest.raises(TargetUnreachable) as raised:
        fetch_banners(base_url + "/loop", timeout=5.0, egress=EgressPolicy())

    assert str(raised.value) == f"{base_url}/loop: more than 3 redirects"


@pytest.mark.integration
def test_fetch_banners_from_a_closed_port_is_target_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"

    with pytest.raises(TargetUnreachable, match=re.escape(f"{url}: GET failed")):
        fetch_banners(url, timeout=2.0, egress=EgressPolicy())


@pytest.mark.integration
def test_fetch_banners_rejects_headers_over_the_limit() -> None:
    with banner_server() as base_url, pytest.raises(BadInput, match="exceed the limit of 40"):
        fetch_banners(base_url + "/", timeout=5.0, max_header_bytes=40, egress=EgressPolicy())
