"""SBOMs: CycloneDX JSON and SPDX 2 JSON documents, read through their components' purls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from checks.interface import BadInput
from checks.patch_level.packages import InstalledPackage
from checks.patch_level.sources.files import read_bytes
from checks.patch_level.sources.purl import package_from_purl

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# components and purls look the same in every CycloneDX JSON version (1.2 onwards);
# 1.4 to 1.6 are the ones tested
_CYCLONEDX_VERSION = re.compile(r"1\.([2-9]|\d{2,})")
_SPDX_VERSION = re.compile(r"SPDX-2\.\d+")


class SbomFormat(StrEnum):
    CYCLONEDX = "CycloneDX"
    SPDX = "SPDX"


@dataclass(frozen=True, slots=True)
class SbomRead:
    """The packages of one SBOM, and how many of its components could not become one."""

    format: SbomFormat
    spec_version: str
    packages: tuple[InstalledPackage, ...]
    skipped: int  # components without a purl or version, or of a type OSV does not cover


def parse_sbom(data: bytes, origin: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SbomRead:
    """Detect the format of an SBOM and read every component's purl, nested ones included.

    `origin` (the file or URL) names the packages' source and every error. CycloneDX's
    `metadata.component` is the SBOM's subject, not something it contains, and is left out.
    Raises BadInput for a document over `max_bytes` (checked before parsing), invalid JSON
    (with line and column), a document in neither format, a malformed component or an
    invalid purl, naming the component.
    """
    if len(data) > max_bytes:
        raise BadInput(f"larger than the limit of {max_bytes} bytes", subject=origin)
    document = _load_json(data, origin)
    if not isinstance(document, dict):
        raise BadInput(f"a JSON {type(document).__name__}, not an SBOM object", subject=origin)
    if document.get("bomFormat") == "CycloneDX":
        spec_version = _version(document, "specVersion", _CYCLONEDX_VERSION, origin)
        found = _cyclonedx_purls(document, origin)
        sbom_format = SbomFormat.CYCLONEDX
    elif isinstance(document.get("spdxVersion"), str):
        spec_version = _version(document, "spdxVersion", _SPDX_VERSION, origin)
        found = _spdx_purls(document, origin)
        sbom_format = SbomFormat.SPDX
    else:
        raise BadInput(
            "neither CycloneDX (no bomFormat 'CycloneDX') nor SPDX 2 (no spdxVersion) JSON",
            subject=origin,
        )
    packages: dict[InstalledPackage, None] = {}
    skipped = 0
    for where, purl in found:
        package = _package(purl, where, origin) if purl is not None else None
        if package is None:
            skipped += 1
        else:
            packages[package] = None
    return SbomRead(sbom_format, spec_version, tuple(packages), skipped)


def read_sbom(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> SbomRead:
    """`parse_sbom` of a file, reading no more than `max_bytes` + 1 bytes of it."""
    return parse_sbom(read_bytes(path, max_bytes), str(path), max_bytes=max_bytes)


def _load_json(data: bytes, origin: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            subject=origin,
        ) from None
    except UnicodeDecodeError as error:
        raise BadInput(f"not UTF-8 text: {error}", subject=origin) from None
    except RecursionError:
        raise BadInput("JSON nested too deeply to read", subject=origin) from None


def _version(document: dict[str, Any], key: str, accepted: re.Pattern[str], origin: str) -> str:
    version = document.get(key)
    if not isinstance(version, str) or not accepted.fullmatch(version):
        raise BadInput(f"{key} {version!r} is not a version this reader knows", subject=origin)
    return version


def _cyclonedx_purls(document: dict[str, Any], origin: str) -> Iterator[tuple[str, str | None]]:
    """(where, purl or None) for every component, depth first, in document order."""
    pending: list[tuple[str, Any]] = []
    pending.extend(reversed(_listed(document, "components", "components", origin)))
    while pending:
        where, component = pending.pop()
        if not isinstance(component, dict):
            raise BadInput(f"{where} is not an object", subject=origin)
        described = f"{where} ({component.get('name')!r})"
        yield described, _optional_string(component, "purl", described, origin)
        pending.extend(reversed(_listed(component, "components", f"{where}.components", origin)))


def _spdx_purls(document: dict[str, Any], origin: str) -> Iterator[tuple[str, str | None]]:
    for where, package in _listed(document, "packages", "packages", origin):
        if not isinstance(package, dict):
            raise BadInput(f"{where} is not an object", subject=origin)
        described = f"{where} ({package.get('name')!r})"
        purl = None
        for ref_where, reference in _listed(
            package, "externalRefs", f"{where}.externalRefs", origin
        ):
            if not isinstance(reference, dict):
                raise BadInput(f"{ref_where} is not an object", subject=origin)
            if reference.get("referenceType") == "purl":
                purl = _optional_string(reference, "referenceLocator", described, origin)
                break
        yield described, purl


def _listed(holder: dict[str, Any], key: str, where: str, origin: str) -> list[tuple[str, Any]]:
    items = holder.get(key, [])
    if not isinstance(items, list):
        raise BadInput(f"{where} is not an array", subject=origin)
    return [(f"{where}[{index}]", item) for index, item in enumerate(items)]


def _optional_string(holder: dict[str, Any], key: str, where: str, origin: str) -> str | None:
    value = holder.get(key)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{where}: {key} is not a string", subject=origin)
    return value or None


def _package(purl: str, where: str, origin: str) -> InstalledPackage | None:
    try:
        return package_from_purl(purl, origin)
    except ValueError as error:
        raise BadInput(f"{where}: purl {purl!r} is not valid: {error}", subject=origin) from None
