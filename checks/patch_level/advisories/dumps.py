"""Read OSV documents as the sources publish them, defensively.

A source is a directory tree of OSV records as JSON (`*.json`) or YAML (`*.yaml`, `*.yml`),
an osv.dev zip dump (`<Ecosystem>/all.zip`), a single record file, or a git checkout of an
advisory repository in its own layout (`LAYOUTS`: only its records are read, not its tooling).
Hidden directories (`.git`, `.github`) are never entered.

A dump is untrusted input: a zip can declare small members that inflate to gigabytes. Every
member's declared size and compression ratio are checked before it is opened, it is read with
a hard cap, and the archive's total is capped too; crossing a limit is an AdvisoryIndexError.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from checks.patch_level.advisories.errors import AdvisoryIndexError

DUMP_NAME = "all.zip"  # osv.dev publishes <Ecosystem>/all.zip
MIB = 2**20
YAML_SUFFIXES = (".yaml", ".yml")
RECORD_SUFFIXES = (".json", *YAML_SUFFIXES)
# Advisory repositories, by the folder of theirs that holds OSV records.
LAYOUTS: tuple[tuple[str, str], ...] = (
    ("advisories/github-reviewed", "github/advisory-database"),
    ("vulns", "pypa/advisory-database"),
    ("data/osv", "golang/vulndb"),
    ("crates", "RustSec advisory-db OSV export"),
)
WHAT_IS_READ = (
    "OSV records as *.json, *.yaml or *.yml files, osv.dev zip dumps (all.zip), and checkouts "
    "of " + ", ".join(f"{name} ({folder}/)" for folder, name in LAYOUTS)
)


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_member_bytes: int = 16 * MIB
    max_archive_bytes: int = 8 * 1024 * MIB
    max_members: int = 2_000_000
    max_ratio: float = 100.0  # uncompressed / compressed, checked for members above ratio_floor
    ratio_floor_bytes: int = MIB  # small members cannot do harm whatever their ratio


@dataclass(frozen=True, slots=True)
class Document:
    origin: str  # the file, or "<zip> member <name>"
    data: bytes
    source: str  # the source (as given to `read_sources`) it was read from
    yaml: bool = False


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A file of a directory source that is skipped (too large, or unreadable)."""

    origin: str
    problem: str
    source: str


@dataclass(slots=True)
class SourceCensus:
    """What one source held: its layout, and the files that were not read, by suffix."""

    source: str
    layout: str = "files"
    ignored: Counter[str] = field(default_factory=Counter)

    def describe_ignored(self) -> str:
        if not self.ignored:
            return "no other files"
        return ", ".join(
            f"{count} {suffix or '(no suffix)'}" for suffix, count in self.ignored.most_common()
        )


def read_sources(
    sources: Sequence[Path], limits: ZipLimits, census: dict[str, SourceCensus] | None = None
) -> Iterator[Document | Unreadable]:
    """The OSV documents of every source, in a stable order.

    `census`, when given, is filled with a SourceCensus per source. Raises AdvisoryIndexError
    for a missing source or a zip that is damaged or crosses a limit.
    """
    for source in sources:
        name = str(source)
        seen = SourceCensus(name)
        if census is not None:
            census[name] = seen
        if source.is_dir():
            yield from _read_checkout(source, name, limits, seen)
        elif source.is_file() and source.suffix.lower() in RECORD_SUFFIXES:
            seen.layout = "one record file"
            yield _read_file(source, name, limits)
        elif source.is_file() and zipfile.is_zipfile(source):
            seen.layout = "zip dump"
            yield from _read_zip(source, name, limits)
        else:
            raise AdvisoryIndexError(
                source,
                "is neither a directory of OSV records, an OSV JSON or YAML file nor an OSV "
                f"zip dump (read are {WHAT_IS_READ})",
            )


def _read_checkout(
    directory: Path, source: str, limits: ZipLimits, census: SourceCensus
) -> Iterator[Document | Unreadable]:
    layouts = [(folder, name) for folder, name in LAYOUTS if (directory / folder).is_dir()]
    if not layouts:
        yield from _read_directory(directory, source, limits, census)
        return
    census.layout = ", ".join(f"{name} ({folder}/)" for folder, name in layouts)
    for folder, _ in layouts:
        yield from _read_directory(directory / folder, source, limits, census)


def _read_directory(
    directory: Path, source: str, limits: ZipLimits, census: SourceCensus
) -> Iterator[Document | Unreadable]:
    errors: list[OSError] = []  # folders os.walk could not list: skipped, never silently
    for root, folders, files in os.walk(directory, onerror=errors.append):
        for error in errors:
            yield Unreadable(str(error.filename), f"cannot be listed: {error.strerror}", source)
        errors.clear()
        folders[:] = sorted(folder for folder in folders if not folder.startswith("."))
        for file_name in sorted(files):
            path = Path(root, file_name)
            suffix = path.suffix.lower()
            if file_name.startswith("."):
                continue
            if not path.is_file():  # a FIFO or a device is never opened
                census.ignored["(not a regular file)"] += 1
                continue
            if suffix in RECORD_SUFFIXES:
                yield _read_file(path, source, limits)
            elif file_name == DUMP_NAME:
                yield from _read_zip(path, source, limits)
            else:
                census.ignored[suffix] += 1
    for error in errors:
        yield Unreadable(str(error.filename), f"cannot be listed: {error.strerror}", source)


def _read_file(path: Path, source: str, limits: ZipLimits) -> Document | Unreadable:
    try:
        with path.open("rb") as stream:
            data = stream.read(limits.max_member_bytes + 1)
    except OSError as error:
        return Unreadable(str(path), f"cannot be read: {error.strerror or error}", source)
    if len(data) > limits.max_member_bytes:
        return Unreadable(str(path), f"is larger than {limits.max_member_bytes} bytes", source)
    return Document(str(path), data, source, path.suffix.lower() in YAML_SUFFIXES)


def _read_zip(path: Path, source: str, limits: ZipLimits) -> Iterator[Document]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise AdvisoryIndexError(path, f"is not a readable zip: {error}") from None
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and info.filename.lower().endswith(RECORD_SUFFIXES)
        ]
        if len(members) > limits.max_members:
            raise AdvisoryIndexError(
                path, f"has {len(members)} members, more than the limit of {limits.max_members}"
            )
        _check_declared_sizes(path, members, limits)
        total = 0
        for info in members:
            data = _read_member(path, archive, info, limits)
            total += len(data)
            if total > limits.max_archive_bytes:
                raise AdvisoryIndexError(
                    path,
                    f"inflates past the limit of {limits.max_archive_bytes} bytes in all",
                    info.filename,
                )
            yaml = info.filename.lower().endswith(YAML_SUFFIXES)
            yield Document(f"{path} member {info.filename}", data, source, yaml)


def _check_declared_sizes(path: Path, members: list[zipfile.ZipInfo], limits: ZipLimits) -> None:
    declared_total = 0
    for info in members:
        if info.file_size > limits.max_member_bytes:
            raise AdvisoryIndexError(
                path,
                f"declares {info.file_size} bytes, more than the limit of "
                f"{limits.max_member_bytes} per record (a zip bomb?)",
                info.filename,
            )
        if info.file_size > limits.ratio_floor_bytes and (
            info.compress_size == 0 or info.file_size / info.compress_size > limits.max_ratio
        ):
            raise AdvisoryIndexError(
                path,
                f"compresses {info.file_size} bytes into {info.compress_size}, beyond the "
                f"ratio limit of {limits.max_ratio:g} (a zip bomb?)",
                info.filename,
            )
        declared_total += info.file_size
        if declared_total > limits.max_archive_bytes:
            raise AdvisoryIndexError(
                path,
                f"declares more than the limit of {limits.max_archive_bytes} bytes in all",
                info.filename,
            )


def _read_member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits
) -> bytes:
    try:
        with archive.open(info) as stream:
            # Never trust the declared size: read at most one byte past the cap.
            data = stream.read(limits.max_member_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        # A member inflating past its declared size fails its CRC check here.
        raise AdvisoryIndexError(
            path, f"does not inflate as declared (damaged, or a zip bomb): {error}", info.filename
        ) from None
    if len(data) > limits.max_member_bytes:
        raise AdvisoryIndexError(
            path,
            f"inflates past the limit of {limits.max_member_bytes} bytes per record (a zip bomb?)",
            info.filename,
        )
    return data
