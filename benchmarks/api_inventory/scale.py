"""Benchmark: `apivigil inventory diff OLD NEW` on real-world sizes, Optic side by side.

Three spec pairs, each diffed by the whole `apivigil inventory diff --format json` process
(start-up included) under GNU time, and by Optic (`optic diff --check`) where it finishes:

- multi-file: the layout of tests/support/openapi_specs.py, about 1,600 YAML files per version
  (one per path item and per schema, relative `$ref`s across folders, shared components,
  cycles). The new version inserts a `oneOf` variant in every request body, makes 20
  resources public and removes 5 resources' item operations.
- single-file YAML: run.py's generator at 5,600 operations, a 5 MB YAML document per
  version with every planted change class of run.py;
- single-file JSON: the same two documents as JSON (providers publish both).

Goal: each pair under 5 s and 300 MB for apivigil. Prints the figures; asserts nothing about
speed, but exits 1 when apivigil's answers differ from what was planted.

Run from the project root:  .venv/bin/python benchmarks/api_inventory/scale.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT), str(HERE.parent)]  # run.py, tests/, measure.py

import measure  # noqa: E402
import run  # noqa: E402
from measure import mib  # noqa: E402

from checks.openapi.loading import LoadLimits, load_document  # noqa: E402
from tests.support.openapi_specs import SpecChanges, resource_count, write_multi_file_spec  # noqa: E402

MULTI_FILES = 1_600
PUBLIC_RESOURCES, REMOVED_RESOURCES = 20, 5
SINGLE_OPERATIONS = 5_600


def multi_file_pair(workdir: Path) -> tuple[Path, Path, dict[str, int]]:
    resources = resource_count(MULTI_FILES)
    old = write_multi_file_spec(workdir / "multi-old", resources)
    new = write_multi_file_spec(
        workdir / "multi-new",
        resources,
        changes=SpecChanges(
            insert_variant=True,
            public_resources=PUBLIC_RESOURCES,
            removed_resources=REMOVED_RESOURCES,
        ),
    )
    expected = {
        "INVENTORY-SECURITY-REMOVED": PUBLIC_RESOURCES * 4,
        "INVENTORY-OPERATION-REMOVED": REMOVED_RESOURCES * 2,
        "request variant added": resources,
        "enum value removed": 0,
    }
    return old, new, expected


def apivigil(old: Path, new: Path, workdir: Path, label: str) -> tuple[run.Measurement, Any]:
    command = [
        sys.executable, "-m", "monitor", "inventory", "diff", str(old), str(new),
        "--format", "json", "--fail-on", "never",
    ]  # fmt: skip
    measurement = run.time_command(command, workdir, label, 600.0, {"PYTHONPATH": str(ROOT)})
    if measurement.exit_code != 0:
        raise measure.BenchmarkError(f"apivigil failed:\n{measure.tail(measurement.stderr, 12)}")
    return measurement, json.loads(measurement.stdout.read_text())


def optic(old: Path, new: Path, workdir: Path, label: str, timeout: float) -> run.Measurement:
    command = [
        str(run.OPTIC_BIN), "diff", str(old.relative_to(workdir)), str(new.relative_to(workdir)),
        "--check", "--validation", "loose",
    ]  # fmt: skip
    isolated = os.geteuid() == 0 and shutil.which("unshare")
    return run.time_command(
        ["unshare", "-n", *command] if isolated else command, workdir, label, timeout, run.OPTIC_ENV
    )


def as_json(path: Path) -> Path:
    """The same document as JSON (providers publish both; JSON parses far faster)."""
    target = path.with_suffix(".json")
    target.write_text(json.dumps(load_document(path.read_bytes(), str(path), LoadLimits())))
    return target


def multi_file_counts(report: dict[str, Any]) -> dict[str, int]:
    details = [change["detail"] for change in report["changes"]]
    return {
        "INVENTORY-SECURITY-REMOVED": report["summary"].get("INVENTORY-SECURITY-REMOVED", 0),
        "INVENTORY-OPERATION-REMOVED": report["summary"].get("INVENTORY-OPERATION-REMOVED", 0),
        "request variant added": sum(d.startswith("request variant added") for d in details),
        "enum value removed": sum(d.startswith("enum value removed") for d in details),
    }


def planted_view(report: dict[str, Any]) -> Counter[str]:
    """run.py's keys: breaking changes by sub-kind, the rest by kind and severity."""
    view: Counter[str] = Counter()
    for change in report["changes"]:
        if change["rule_id"] != "INVENTORY-BREAKING-CHANGE":
            view[f"{change['rule_id']}/{change['severity']}"] += 1
        elif change["axis"] == "breaking":
            view[f"{change['rule_id']}/{change['detail'].split(':', 1)[0]}"] += 1
    return view


def size(path: Path) -> tuple[int, int]:
    """(files, bytes) of the spec rooted at `path` (its folder for a multi-file spec)."""
    multi = path.name == "openapi.yaml"
    found = [p for p in path.parent.rglob("*") if p.is_file()] if multi else [path]
    return len(found), sum(p.stat().st_size for p in found)


def describe(measurement: run.Measurement | str) -> str:
    if isinstance(measurement, str):
        return f"not run: {measurement}"
    if measurement.timed_out:
        return f"killed at {measurement.wall_seconds:.0f} s, {mib(measurement.peak_rss_bytes)}"
    verdict = "" if measurement.exit_code in (0, 1) else f" (exit {measurement.exit_code})"
    return (
        f"{measurement.wall_seconds:.2f} s wall, {measurement.cpu_seconds:.2f} s CPU, "
        f"{mib(measurement.peak_rss_bytes)}{verdict}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed to Optic")
    parser.add_argument("--no-optic", action="store_true", help="measure apivigil only")
    parser.add_argument("--keep", type=Path, help="write the specs and outputs here")
    args = parser.parse_args(argv)
    measure.unwind_on_sigterm()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="apivigil-scale-") as tmp:
        workdir = (args.keep or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        peer = "--no-optic" if args.no_optic else (run.install_optic(600.0) or "")
        old, new, expected = multi_file_pair(workdir)
        single_old, single_new, planted = run.generate(workdir, 20240601, SINGLE_OPERATIONS)
        json_old, json_new = (as_json(path) for path in (single_old, single_new))
        pairs = {
            "multi-file": (old, new),
            "single-file YAML": (single_old, single_new),
            "single-file JSON": (json_old, json_new),
        }
        rows = []
        for label, (a, b) in pairs.items():
            files, total = size(a)
            print(f"{label}: {files} file(s), {total / 1e6:.1f} MB per version; apivigil ...")
            slug = label.replace(" ", "-")
            measured, report = apivigil(a, b, workdir, f"apivigil-{slug}")
            if label == "multi-file":
                counts = multi_file_counts(report)
                failures += [
                    f"{label} {key}: planted {value}, reported {counts[key]}"
                    for key, value in expected.items()
                    if counts[key] != value
                ]
            else:
                verified = run.verify({"planted_view": planted_view(report)}, planted)
                failures += [f"{label} {line}" for line in verified]
            peer_result: run.Measurement | str = peer
            if not peer:
                print(f"{label}: optic (up to {args.timeout:g} s) ...", flush=True)
                peer_result = optic(a, b, workdir, f"optic-{slug}", args.timeout)
            rows.append((label, files, total, measured, report, peer_result))
        print()
        print(
            "| pair | size per version | apivigil inventory diff | changes | Optic diff --check |"
        )
        print("|---|---|---|---|---|")
        for label, files, total, measured, report, peer_result in rows:
            print(
                f"| {label} | {files} file(s), {total / 1e6:.1f} MB | {describe(measured)} | "
                f"{len(report['changes'])} in {len(report['groups'])} group(s) | "
                f"{describe(peer_result)} |"
            )
            goal = measured.wall_seconds < 5 and measured.peak_rss_bytes < 300 * 1024 * 1024
            print(f"  goal < 5 s and < 300 MB: {'met' if goal else 'NOT met'}")
        print("  oasdiff: not run, it is on neither PyPI nor npm (a Go binary)")
        load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
        print(f"  load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} CPU(s)")
    for failure in failures:
        print("MISMATCH", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
