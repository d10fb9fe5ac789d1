"""Debian and Ubuntu hosts: the dpkg database, `/var/lib/dpkg/status`.

The file is a series of RFC 822-like stanzas separated by blank lines. A line that starts
with a space or tab continues the field above it (`Description:` paragraphs, the
`Conffiles:` list). The parser is strict: a line it cannot place, or an installed package
without `Package`, `Version` or `Status`, raises BadInput naming the stanza, because a
silently dropped package is a vulnerability nobody is told about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from checks.interface import BadInput
from checks.patch_level.packages import Ecosystem, InstalledPackage
from checks.patch_level.sources.files import quote_line, read_text
from checks.patch_level.sources.os_release import OsRelease, distribution, load_os_release

DEFAULT_STATUS_PATH = Path("/var/lib/dpkg/status")

_FIELD = re.compile(r"([^\s:#-][^\s:]*):(.*)")
_PACKAGE_LINE = re.compile(r"Package:\s*(\S+)")
_SOURCE = re.compile(r"(\S+)(?:\s+\((\S+)\))?")
_FAMILY = frozenset({Ecosystem.DEBIAN, Ecosystem.UBUNTU})


@dataclass(frozen=True, slots=True)
class _Stanza:
    first_line: int
    lines: tuple[tuple[int, str], ...]  # (line number, text)

    def describe(self) -> str:
        """Where the stanza starts, and its package name even before the fields are parsed."""
        name = next(
            (m.group(1) for _, line in self.lines if (m := _PACKAGE_LINE.match(line))), None
        )
        package = f" (package {name!r})" if name else ""
        return f"stanza at line {self.first_line}{package}"


def parse_dpkg_status(
    text: str, origin: str, os_release: OsRelease | None = None
) -> tuple[InstalledPackage, ...]:
    """Every installed package in dpkg status text, in file order, without exact duplicates.

    Only stanzas whose `Status:` ends in the word `installed` count; removed packages whose
    configuration files remain (`deinstall ok config-files`) do not.

    Version choice: Debian's OSV advisories are filed per *source* package and version.
    When `Source:` carries a version (`Source: openssl (3.0.11-1)`, as after a binNMU or for
    a binary versioned apart from its source) that version is recorded; otherwise the
    binary's `Version:` is, which then equals the source version. Epochs are kept
    (`1:2.3-4`). `source_name` is set when `Source:` names a package other than the binary.

    Multi-arch copies of one package (`libc6:amd64`, `libc6:i386`) collapse to one entry.
    Ecosystem and release come from `os_release` (a file read, or a distribution stated in
    the config); without it, CheckMisconfigured: guessing Debian misses Ubuntu's advisories.
    Raises BadInput naming `origin`, the stanza and the line for anything unparseable.
    """
    ecosystem, release = distribution(os_release, family=_FAMILY, database="dpkg")
    packages: dict[InstalledPackage, None] = {}
    for stanza in _stanzas(text):
        fields = _fields(stanza, origin)
        package = _package(fields, stanza, origin, ecosystem, release)
        if package is not None:
            packages[package] = None
    return tuple(packages)


def read_dpkg_status(
    path: Path = DEFAULT_STATUS_PATH, os_release: Path | OsRelease | None = None
) -> tuple[InstalledPackage, ...]:
    """`parse_dpkg_status` of a file, with the ecosystem from an os-release file if given."""
    return parse_dpkg_status(read_text(path), str(path), load_os_release(os_release))


def _stanzas(text: str) -> Iterator[_Stanza]:
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            lines.append((number, line))
        elif lines:
            yield _Stanza(lines[0][0], tuple(lines))
            lines = []
    if lines:
        yield _Stanza(lines[0][0], tuple(lines))


def _fields(stanza: _Stanza, origin: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    current: str | None = None
    for number, line in stanza.lines:
        if line[0] in " \t":
            if current is None:
                raise _error(stanza, origin, f"line {number} continues no field")
            fields[current] += "\n" + line.strip()
            continue
        match = _FIELD.fullmatch(line)
        if match is None:
            raise _error(stanza, origin, f"line {number} {quote_line(line)} has no field name")
        current = match.group(1)
        if current in fields:
            raise _error(stanza, origin, f"line {number}: field {current!r} appears twice")
        fields[current] = match.group(2).strip()
    return fields


def _package(
    fields: dict[str, str],
    stanza: _Stanza,
    origin: str,
    ecosystem: Ecosystem,
    release: str | None,
) -> InstalledPackage | None:
    name = fields.get("Package")
    if not name:
        raise _error(stanza, origin, "no Package field")
    status = fields.get("Status")
    if not status:
        raise _error(stanza, origin, "no Status field")
    words = status.split()
    if len(words) != 3:
        raise _error(stanza, origin, f"Status {quote_line(status)} is not 'want flag state'")
    if words[2] != "installed":
        # purged packages may keep a record without a Version, so check only what counts
        return None
    binary_version = fields.get("Version")
    if not binary_version:
        raise _error(stanza, origin, "no Version field")
    source_name, version = name, binary_version
    if source := fields.get("Source"):
        match = _SOURCE.fullmatch(source)
        if match is None:
            raise _error(
                stanza, origin, f"Source field {quote_line(source)} is not 'name (version)'"
            )
        source_name, version = match.group(1), match.group(2) or binary_version
    return InstalledPackage(
        ecosystem=ecosystem,
        name=name,
        version=version,
        source=origin,
        release=release,
        source_name=source_name if source_name != name else None,
    )


def _error(stanza: _Stanza, origin: str, problem: str) -> BadInput:
    return BadInput(f"{stanza.describe()}: {problem}", subject=origin)
