"""Python environments: installed distributions, pinned requirements and lock files.

Names are normalised as PEP 503 says (`Foo_Bar` and `foo-bar` are one project), versions
kept as written. Environment markers are not evaluated: the target's interpreter is not
known here, so a pinned package counts whatever its marker.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from checks.interface import BadInput
from checks.patch_level.packages import Ecosystem, InstalledPackage
from checks.patch_level.sources.files import quote_line, read_bytes, read_text

_METADATA_MAX_BYTES = 4 * 1024 * 1024
_PINNING_OPERATORS = frozenset({"==", "==="})


@dataclass(frozen=True, slots=True)
class RequirementsRead:
    """The pinned packages of a requirements file, and the requirements that pin nothing."""

    packages: tuple[InstalledPackage, ...]
    unpinned: tuple[str, ...]  # each as written, e.g. "requests>=2" or "./vendor/lib"


def read_site_packages(directory: Path) -> tuple[InstalledPackage, ...]:
    """Every distribution installed in a site-packages directory, sorted by name.

    Reads `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or an `*.egg-info` file, as
    old distutils installs leave). Raises BadInput naming the file whose metadata lacks a
    Name or Version, or naming the directory when it is none.
    """
    if not directory.is_dir():
        raise BadInput("not a directory", subject=str(directory))
    candidates = [
        *directory.glob("*.dist-info/METADATA"),
        *directory.glob("*.egg-info/PKG-INFO"),
        *(path for path in directory.glob("*.egg-info") if path.is_file()),
    ]
    packages = {_from_metadata(path, str(directory)) for path in candidates}
    return tuple(sorted(packages, key=lambda package: (package.name, package.version)))


def parse_requirements(text: str, origin: str) -> RequirementsRead:
    """`name==version` lines of a pip requirements file as packages.

    Skips comments, blank lines and option lines (`-r`, `-e`, `--index-url`); drops
    per-requirement options (`--hash=...`), extras and markers. Lines that do not pin one
    exact version (`requests>=2`, `flask`, `foo==1.*`, URLs and paths) are returned in
    `unpinned`. Raises BadInput naming `origin` and the line for an unparseable requirement.
    """
    packages: dict[InstalledPackage, None] = {}
    unpinned: list[str] = []
    for number, line in _logical_lines(text):
        words = line.split()
        if not words or words[0].startswith("-"):
            continue
        requirement_text = " ".join(_until_option(words))
        if requirement_text.startswith((".", "/")) or "://" in requirement_text.split(";")[0]:
            unpinned.append(requirement_text)
            continue
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement as error:
            raise BadInput(
                f"line {number} {quote_line(requirement_text)}: {error}", subject=origin
            ) from None
        specifiers = list(requirement.specifier)
        pinned = (
            len(specifiers) == 1
            and specifiers[0].operator in _PINNING_OPERATORS
            and not specifiers[0].version.endswith("*")
            and requirement.url is None
        )
        if not pinned:
            unpinned.append(requirement_text)
            continue
        packages[_package(requirement.name, specifiers[0].version, origin)] = None
    return RequirementsRead(tuple(packages), tuple(unpinned))


def read_requirements(path: Path) -> RequirementsRead:
    """`parse_requirements` of a file; included files (`-r`) are not followed."""
    return parse_requirements(read_text(path), str(path))


def parse_poetry_lock(text: str, origin: str) -> tuple[InstalledPackage, ...]:
    """Every `[[package]]` of a poetry.lock (it never lists the project itself)."""
    return tuple(
        _package(*_name_and_version(entry, index, origin), origin)
        for index, entry in _lock_packages(text, origin)
    )


def read_poetry_lock(path: Path) -> tuple[InstalledPackage, ...]:
    return parse_poetry_lock(read_text(path), str(path))


def parse_uv_lock(text: str, origin: str) -> tuple[InstalledPackage, ...]:
    """Every `[[package]]` of a uv.lock except the workspace's own (editable or virtual)."""
    packages: list[InstalledPackage] = []
    for index, entry in _lock_packages(text, origin):
        source = entry.get("source")
        if isinstance(source, dict) and ("editable" in source or "virtual" in source):
            continue
        packages.append(_package(*_name_and_version(entry, index, origin), origin))
    return tuple(packages)


def read_uv_lock(path: Path) -> tuple[InstalledPackage, ...]:
    return parse_uv_lock(read_text(path), str(path))


def _from_metadata(path: Path, origin: str) -> InstalledPackage:
    headers = BytesHeaderParser().parsebytes(read_bytes(path, _METADATA_MAX_BYTES))
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise BadInput("metadata without a Name and a Version header", subject=str(path))
    return _package(str(name).strip(), str(version).strip(), origin)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) per requirement, comments cut, backslash continuations joined."""
    logical: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw if not raw.lstrip().startswith("#") else ""
        if " #" in line or "\t#" in line:
            line = line[: min(i for i in (line.find(" #"), line.find("\t#")) if i >= 0)]
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        logical.append((start, " ".join(pending)))
        pending = []
    if pending:
        logical.append((start, " ".join(pending)))
    return logical


def _until_option(words: list[str]) -> list[str]:
    for index, word in enumerate(words):
        if word.startswith("--"):
            return words[:index]
    return words


def _lock_packages(text: str, origin: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"not valid TOML: {error}", subject=origin) from None
    entries = document.get("package", [])
    if not isinstance(entries, list):
        raise BadInput("'package' is not an array of tables", subject=origin)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BadInput(f"package #{index + 1} is not a table", subject=origin)
    return list(enumerate(entries, start=1))


def _name_and_version(entry: dict[str, Any], index: int, origin: str) -> tuple[str, str]:
    name, version = entry.get("name"), entry.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        label = f" ({name!r})" if isinstance(name, str) else ""
        raise BadInput(f"package #{index}{label} lacks a name or a version", subject=origin)
    return name, version


def _package(name: str, version: str, origin: str) -> InstalledPackage:
    return InstalledPackage(
        ecosystem=Ecosystem.PYPI, name=canonicalize_name(name), version=version, source=origin
    )
