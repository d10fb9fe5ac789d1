"""One measured step of the patch_level benchmark, run as its own process by run.py.

    worker.py build INDEX SOURCE...   build_index(SOURCES, INDEX)
    worker.py match INDEX INVENTORY   AdvisoryIndex.open(INDEX) + match(all packages)

Prints one JSON line: the seconds spent inside the measured call and what it produced.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from checks.patch_level.advisories import AdvisoryIndex, build_index
from checks.patch_level.packages import Ecosystem, InstalledPackage


def peak_rss_bytes() -> int:
    """This process's own peak RSS (VmHWM).

    Not wait4()'s ru_maxrss: Linux carries the parent's peak over fork and exec into it.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def build(index: Path, sources: Sequence[Path]) -> dict[str, object]:
    started = time.perf_counter()
    stats = build_index(sources, index)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "records": stats.records,
        "rejected": [str(r) for r in stats.rejected[:5]],
        "rejected_count": len(stats.rejected),
        "groups": stats.vulnerability_groups,
        "index_bytes": index.stat().st_size,
    }


def match(index_path: Path, inventory: Path) -> dict[str, object]:
    packages = [
        InstalledPackage(
            Ecosystem(item["ecosystem"]),
            item["name"],
            item["version"],
            "benchmark",
            release=item["release"],
            source_name=item["source_name"],
        )
        for item in json.loads(inventory.read_text())
    ]
    started = time.perf_counter()
    with AdvisoryIndex.open(index_path) as index:
        opened = time.perf_counter()
        result = index.match(packages)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "open_seconds": opened - started,
        "packages": len(packages),
        "matches": len(result.matches),
        "packages_affected": len({m.package for m in result.matches}),
        "notes": len(result.notes),
        "by_severity": dict(
            Counter(m.advisory.severity_label or "unknown" for m in result.matches)
        ),
        "merged_matches": sum(1 for m in result.matches if len(m.advisory.aliases) > 1),
    }


def main(argv: Sequence[str]) -> int:
    mode, index, *rest = argv
    if mode == "build":
        report = build(Path(index), [Path(source) for source in rest])
    elif mode == "match" and len(rest) == 1:
        report = match(Path(index), Path(rest[0]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps({**report, "peak_rss_bytes": peak_rss_bytes()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
