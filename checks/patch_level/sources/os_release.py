"""`/etc/os-release`: which distribution, and so which OSV ecosystem and release, a host runs."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from checks.interface import BadInput
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


def read_os_release(path: Path) -> OsRelease:
    """Read and parse an os-release file; raises BadInput naming the file."""
    return parse_os_release(read_text(path, _MAX_BYTES), str(path))


def distribution(
    os_release: OsRelease | None,
    *,
    family: frozenset[Ecosystem],
    default: Ecosystem,
    database: str,
) -> tuple[Ecosystem, str | None]:
    """The ecosystem and release for packages from a `database` of the given `family`.

    Without os-release, or for a distribution OSV does not know, `default` with no release.
    Raises BadInput when os-release names a distribution outside the family (a dpkg database
    next to an Alpine os-release means the two files do not belong to one host).
    """
    if os_release is None or os_release.ecosystem is None:
        return default, None
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
