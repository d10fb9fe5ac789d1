"""OSV records written by tests: builders for records, directories and zip dumps."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

CVSS3_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
CVSS3_MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
CVSS4_HIGH = "CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"  # 7.1


def events(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{kind: version} for kind, version in pairs]


def osv_range(*pairs: tuple[str, str], kind: str = "ECOSYSTEM") -> dict[str, Any]:
    return {"type": kind, "events": events(*pairs)}


def affected(
    ecosystem: str, name: str, *ranges: dict[str, Any], versions: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": list(ranges),
        "versions": list(versions),
    }


def record(
    record_id: str,
    *entries: dict[str, Any],
    aliases: tuple[str, ...] = (),
    severity: tuple[tuple[str, str], ...] = (),
    published: str | None = "2024-03-01T00:00:00Z",
    modified: str = "2024-04-01T00:00:00Z",
    **extra: Any,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": record_id,
        "modified": modified,
        "aliases": list(aliases),
        "summary": f"summary of {record_id}",
        "severity": [{"type": kind, "score": score} for kind, score in severity],
        "affected": list(entries),
        "references": [{"type": "ADVISORY", "url": f"https://example.test/{record_id}"}],
        **extra,
    }
    if published is not None:
        document["published"] = published
    return document


def write_directory(directory: Path, documents: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for document in documents:
        (directory / f"{document['id']}.json").write_text(json.dumps(document))
    return directory


def write_zip(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for document in documents:
            archive.writestr(f"{document['id']}.json", json.dumps(document))
    return path
