"""Alpine hosts: the apk database, `/lib/apk/db/installed`.

Stanzas separated by blank lines, each line one letter, a colon and a value: `P:` the
package, `V:` its version, `o:` the origin (source) package, and many more that are not read.
"""

from __future__ import annotations

import re
from pathlib import Path

from checks.interface import BadInput
from checks.patch_level.packages import Ecosystem, InstalledPackage
from checks.patch_level.sources.files import quote_line, read_text
from checks.patch_level.sources.os_release import OsRelease, distribution, load_os_release

DEFAULT_INSTALLED_PATH = Path("/lib/apk/db/installed")

_LINE = re.compile(r"([A-Za-z]):(.*)")
_FAMILY = frozenset({Ecosystem.ALPINE})


def parse_apk_installed(
    text: str, origin: str, os_release: OsRelease | None = None
) -> tuple[InstalledPackage, ...]:
    """Every package in apk's installed database, in file order.

    `source_name` is the origin package when it differs from the package. The release
    (`v3.19`) comes from `os_release`; without it, CheckMisconfigured. Raises BadInput naming
    `origin` and the stanza for a line that is not `X:value` or a stanza without `P:` or `V:`.
    """
    ecosystem, release = distribution(os_release, family=_FAMILY, database="apk")
    packages: list[InstalledPackage] = []
    fields: dict[str, str] = {}
    first_line = 0
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if not line.strip():
            if fields:
                packages.append(_package(fields, first_line, origin, ecosystem, release))
            fields = {}
            continue
        if not fields:
            first_line = number
        match = _LINE.fullmatch(line)
        if match is None:
            raise BadInput(
                f"stanza at line {first_line}: line {number} {quote_line(line)} is not X:value",
                subject=origin,
            )
        # letters such as F: (folder) and R: (file) repeat; only the first of each is needed
        fields.setdefault(match.group(1), match.group(2).strip())
    return tuple(packages)


def read_apk_installed(
    path: Path = DEFAULT_INSTALLED_PATH, os_release: Path | OsRelease | None = None
) -> tuple[InstalledPackage, ...]:
    """`parse_apk_installed` of a file, with the release from an os-release file if given."""
    return parse_apk_installed(read_text(path), str(path), load_os_release(os_release))


def _package(
    fields: dict[str, str],
    first_line: int,
    origin: str,
    ecosystem: Ecosystem,
    release: str | None,
) -> InstalledPackage:
    name, version = fields.get("P"), fields.get("V")
    if not name or not version:
        package = f" (package {name!r})" if name else ""
        missing = "P: (package)" if not name else "V: (version)"
        raise BadInput(f"stanza at line {first_line}{package}: no {missing}", subject=origin)
    source_name = fields.get("o")
    return InstalledPackage(
        ecosystem=ecosystem,
        name=name,
        version=version,
        source=origin,
        release=release,
        source_name=source_name if source_name and source_name != name else None,
    )
