"""End-of-life data in the endoflife.date format: which release cycle a version belongs to,
whether that cycle is past its end of life, and the latest patch of the cycle.

A product file is `<slug>.json` in a local directory, either the v0 API shape (a list of
cycles: `cycle`, `eol`, `latest`) or the v1 shape (`result.releases[]`: `name`, `isEol`,
`eolFrom`, `latest.name`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from checks.files import read_input_file
from checks.interface import BadInput

_MAX_PRODUCT_FILE = 8 * 1024 * 1024
_SLUG = re.compile(r"[a-z0-9][a-z0-9_+-]*(?:\.[a-z0-9_+-]+)*")


@dataclass(frozen=True, slots=True)
class ReleaseCycle:
    cycle: str
    eol: datetime | bool  # a date, or True/False when the source gives no date
    latest: str | None

    def is_eol(self, now: datetime) -> bool:
        if isinstance(self.eol, bool):
            return self.eol
        return now >= self.eol


@dataclass(frozen=True, slots=True)
class CycleVerdict:
    product: str
    version: str
    cycle: ReleaseCycle
    eol: bool
    behind_latest: bool


def load_product(path: Path) -> tuple[ReleaseCycle, ...]:
    """The release cycles in one product file; BadInput naming the file when unreadable."""
    origin = str(path)
    data = read_input_file(path, _MAX_PRODUCT_FILE)
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BadInput(f"not JSON: {error}", subject=origin) from None
    rows = _rows(document, origin)
    return tuple(_cycle(row, origin, index) for index, row in enumerate(rows))


def _rows(document: Any, origin: str) -> Sequence[Mapping[str, Any]]:
    if isinstance(document, list):
        rows: Any = document
    elif isinstance(document, dict) and isinstance(document.get("result"), dict):
        rows = document["result"].get("releases")
    else:
        rows = None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise BadInput(
            "neither a list of cycles (v0) nor result.releases (v1) of endoflife.date",
            subject=origin,
        )
    return rows


def _cycle(row: Mapping[str, Any], origin: str, index: int) -> ReleaseCycle:
    name = row.get("cycle", row.get("name"))
    if name is None:
        raise BadInput(f"release {index} has no cycle/name", subject=origin)
    if "isEol" in row:
        eol: datetime | bool = _date(row.get("eolFrom"), origin, index) or bool(row["isEol"])
    else:
        raw = row.get("eol", False)
        eol = raw if isinstance(raw, bool) else (_date(raw, origin, index) or False)
    latest = row.get("latest")
    if isinstance(latest, dict):
        latest = latest.get("name")
    return ReleaseCycle(cycle=str(name), eol=eol, latest=str(latest) if latest else None)


def _date(value: Any, origin: str, index: int) -> datetime | None:
    if value in (None, "", False, True):
        return None
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        raise BadInput(f"release {index}: {value!r} is not a date", subject=origin) from None
    return datetime.combine(day, time.min, tzinfo=UTC)


def cycle_for(version: str, cycles: Sequence[ReleaseCycle]) -> ReleaseCycle | None:
    """The cycle whose name is the longest dotted prefix of `version` (`1.18` for `1.18.0`)."""
    parts = version.split(".")
    best: ReleaseCycle | None = None
    for cycle in cycles:
        cycle_parts = cycle.cycle.split(".")
        if parts[: len(cycle_parts)] == cycle_parts and (
            best is None or len(cycle_parts) > len(best.cycle.split("."))
        ):
            best = cycle
    return best


def judge(
    product: str, version: str, cycles: Sequence[ReleaseCycle], now: datetime
) -> CycleVerdict | None:
    cycle = cycle_for(version, cycles)
    if cycle is None:
        return None
    return CycleVerdict(
        product=product,
        version=version,
        cycle=cycle,
        eol=cycle.is_eol(now),
        behind_latest=cycle.latest is not None and _older(version, cycle.latest),
    )


def _older(version: str, latest: str) -> bool:
    try:
        return Version(version) < Version(latest)
    except InvalidVersion:
        return False  # not comparable: do not claim it is outdated


class EolCatalogue:
    """Product files from a directory, each read at most once per catalogue."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._products: dict[str, tuple[ReleaseCycle, ...] | None] = {}

    def cycles(self, product: str) -> tuple[ReleaseCycle, ...] | None:
        """The product's cycles, None when the directory has no file for it."""
        if not _SLUG.fullmatch(product):
            return None  # product names come from banners: never let one pick a path
        if product not in self._products:
            path = self.directory / f"{product}.json"
            self._products[product] = load_product(path) if path.is_file() else None
        return self._products[product]
