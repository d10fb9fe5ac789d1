"""`/etc/os-release`: which distribution, and so which OSV ecosystem and release, a host runs."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from checks.interface import BadInput, CheckMisconfigured
from checks.patch_level.packages import Ecosystem
from checks.patch_level.sources.files import quote_line, read_text

_ECOSYSTEM_BY_ID = {
    "debian": Ecosystem.DEBIAN,
    "ubuntu": Ecosystem.UBUNTU,
    "alpine": Ecosystem.ALPINE,
    "rhel": Ecosystem.RED_HAT,
    "centos": Ecosystem.RED_HAT,
    "rocky": Ecosystem.ROCKY,
    "almalinux": Ecosystem.ALMA,
}
_DISTRIBUTIONS = frozenset(_ECOSYSTEM_BY_ID.values())
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)")
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class OsRelease:
    """What os-release says, and the OSV ecosystem and release it maps to.

    `ecosystem` is None for a distribution OSV does not know. A derivative known only through
    `ID_LIKE` (Raspbian, Linux Mint) gets its parent's ecosystem but no release, since its
    `VERSION_ID` numbers its own releases, not its parent's.
    """

    id: str
    version_id: str | None
    ecosystem: Ecosystem | None
    release: str | None
    origin: str


def parse_os_release(text: str, origin: str) -> OsRelease:
    """Parse os-release text; raises BadInput naming `origin` and the line for a malformed line."""
    fields: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ASSIGNMENT.fullmatch(stripped)
        if match is None:
            raise BadInput(f"line {number} {quote_line(line)} is not KEY=value", subject=origin)
        try:
            words = shlex.split(match.group(2))
        except ValueError as error:
            raise BadInput(f"line {number} {quote_line(line)}: {error}", subject=origin) from None
        fields[match.group(1)] = " ".join(words)
    distribution_id = fields.get("ID", "linux").lower()
    version_id = fields.get("VERSION_ID") or None
    ecosystem = _ECOSYSTEM_BY_ID.get(distribution_id)
    release = _release(ecosystem, version_id) if ecosystem is not None else None
    if ecosystem is None:
        likes = fields.get("ID_LIKE", "").lower().split()
        ecosystem = next(
            (_ECOSYSTEM_BY_ID[like] for like in likes if like in _ECOSYSTEM_BY_ID), None
        )
    return OsRelease(distribution_id, version_id, ecosystem, release, origin)


class UnknownDistribution(Exception):
    """os-release names a distribution OSV has no advisories for: its packages cannot be judged."""

    def __init__(self, os_release: OsRelease) -> None:
        super().__init__(os_release)
        self.os_release = os_release

    def __str__(self) -> str:
        release = self.os_release
        return (
            f"{release.origin} names distribution {release.id!r}"
            + (f" {release.version_id}" if release.version_id else "")
            + ", which has no OSV advisories here: its packages cannot be judged"
        )


def read_os_release(path: Path) -> OsRelease:
    """Read and parse an os-release file; raises BadInput naming the file."""
    return parse_os_release(read_text(path, _MAX_BYTES), str(path))


def load_os_release(value: Path | OsRelease | None) -> OsRelease | None:
    """An os-release file read, or a distribution stated in the config, as it is."""
    return read_os_release(value) if isinstance(value, Path) else value


def stated_distribution(text: str, origin: str = "distribution in the config") -> OsRelease:
    """A distribution written as OSV does (`Ubuntu:22.04`, `Debian:12`, `Alpine:v3.19`,
    `Red Hat:9`) or as os-release's ID (`ubuntu:22.04`); the release may be left out.

    Raises ValueError for a distribution OSV has no advisories for.
    """
    name, _, version = (part.strip() for part in text.partition(":"))
    by_name = {ecosystem.value.lower(): ecosystem for ecosystem in Ecosystem}
    ecosystem = _ECOSYSTEM_BY_ID.get(name.lower()) or by_name.get(name.lower())
    if ecosystem is None or ecosystem not in _DISTRIBUTIONS:
        known = ", ".join(sorted(e.value for e in _DISTRIBUTIONS))
        raise ValueError(f"distribution {text!r} is not one of {known}")
    version_id = version.removeprefix("v") or None
    return OsRelease(
        name.lower(), version_id, ecosystem, _release(ecosystem, version_id), f"{origin} {text!r}"
    )


def distribution(
    os_release: OsRelease | None,
    *,
    family: frozenset[Ecosystem],
    database: str,
) -> tuple[Ecosystem, str | None]:
    """The ecosystem and release for packages from a `database` of the given `family`.

    Raises CheckMisconfigured without os-release (guessing a distribution reports a host of
    another as clean), UnknownDistribution for a distribution OSV does not know, and BadInput
    when os-release names a distribution outside the family (a dpkg database next to an
    Alpine os-release means the two files do not belong to one host).
    """
    if os_release is None:
        raise CheckMisconfigured(
            f"a {database} database needs os_release (the /etc/os-release of that system) or "
            "distribution (e.g. 'Ubuntu:22.04'): without them its distribution is unknown"
        )
    if os_release.ecosystem is None:
        raise UnknownDistribution(os_release)
    if os_release.ecosystem not in family:
        raise BadInput(
            f"names {os_release.ecosystem} ({os_release.id}), which does not use {database}",
            subject=os_release.origin,
        )
    return os_release.ecosystem, os_release.release


def _release(ecosystem: Ecosystem, version_id: str | None) -> str | None:
    if version_id is None:
        return None
    parts = version_id.split(".")
    match ecosystem:
        case Ecosystem.ALPINE:
            return "v" + ".".join(parts[:2])
        case Ecosystem.RED_HAT | Ecosystem.ROCKY | Ecosystem.ALMA:
            return parts[0]
        case _:
            return version_id
