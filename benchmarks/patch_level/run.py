"""Benchmark: apivigil's OSV advisory index (patch_level): build time, match time, memory.

Generates a seeded inventory (PyPI, npm, Debian with source names, Alpine) and OSV advisories
written as an osv.dev-style zip dump, as a directory of JSON files, and (the first 2,500) as a
YAML tree in pypa/advisory-database's layout, then runs, each in its own child process
(worker.py): build_index from the zip, from the directory and from the YAML tree, and
AdvisoryIndex.open + match of the whole inventory. Wall time is spawn to exit; CPU time
comes from wait4()'s rusage of that child; the child reports its own peak RSS (VmHWM) and the
seconds spent inside the measured call.

No peer runs: osv-scanner is not packaged for Debian, PyPI or npm (see README.md).

Run from the project root:  .venv/bin/python benchmarks/patch_level/run.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generate import generate, write_directory, write_yaml_tree, write_zip

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
import measure
from measure import BenchmarkError, mib, tail

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
GOAL_MATCH_SECONDS = 2.0
GOAL_MATCH_RSS = 300 * 2**20
GOAL_YAML_SECONDS = 5.0
GOAL_YAML_RSS = 200 * 2**20


@dataclass(frozen=True, slots=True)
class Measurement:
    wall_seconds: float  # spawn to exit, interpreter start and imports included
    inner_seconds: float  # inside the measured call, as the child reports it
    peak_rss_bytes: int  # the child's VmHWM, which it reports as it exits
    cpu_seconds: float
    report: dict[str, Any]


def run_worker(arguments: Sequence[str], workdir: Path, timeout: float) -> Measurement:
    out_path, err_path = workdir / "worker.out", workdir / "worker.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, str(WORKER), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        code, usage = measure.wait_with_usage(process, timeout)
        wall = time.perf_counter() - started
    if code != 0:
        raise BenchmarkError(f"worker {arguments[0]} exited {code}:\n{tail(err_path)}")
    report = json.loads(out_path.read_text())
    return Measurement(
        wall_seconds=wall,
        inner_seconds=report["seconds"],
        peak_rss_bytes=report["peak_rss_bytes"],
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        report=report,
    )


def verify_build(measurement: Measurement, records: int, label: str) -> None:
    report = measurement.report
    if report["rejected_count"]:
        raise BenchmarkError(f"{label}: {report['rejected_count']} rejected: {report['rejected']}")
    if report["records"] != records:
        raise BenchmarkError(f"{label}: indexed {report['records']} records, wrote {records}")


def summary(
    args: argparse.Namespace,
    sizes: dict[str, int],
    from_zip: Measurement,
    from_directory: Measurement,
    from_yaml: Measurement,
    matches: Sequence[Measurement],
) -> str:
    match = sorted(matches, key=lambda m: m.inner_seconds)[len(matches) // 2]
    report = match.report
    lines = [
        f"patch_level benchmark: {args.packages} packages, {args.advisories} OSV records "
        f"(seed {args.seed}), {os.cpu_count()} CPU(s), match repeated {len(matches)}x"
        + (" (median shown)" if len(matches) > 1 else ""),
        f"  input: zip dump {mib(sizes['zip'])}, directory {mib(sizes['directory'])}, "
        f"YAML tree of {args.yaml_records} records {mib(sizes['yaml'])}; "
        f"index {mib(from_zip.report['index_bytes'])}, "
        f"{from_zip.report['groups']} vulnerability groups",
        f"{'':34}{'inside call':>12}{'wall':>10}{'peak RSS':>12}{'CPU':>10}",
    ]
    for label, m in (
        ("build_index (zip dump)", from_zip),
        ("build_index (directory)", from_directory),
        (f"build_index (YAML tree, {args.yaml_records})", from_yaml),
        ("open + match all packages", match),
    ):
        lines.append(
            f"{label:34}{m.inner_seconds:>10.2f} s{m.wall_seconds:>8.2f} s"
            f"{mib(m.peak_rss_bytes):>12}{m.cpu_seconds:>8.2f} s"
        )
    if len(matches) > 1:
        lines.append(
            "  match runs (inside call): "
            + ", ".join(f"{m.inner_seconds:.3f} s" for m in matches)
            + f"; median {statistics.median(m.inner_seconds for m in matches):.3f} s"
        )
    lines += [
        f"  match: {report['matches']} matches on {report['packages_affected']} of "
        f"{report['packages']} packages, {report['merged_matches']} merged from 3+ ids, "
        f"{report['notes']} notes; by severity {report['by_severity']}",
        f"  open alone: {report['open_seconds'] * 1000:.1f} ms; wall - inside call = interpreter "
        "start, imports and reading the inventory JSON",
        "peer: none (osv-scanner is not packaged for Debian, PyPI or npm here; see README.md): "
        "the numbers are absolute, not relative to a peer",
        f"goal (YAML tree build < {GOAL_YAML_SECONDS:g} s and peak RSS < {mib(GOAL_YAML_RSS)}): "
        + (
            "MET"
            if from_yaml.inner_seconds < GOAL_YAML_SECONDS
            and from_yaml.peak_rss_bytes < GOAL_YAML_RSS
            else "NOT MET"
        ),
        f"goal (open + match < {GOAL_MATCH_SECONDS:g} s and peak RSS < {mib(GOAL_MATCH_RSS)}): "
        + (
            "MET"
            if match.inner_seconds < GOAL_MATCH_SECONDS and match.peak_rss_bytes < GOAL_MATCH_RSS
            else "NOT MET"
        )
        + f" (whole match process: {match.wall_seconds:.2f} s)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=5000, help="installed packages")
    parser.add_argument("--advisories", type=int, default=50_000, help="OSV records")
    parser.add_argument(
        "--yaml-records", type=int, default=2500, help="records also written as a YAML tree"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="generator seed")
    parser.add_argument("--repeat", type=int, default=3, help="match runs; the median is shown")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per step")
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    args = parser.parse_args(argv)
    if min(args.packages, args.advisories, args.repeat, args.yaml_records) < 1:
        parser.error("--packages, --advisories, --yaml-records and --repeat must be at least 1")

    measure.unwind_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="apivigil-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with measure.reporting_failures("interrupted; the child process was stopped"):
            print("generating ...", flush=True)
            started = time.perf_counter()
            dataset = generate(args.packages, args.advisories, args.seed)
            inventory = workdir / "inventory.json"
            inventory.write_text(json.dumps(dataset.inventory))
            dump, directory = workdir / "all.zip", workdir / "osv"
            write_zip(dataset.records, dump)
            write_directory(dataset.records, directory)
            yaml_records = dataset.records[: args.yaml_records]
            yaml_tree = workdir / "advisory-database"
            write_yaml_tree(yaml_records, yaml_tree)
            sizes = {
                "zip": measure.tree_bytes(dump),
                "directory": measure.tree_bytes(directory),
                "yaml": measure.tree_bytes(yaml_tree),
            }
            print(f"  {time.perf_counter() - started:.1f} s", flush=True)
            print("build_index from the zip dump ...", flush=True)
            index = workdir / "index.sqlite"
            from_zip = run_worker(["build", str(index), str(dump)], workdir, args.timeout)
            verify_build(from_zip, len(dataset.records), "zip")
            print("build_index from the directory ...", flush=True)
            other = workdir / "index-from-directory.sqlite"
            from_dir = run_worker(["build", str(other), str(directory)], workdir, args.timeout)
            verify_build(from_dir, len(dataset.records), "directory")
            print("build_index from the YAML tree (pypa/advisory-database layout) ...", flush=True)
            in_yaml = workdir / "index-from-yaml.sqlite"
            from_yaml = run_worker(["build", str(in_yaml), str(yaml_tree)], workdir, args.timeout)
            verify_build(from_yaml, len(yaml_records), "YAML tree")
            matches = []
            for round_number in range(args.repeat):
                print(f"match {round_number + 1}/{args.repeat} ...", flush=True)
                matches.append(
                    run_worker(["match", str(index), str(inventory)], workdir, args.timeout)
                )
            if not matches[0].report["matches"]:
                raise BenchmarkError("no package matched: the generated data is wrong")
    print()
    print(summary(args, sizes, from_zip, from_dir, from_yaml, matches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
