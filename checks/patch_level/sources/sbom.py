"""SBOMs: CycloneDX JSON and SPDX 2 JSON documents, read through their components' purls.

Read as Trivy, Syft, cdxgen and cyclonedx-py write them: each component's properties (the
source package, see `purl`), the operating system the SBOM names (an `operating-system`
component, CycloneDX `metadata.component`, an SPDX package whose purpose is
OPERATING-SYSTEM) for OS packages whose purl does not say their distribution, and the
producer, from CycloneDX `metadata.tools` (1.4's array or 1.5's `{components: [...]}`) or
SPDX `creationInfo.creators`.
"""

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
from checks.patch_level.sources.purl import (
    Distribution,
    UnknownDistribution,
    distribution_ecosystem,
    package_from_purl,
)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# components and purls look the same in every CycloneDX JSON version (1.2 onwards);
# 1.4 to 1.6 are the ones tested
_CYCLONEDX_VERSION = re.compile(r"1\.([2-9]|\d{2,})")
_SPDX_VERSION = re.compile(r"SPDX-2\.\d+")
_SPDX_TOOL = re.compile(r"Tool:\s*(.+?)(?:-v?(\d[\w.+-]*))?")
_SPDX_BUILT_FROM = re.compile(r"built package from:\s*(\S+)(?:\s+(\S+))?")
_OS_ID_PROPERTIES = ("platform", "syft:distro:id", "aquasecurity:trivy:OSFamily")
_OS_VERSION_PROPERTIES = ("syft:distro:versionID",)
# when several tools are listed (cdxgen lists the trivy it ran), the outermost one produced it
_KNOWN_PRODUCERS = ("cdxgen", "syft", "trivy", "cyclonedx-py")
_OS_TYPE = "operating-system"
Properties = dict[str, str]


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
    producer: str | None = None  # "trivy 0.50.1", "syft 1.0.1", "cdxgen 12.8.4" ...
    distribution: Distribution | None = None  # the operating system the SBOM names
    unknown_distribution: tuple[UnknownDistribution, ...] = ()  # OS packages not judgeable


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
        found = list(_cyclonedx_purls(document, origin))
        sbom_format = SbomFormat.CYCLONEDX
        producer = _cyclonedx_producer(document)
        systems = _cyclonedx_systems(document)
    elif isinstance(document.get("spdxVersion"), str):
        spec_version = _version(document, "spdxVersion", _SPDX_VERSION, origin)
        found = list(_spdx_purls(document, origin))
        sbom_format = SbomFormat.SPDX
        producer = _spdx_producer(document)
        systems = _spdx_systems(document)
    else:
        raise BadInput(
            "neither CycloneDX (no bomFormat 'CycloneDX') nor SPDX 2 (no spdxVersion) JSON",
            subject=origin,
        )
    distribution = _choose_distribution(systems)
    packages: dict[InstalledPackage, None] = {}
    unknown: list[UnknownDistribution] = []
    skipped = 0
    for where, purl, properties in found:
        read = _package(purl, properties, distribution, where, origin) if purl is not None else None
        if isinstance(read, InstalledPackage):
            packages[read] = None
        elif isinstance(read, UnknownDistribution):
            unknown.append(read)
        else:
            skipped += 1
    return SbomRead(
        sbom_format,
        spec_version,
        tuple(packages),
        skipped,
        producer,
        distribution,
        tuple(unknown),
    )


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


def _cyclonedx_components(document: dict[str, Any], origin: str) -> Iterator[tuple[str, Any]]:
    """(where, component) for every component, depth first, in document order."""
    pending: list[tuple[str, Any]] = []
    pending.extend(reversed(_listed(document, "components", "components", origin)))
    while pending:
        where, component = pending.pop()
        if not isinstance(component, dict):
            raise BadInput(f"{where} is not an object", subject=origin)
        yield where, component
        pending.extend(reversed(_listed(component, "components", f"{where}.components", origin)))


def _cyclonedx_purls(
    document: dict[str, Any], origin: str
) -> Iterator[tuple[str, str | None, Properties]]:
    """(where, purl or None, properties) for every component."""
    for where, component in _cyclonedx_components(document, origin):
        described = f"{where} ({component.get('name')!r})"
        purl = _optional_string(component, "purl", described, origin)
        yield described, purl, _properties(component.get("properties"))


def _spdx_purls(
    document: dict[str, Any], origin: str
) -> Iterator[tuple[str, str | None, Properties]]:
    for where, package in _spdx_packages(document, origin):
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
        yield described, purl, _spdx_source(package.get("sourceInfo"))


def _spdx_packages(document: dict[str, Any], origin: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, package in _listed(document, "packages", "packages", origin):
        if not isinstance(package, dict):
            raise BadInput(f"{where} is not an object", subject=origin)
        yield where, package


def _spdx_source(source_info: Any) -> Properties:
    """Trivy's `sourceInfo: built package from: openssh 1:8.9p1-3ubuntu0.4` as properties."""
    match = (
        _SPDX_BUILT_FROM.fullmatch(source_info.strip()) if isinstance(source_info, str) else None
    )
    if match is None:
        return {}
    return {"source": f"{match.group(1)} ({match.group(2)})" if match.group(2) else match.group(1)}


def _properties(value: Any) -> Properties:
    """CycloneDX `properties` (a list of name/value objects) as a mapping; first name wins."""
    found: Properties = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            name, text = item.get("name"), item.get("value")
            if isinstance(name, str) and isinstance(text, str):
                found.setdefault(name, text)
    return found


def _cyclonedx_producer(document: dict[str, Any]) -> str | None:
    metadata = document.get("metadata")
    tools = metadata.get("tools") if isinstance(metadata, dict) else None
    if isinstance(tools, dict):  # CycloneDX 1.5 onwards
        tools = [*_as_list(tools.get("components")), *_as_list(tools.get("services"))]
    named = []
    for tool in _as_list(tools):
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            version = tool.get("version")
            named.append((tool["name"], version if isinstance(version, str) else None))
    return _producer(named)


def _spdx_producer(document: dict[str, Any]) -> str | None:
    info = document.get("creationInfo")
    creators = info.get("creators") if isinstance(info, dict) else None
    named = []
    for creator in _as_list(creators):
        match = _SPDX_TOOL.fullmatch(creator) if isinstance(creator, str) else None
        if match:
            named.append((match.group(1).strip(), match.group(2)))
    return _producer(named)


def _producer(tools: list[tuple[str, str | None]]) -> str | None:
    if not tools:
        return None
    by_name = {name.lower(): (name, version) for name, version in tools}
    known = next((by_name[name] for name in _KNOWN_PRODUCERS if name in by_name), tools[0])
    name, version = known
    return f"{name} {version}" if version else name


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _cyclonedx_systems(document: dict[str, Any]) -> list[Distribution]:
    metadata = document.get("metadata")
    candidates = [metadata.get("component")] if isinstance(metadata, dict) else []
    candidates.extend(component for _, component in _cyclonedx_components(document, "sbom"))
    systems = []
    for component in candidates:
        if isinstance(component, dict) and component.get("type") == _OS_TYPE:
            properties = _properties(component.get("properties"))
            named = next((properties[k] for k in _OS_ID_PROPERTIES if k in properties), None)
            release = next((properties[k] for k in _OS_VERSION_PROPERTIES if k in properties), None)
            systems.append(
                _system(named or component.get("name"), release or component.get("version"))
            )
    return [system for system in systems if system is not None]


def _spdx_systems(document: dict[str, Any]) -> list[Distribution]:
    systems = []
    for _, package in _spdx_packages(document, "sbom"):
        if package.get("primaryPackagePurpose") == "OPERATING-SYSTEM":
            systems.append(_system(package.get("name"), package.get("versionInfo")))
    return [system for system in systems if system is not None]


def _system(name: Any, version: Any) -> Distribution | None:
    """`Debian+GNU/Linux` / `12 (bookworm)` (cdxgen) or `ubuntu` / `22.04` (Trivy, Syft)."""
    if not isinstance(name, str) or not name.strip():
        return None
    words = re.split(r"[^a-z0-9]+", name.lower())
    identifier = next((w for w in words if distribution_ecosystem(w)), words[0] or name.lower())
    release = version.split(" ")[0] if isinstance(version, str) and version.strip() else None
    return Distribution(identifier, release)


def _choose_distribution(systems: list[Distribution]) -> Distribution | None:
    """The first system OSV knows, else the first named (so that it can be reported)."""
    known = [system for system in systems if distribution_ecosystem(system.id)]
    chosen = known or systems
    return chosen[0] if chosen else None


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


def _package(
    purl: str,
    properties: Properties,
    distribution: Distribution | None,
    where: str,
    origin: str,
) -> InstalledPackage | UnknownDistribution | None:
    try:
        return package_from_purl(purl, origin, properties=properties, distribution=distribution)
    except ValueError as error:
        raise BadInput(f"{where}: purl {purl!r} is not valid: {error}", subject=origin) from None
