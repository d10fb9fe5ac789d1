"""Build apivigil's Grafana dashboards (grafana-foundation-sdk) into dashboards/json/.

    python -m dashboards.build            # write dashboards/json/*.json
    python -m dashboards.build --check    # exit 1 when the committed JSON is out of date

`apivigil dashboards build` does the same. Adding a dashboard is one module in
dashboards/boards/ with a `dashboard()` function, listed in DASHBOARDS below.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.boards import (
    api_inventory,
    compliance,
    drift,
    http_posture,
    notifications,
    overview,
    patch_levels,
    tls,
)

JSON_DIR = Path(__file__).resolve().parent / "json"
# The SDK release the committed JSON is generated with (pyproject.toml pins the same): other
# releases write other JSON, and a bare install picks Grafana 10 types.
SDK = "grafana-foundation-sdk"
SDK_VERSION = "1769699379!11.6.0"

DASHBOARDS: tuple[Callable[[], Dashboard], ...] = (
    overview.dashboard,
    tls.dashboard,
    patch_levels.dashboard,
    drift.dashboard,
    api_inventory.dashboard,
    http_posture.dashboard,
    compliance.dashboard,
    notifications.dashboard,
)


def build_all() -> dict[str, dict[str, Any]]:
    """File name (`<uid>.json`) -> dashboard JSON, for every dashboard."""
    installed = version(SDK)
    if installed != SDK_VERSION:
        raise RuntimeError(f"{SDK} {installed} is installed; the dashboards need {SDK_VERSION}")
    documents: dict[str, dict[str, Any]] = {}
    for make in DASHBOARDS:
        document: dict[str, Any] = json.loads(json.dumps(make().build(), cls=JSONEncoder))
        name = f"{document['uid']}.json"
        if name in documents:
            raise ValueError(f"two dashboards have the uid {document['uid']}")
        documents[name] = document
    return documents


def render(document: Mapping[str, Any]) -> str:
    """The committed form of a dashboard: sorted keys, two-space indent, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard into `directory` and remove JSON files no dashboard makes."""
    directory.mkdir(parents=True, exist_ok=True)
    documents = build_all()
    written = []
    for name, document in documents.items():
        path = directory / name
        text = render(document)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    for stale in directory.glob("*.json"):
        if stale.name not in documents:
            stale.unlink()
    return written


def differences(directory: Path = JSON_DIR) -> list[str]:
    """What differs between `directory` and a fresh build (empty: up to date)."""
    documents = build_all()
    problems = []
    for name, document in documents.items():
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != render(document):
            problems.append(f"{name}: differs from dashboards/build.py's output")
    problems += [
        f"{stale.name}: no dashboard makes it"
        for stale in sorted(directory.glob("*.json"))
        if stale.name not in documents
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build apivigil's Grafana dashboards.")
    parser.add_argument("--out", type=Path, default=JSON_DIR, help="directory for the JSON")
    parser.add_argument("--check", action="store_true", help="only compare, exit 1 on a diff")
    options = parser.parse_args(argv)
    if options.check:
        problems = differences(options.out)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for path in write(options.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
