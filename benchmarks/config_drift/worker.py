"""One measured apivigil run of the config_drift benchmark, as its own process (run.py).

    worker.py file|directory ORIGINAL MODIFIED MAX_KEYS

Does what the daemon does across two runs of one source: collect ORIGINAL (normalise:
read, parse, flatten, mask secrets) and approve that state as the baseline; collect
MODIFIED (normalise again) and evaluate it against the baseline (diff). The source keeps one
name, so its id is the same although its path changes. Prints one JSON line: each phase's
seconds, the peak RSS (VmHWM) after each phase, and what the run found.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from checks.baseline_diff import is_masked
from checks.config_drift.collect import collect
from checks.config_drift.evaluate import evaluate
from checks.config_drift.facts import DriftRaw
from checks.config_drift.params import ConfigDriftParams, Source
from checks.egress import EgressPolicy
from checks.interface import CheckContext
from monitor.model import Baseline, CheckKind, Target

SOURCE = "bench"
TARGET = Target(name="bench-target")
HASH_KEY = b"apivigil-benchmark-hash-key-0001"  # the daemon keeps one key per installation


def vm_hwm_bytes() -> int:
    """This process's own peak RSS so far (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


class History:
    """The store's part a run reads: a fixed hash key and the approved baseline."""

    def __init__(self, baseline: Baseline | None) -> None:
        self._baseline = baseline

    def approved_baseline(self, check: CheckKind, target: str) -> Baseline | None:
        return self._baseline

    def latest_snapshot(self, check: CheckKind, target: str) -> dict[str, Any] | None:
        return None

    def hash_key(self) -> bytes:
        return HASH_KEY


def params_for(kind: str, path: Path, max_keys: int) -> ConfigDriftParams:
    source = (
        Source(name=SOURCE, file=path) if kind == "file" else Source(name=SOURCE, directory=path)
    )
    return ConfigDriftParams(sources=(source,), max_keys=max_keys)


def observe(params: ConfigDriftParams, baseline: Baseline | None) -> DriftRaw:
    context = CheckContext(
        started_at=datetime.now(UTC),
        deadline=time.monotonic() + 3600,
        egress=EgressPolicy(),
        history=History(baseline),
    )
    raw = collect(TARGET, params, context)
    if raw.failures:
        raise RuntimeError(f"source failed: {raw.failures}")
    if raw.states[0].unreadable:
        raise RuntimeError(f"unreadable parts: {raw.states[0].unreadable[:5]}")
    return raw


def run(kind: str, original: Path, modified: Path, max_keys: int) -> dict[str, Any]:
    hwm_start = vm_hwm_bytes()
    started = time.perf_counter()
    first = observe(params_for(kind, original, max_keys), None)
    first_done = time.perf_counter()
    hwm_first = vm_hwm_bytes()
    baseline = Baseline(
        check=CheckKind.CONFIG_DRIFT,
        target=TARGET.name,
        version=1,
        content={state.source: dict(state.entries) for state in first.states},
        approved_by="benchmark",
        approved_at=datetime.now(UTC),
        reason="benchmark baseline",
    )
    entries_original = len(first.states[0].entries)
    del first
    baseline_done = time.perf_counter()
    params = params_for(kind, modified, max_keys)
    second = observe(params, baseline)
    second_done = time.perf_counter()
    hwm_second = vm_hwm_bytes()
    output = evaluate(second, params, datetime.now(UTC))
    finished = time.perf_counter()
    if output.baseline_update is not None or output.undetermined:
        raise RuntimeError("the run did not judge the source against the baseline")
    subjects = [f.subject.split("|", 1)[1] for f in output.findings]
    files = sorted({re.split(r"[:#]", path, maxsplit=1)[0] for path in subjects})
    return {
        "normalise_original_seconds": first_done - started,
        "normalise_modified_seconds": second_done - baseline_done,
        "diff_seconds": finished - second_done,
        "total_seconds": finished - started,
        "hwm_start_bytes": hwm_start,
        "hwm_after_normalise_bytes": max(hwm_first, hwm_second),
        "entries_original": entries_original,
        "entries_modified": len(second.states[0].entries),
        "secret_entries": sum(1 for value in second.states[0].entries.values() if is_masked(value)),
        "findings": len(output.findings),
        "by_rule": dict(Counter(f.rule_id for f in output.findings)),
        "files": files if kind == "directory" else [],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("file", "directory"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, original, modified, max_keys = argv
    report = run(kind, Path(original), Path(modified), int(max_keys))
    print(json.dumps({**report, "peak_rss_bytes": vm_hwm_bytes()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
