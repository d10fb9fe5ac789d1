"""OSV records written by tests: builders for records, directories and zip dumps."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

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


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    """One record as YAML, the way pypa/advisory-database writes them (timestamps unquoted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_unquoted_times(document), sort_keys=False))
    return path


def _unquoted_times(document: dict[str, Any]) -> dict[str, Any]:
    converted = dict(document)
    for key in ("modified", "published", "withdrawn"):
        if isinstance(converted.get(key), str):
            converted[key] = datetime.fromisoformat(converted[key])
    return converted


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def pypa_checkout(root: Path, documents: list[dict[str, Any]]) -> Path:
    """pypa/advisory-database: vulns/<package>/<id>.yaml, plus the repository's own files."""
    for document in documents:
        name = document["affected"][0]["package"]["name"].lower()
        write_yaml(root / "vulns" / name / f"{document['id']}.yaml", document)
    _repository_files(root)
    return root


def github_checkout(root: Path, documents: list[dict[str, Any]]) -> Path:
    """github/advisory-database: advisories/github-reviewed/YYYY/MM/<id>/<id>.json."""
    for document in documents:
        folder = root / "advisories" / "github-reviewed" / "2024" / "03" / document["id"]
        write_json(folder / f"{document['id']}.json", document)
    # unreviewed advisories are not read; one that is not even a record proves it
    (root / "advisories" / "unreviewed" / "2024").mkdir(parents=True)
    (root / "advisories" / "unreviewed" / "2024" / "GHSA-junk.json").write_text("{not json")
    _repository_files(root)
    return root


def golang_checkout(root: Path, documents: list[dict[str, Any]]) -> Path:
    """golang/vulndb: data/osv/<id>.json; data/reports/*.yaml are reports, not OSV."""
    for document in documents:
        write_json(root / "data" / "osv" / f"{document['id']}.json", document)
    (root / "data" / "reports").mkdir(parents=True)
    (root / "data" / "reports" / "GO-2024-0001.yaml").write_text("id: GO-2024-0001\nmodules: []\n")
    _repository_files(root)
    return root


def rustsec_checkout(root: Path, documents: list[dict[str, Any]]) -> Path:
    """The RustSec advisory-db OSV export (its `osv` branch): crates/<id>.json."""
    for document in documents:
        write_json(root / "crates" / f"{document['id']}.json", document)
    _repository_files(root)
    return root


def _repository_files(root: Path) -> None:
    (root / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
    (root / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    (root / ".git").mkdir(exist_ok=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "README.md").write_text("# advisories\n")
