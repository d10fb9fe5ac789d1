"""Read OSV documents from a directory tree or from osv.dev's zip dumps, defensively.

A dump is untrusted input: a zip can declare small members that inflate to gigabytes. Every
member's declared size and compression ratio are checked before it is opened, it is read with
a hard cap, and the archive's total is capped too; crossing a limit is an AdvisoryIndexError.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from checks.patch_level.advisories.errors import AdvisoryIndexError

DUMP_NAME = "all.zip"  # osv.dev publishes <Ecosystem>/all.zip
MIB = 2**20


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


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A file of a directory source that is skipped (too large, or unreadable)."""

    origin: str
    problem: str


def read_sources(sources: Sequence[Path], limits: ZipLimits) -> Iterator[Document | Unreadable]:
    """The OSV documents of every source, in a stable order.

    A source is a directory (its `*.json` files and `all.zip` dumps, recursively), a zip dump,
    or a single JSON file. Raises AdvisoryIndexError for a missing source or a zip that is
    damaged or crosses a limit.
    """
    for source in sources:
        if source.is_dir():
            yield from _read_directory(source, limits)
        elif source.is_file() and source.suffix == ".json":
            yield _read_file(source, limits)
        elif source.is_file() and zipfile.is_zipfile(source):
            yield from _read_zip(source, limits)
        else:
            raise AdvisoryIndexError(
                source, "is neither a directory of OSV JSON files, a JSON file nor an OSV zip dump"
            )


def _read_directory(directory: Path, limits: ZipLimits) -> Iterator[Document | Unreadable]:
    for path in sorted(directory.rglob("*")):
        if path.suffix == ".json" and path.is_file():
            yield _read_file(path, limits)
        elif path.name == DUMP_NAME and path.is_file():
            yield from _read_zip(path, limits)


def _read_file(path: Path, limits: ZipLimits) -> Document | Unreadable:
    try:
        with path.open("rb") as stream:
            data = stream.read(limits.max_member_bytes + 1)
    except OSError as error:
        return Unreadable(str(path), f"cannot be read: {error.strerror or error}")
    if len(data) > limits.max_member_bytes:
        return Unreadable(str(path), f"is larger than {limits.max_member_bytes} bytes")
    return Document(str(path), data)


def _read_zip(path: Path, limits: ZipLimits) -> Iterator[Document]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise AdvisoryIndexError(path, f"is not a readable zip: {error}") from None
    with archive:
        members = [
            info
            for info in archive.infolist()
            if not info.is_dir() and info.filename.endswith(".json")
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
            yield Document(f"{path} member {info.filename}", data)


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
