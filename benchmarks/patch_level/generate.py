"""Synthetic, seeded inventory and OSV advisories for the patch_level benchmark.

The shapes follow osv.dev's data: GHSA records for PyPI and npm aliasing a CVE, PYSEC
records aliasing only the GHSA id (so groups form transitively), Debian records per release
filed against source packages, Alpine records per release, 1-3 affected entries, 1-2 ranges
with occasionally unsorted events, `last_affected` instead of `fixed` now and then, explicit
`versions` lists as osv.dev fills them in, CVSS v3 / v4 vectors or an advisory label.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

SYLLABLES = tuple(consonant + vowel for consonant in "bcdfgklmnprstvz" for vowel in "aeiou")
INSTALLED = {"PyPI": 1500, "npm": 2000, "Debian": 1000, "Alpine": 500}
UNIVERSE = {"PyPI": 20_000, "npm": 30_000, "Debian": 8_000, "Alpine": 4_000}
ECOSYSTEM_WEIGHTS = {"PyPI": 30, "npm": 35, "Debian": 25, "Alpine": 10}
HIT_SHARE = 0.25  # affected entries naming an installed package (or its source)
DEBIAN_RELEASES = ("11", "12")
ALPINE_RELEASES = ("v3.18", "v3.19")
CVSS3_METRICS = (
    ("AV", "NALP"), ("AC", "LH"), ("PR", "NLH"), ("UI", "NR"), ("S", "UC"),
    ("C", "HLN"), ("I", "HLN"), ("A", "HLN"),
)  # fmt: skip
CVSS4_METRICS = (
    ("AV", "NALP"), ("AC", "LH"), ("AT", "NP"), ("PR", "NLH"), ("UI", "NPA"),
    ("VC", "HLN"), ("VI", "HLN"), ("VA", "HLN"), ("SC", "HLN"), ("SI", "HLN"), ("SA", "HLN"),
)  # fmt: skip
WEAKNESSES = ("Injection", "Buffer overflow", "Authentication bypass", "Path traversal")
EPOCH = datetime(2018, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Dataset:
    inventory: list[dict[str, str | None]]
    records: list[dict[str, Any]]


def generate(packages: int, advisories: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    universe = {eco: _names(rng, eco, count) for eco, count in UNIVERSE.items()}
    scale = packages / sum(INSTALLED.values())
    inventory: list[dict[str, str | None]] = []
    installed_names: dict[str, list[str]] = {}
    for ecosystem, count in INSTALLED.items():
        wanted = max(1, round(count * scale))
        if ecosystem == "Debian":
            items, names = _debian_inventory(rng, universe["Debian"], wanted)
        else:
            names = rng.sample(universe[ecosystem], wanted)
            release = "3.19" if ecosystem == "Alpine" else None
            items = [_package(ecosystem, n, _version(rng, ecosystem), release) for n in names]
        inventory.extend(items)
        installed_names[ecosystem] = names
    records = list(_records(rng, advisories, universe, installed_names))
    return Dataset(inventory[:packages], records)


def write_directory(records: list[dict[str, Any]], directory: Path) -> None:
    for document in records:
        ecosystem = document["affected"][0]["package"]["ecosystem"].split(":")[0]
        folder = directory / ecosystem
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{document['id']}.json").write_text(json.dumps(document))


def write_yaml_tree(records: list[dict[str, Any]], root: Path) -> None:
    """pypa/advisory-database's layout: vulns/<package>/<ID>.yaml, timestamps unquoted."""
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for document in records:
        folder = root / "vulns" / document["affected"][0]["package"]["name"].lower()
        folder.mkdir(parents=True, exist_ok=True)
        converted = {
            key: datetime.fromisoformat(value)
            if key in ("modified", "published") and isinstance(value, str)
            else value
            for key, value in document.items()
        }
        text = yaml.dump(converted, Dumper=dumper, sort_keys=False, allow_unicode=True)
        (folder / f"{document['id']}.yaml").write_text(text)


def write_zip(records: list[dict[str, Any]], path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for document in records:
            archive.writestr(f"{document['id']}.json", json.dumps(document))


def _names(rng: random.Random, ecosystem: str, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        if ecosystem == "PyPI" and rng.random() < 0.3:
            stem += rng.choice(("-", "_", ".")) + rng.choice(SYLLABLES) * 2
        elif ecosystem == "npm" and rng.random() < 0.2:
            stem = f"@{rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)}/{stem}"
        names.add(stem)
    return sorted(names)


def _debian_inventory(
    rng: random.Random, sources: list[str], wanted: int
) -> tuple[list[dict[str, str | None]], list[str]]:
    items: list[dict[str, str | None]] = []
    chosen: list[str] = []
    for source in rng.sample(sources, wanted):
        version = _version(rng, "Debian")
        chosen.append(source)
        for binary in (source, f"lib{source}1", f"{source}-common")[: rng.randint(1, 3)]:
            items.append(_package("Debian", binary, version, "12", source))
            if len(items) == wanted:
                return items, chosen
    return items, chosen


def _package(
    ecosystem: str, name: str, version: str, release: str | None, source: str | None = None
) -> dict[str, str | None]:
    return {
        "ecosystem": ecosystem,
        "name": name,
        "version": version,
        "release": release,
        "source_name": source,
    }


def _version(rng: random.Random, ecosystem: str, floor: tuple[int, ...] = (0, 0, 0)) -> str:
    major = floor[0] + rng.choice((0, 0, 1, 2))
    minor, patch = rng.randint(0, 20), rng.randint(0, 30)
    base = f"{major}.{minor}.{patch}"
    if ecosystem == "PyPI":
        return base + rng.choice(
            ("",) * 18 + (f"rc{rng.randint(1, 3)}", f".post{rng.randint(1, 2)}")
        )
    if ecosystem == "npm":
        return base + rng.choice(("",) * 19 + (f"-beta.{rng.randint(1, 5)}",))
    if ecosystem == "Debian":
        epoch = "1:" if rng.random() < 0.1 else ""
        suffix = f"+deb12u{rng.randint(1, 4)}" if rng.random() < 0.3 else ""
        return f"{epoch}{base}-{rng.randint(1, 5)}{suffix}"
    return f"{base}-r{rng.randint(0, 12)}"


def _records(
    rng: random.Random,
    target: int,
    universe: dict[str, list[str]],
    installed: dict[str, list[str]],
) -> Iterator[dict[str, Any]]:
    made = 0
    serial = 0
    ecosystems, weights = zip(*ECOSYSTEM_WEIGHTS.items(), strict=True)
    while made < target:
        serial += 1
        ecosystem = rng.choices(ecosystems, weights)[0]
        cve = f"CVE-{2018 + serial % 8}-{10000 + serial}"
        ghsa = "GHSA-" + "-".join(
            "".join(rng.choice("23456789cfghjmpqrvwx") for _ in range(4)) for _ in range(3)
        )
        published = EPOCH + timedelta(minutes=rng.randint(0, 8 * 365 * 24 * 60))

        def pick(eco: str = ecosystem) -> str:
            pool = installed[eco] if rng.random() < HIT_SHARE else universe[eco]
            return rng.choice(pool)

        if ecosystem in ("PyPI", "npm"):
            names = [pick() for _ in range(rng.choice((1, 1, 1, 2, 3)))]
            entries = [_affected(rng, ecosystem, ecosystem, name) for name in names]
            yield _record(rng, ghsa, (cve,), entries, published, ghsa_label=True)
            made += 1
            if ecosystem == "PyPI" and rng.random() < 0.5:
                pysec = f"PYSEC-{published.year}-{serial}"
                yield _record(rng, pysec, (ghsa,), entries, published + timedelta(days=3))
                made += 1
        elif ecosystem == "Debian":
            source = pick()
            releases = rng.sample(DEBIAN_RELEASES, rng.randint(1, 2))
            entries = [_affected(rng, "Debian", f"Debian:{r}", source) for r in releases]
            yield _record(rng, f"DEBIAN-{cve}", (cve,), entries, published, urgency=True)
            made += 1
        else:
            name = pick()
            release = rng.choice(ALPINE_RELEASES)
            entries = [_affected(rng, "Alpine", f"Alpine:{release}", name)]
            yield _record(rng, f"ALPINE-{cve}", (cve,), entries, published)
            made += 1


def _affected(rng: random.Random, ecosystem: str, osv_ecosystem: str, name: str) -> dict[str, Any]:
    ranges = []
    floor = (0, 0, 0)
    for _ in range(rng.choice((1, 1, 1, 2))):
        introduced = "0" if rng.random() < 0.4 and not ranges else _version(rng, ecosystem, floor)
        end_kind = "last_affected" if rng.random() < 0.1 else "fixed"
        end = _later(rng, ecosystem, introduced)
        events = [{"introduced": introduced}, {end_kind: end}]
        if rng.random() < 0.1:
            events.reverse()  # osv.dev does not promise sorted events
        ranges.append({"type": "SEMVER" if ecosystem == "npm" else "ECOSYSTEM", "events": events})
        floor = (int(end.split(":")[-1].split(".")[0]) + 1, 0, 0)
    versions: list[str] = []
    if ecosystem in ("PyPI", "npm") and rng.random() < 0.4:
        versions = _listed_versions(rng, ranges[0]["events"])
    entry: dict[str, Any] = {
        "package": {"ecosystem": osv_ecosystem, "name": name},
        "ranges": ranges,
    }
    if versions:
        entry["versions"] = versions
    return entry


def _listed_versions(rng: random.Random, events: list[dict[str, str]]) -> list[str]:
    """Versions below the first range's end, as osv.dev enumerates affected versions."""
    end = next(v for event in events for k, v in event.items() if k != "introduced")
    major, minor = (
        int("".join(c for c in part if c.isdigit()) or 0) for part in end.split(".")[:2]
    )
    if minor == 0:
        return []
    low = max(0, minor - 5)
    return sorted(
        {
            f"{major}.{rng.randint(low, minor - 1)}.{rng.randint(0, 30)}"
            for _ in range(rng.randint(5, 40))
        }
    )


def _later(rng: random.Random, ecosystem: str, introduced: str) -> str:
    if introduced == "0":
        return _version(rng, ecosystem)
    head = introduced.rpartition(":")[2].partition("-")[0]
    major, minor = (
        int("".join(c for c in part if c.isdigit()) or 0) for part in head.split(".")[:2]
    )
    bumped = f"{major}.{minor + rng.randint(1, 5)}.{rng.randint(0, 9)}"
    if ecosystem == "Debian":
        return f"{bumped}-1+deb12u1"
    if ecosystem == "Alpine":
        return f"{bumped}-r0"
    return bumped


def _record(
    rng: random.Random,
    record_id: str,
    aliases: tuple[str, ...],
    entries: list[dict[str, Any]],
    published: datetime,
    *,
    ghsa_label: bool = False,
    urgency: bool = False,
) -> dict[str, Any]:
    severity = []
    draw = rng.random()
    if draw < 0.55:
        severity.append({"type": "CVSS_V3", "score": _vector("CVSS:3.1", CVSS3_METRICS, rng)})
    elif draw < 0.70:
        severity.append({"type": "CVSS_V4", "score": _vector("CVSS:4.0", CVSS4_METRICS, rng)})
    document: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": record_id,
        "modified": (published + timedelta(days=rng.randint(0, 400))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "published": published.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aliases": list(aliases),
        "summary": f"{rng.choice(WEAKNESSES)} in {entries[0]['package']['name']}",
        "details": " ".join(rng.choice(SYLLABLES) * 3 for _ in range(rng.randint(30, 120))),
        "severity": severity,
        "affected": entries,
        "references": [
            {"type": "WEB", "url": f"https://example.test/{record_id}/{n}"}
            for n in range(rng.randint(1, 4))
        ],
    }
    if ghsa_label:
        label = rng.choice(("LOW", "MODERATE", "HIGH", "CRITICAL"))
        document["database_specific"] = {"severity": label, "github_reviewed": True}
    if urgency:
        for entry in entries:
            entry["ecosystem_specific"] = {
                "urgency": rng.choice(("low", "medium", "high", "unimportant"))
            }
    return document


def _vector(prefix: str, metrics: tuple[tuple[str, str], ...], rng: random.Random) -> str:
    return "/".join([prefix, *(f"{name}:{rng.choice(values)}" for name, values in metrics)])
