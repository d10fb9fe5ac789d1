"""Benchmark: apivigil's config_drift (normalise + diff) vs `diff` / `diff -r`.

Generates (seeded) a configuration file with 10,000 keys and a directory of 2,000 files,
each with a modified copy, then measures, each in its own child process and repeated:

- apivigil (worker.py): collect the original (normalise: read, parse, flatten, mask secrets
  with HMAC), approve it as the baseline, collect the modified copy and evaluate it against
  the baseline (diff). The worker times each phase; the findings must match the edits made.
- the peer: `diff ORIGINAL MODIFIED` on the two files and `diff -r` on the two directories;
  its output (to a file) must list exactly the edited, added and removed files.

Wall and CPU time: spawn to exit, CPU from wait4()'s rusage. Peak RSS: each tool runs under
GNU time (`/usr/bin/time -f %M`), whose wait4() reports the tool's own ru_maxrss; this
script's own wait4() cannot, because Linux carries the parent's peak RSS over fork and exec.

Run from the project root:  .venv/bin/python benchmarks/config_drift/run.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generate import Dataset, generate

from checks.config_drift.params import ConfigDriftParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
import measure
from measure import BenchmarkError, mib, tail

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"


@dataclass(frozen=True, slots=True)
class Measurement:
    wall_seconds: float  # spawn to exit (interpreter start and imports included)
    cpu_seconds: float  # user + system, from wait4()
    peak_rss_bytes: int  # the tool's own ru_maxrss, from GNU time
    report: dict[str, Any]  # apivigil: the worker's JSON; diff: counts of its output lines


@dataclass(frozen=True, slots=True)
class Round:
    config_apivigil: Measurement
    config_diff: Measurement
    tree_apivigil: Measurement
    tree_diff: Measurement


# ---------------------------------------------------------------------------- helpers


def time_command(
    command: Sequence[str], workdir: Path, label: str, timeout: float
) -> tuple[int, Measurement, Path]:
    """Run `command` under GNU time in its own session; returns (exit code, numbers, stdout)."""
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    rss_path = workdir / f"{label}.maxrss"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        code, wall, usage = measure.run_in_session(
            measure.gnu_time(rss_path, command), stdout=out, stderr=err, timeout=timeout
        )
    if code < 0:
        raise BenchmarkError(f"{label} was killed (signal {-code}; timeout {timeout:g}s)")
    try:
        peak_bytes = measure.gnu_time_peak_bytes(rss_path)
    except (OSError, ValueError, IndexError):
        raise BenchmarkError(f"{label}: GNU time wrote no %M:\n{tail(err_path)}") from None
    measurement = Measurement(
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=peak_bytes,
        report={},
    )
    return code, measurement, out_path


# ---------------------------------------------------------------------------- the tools


def run_apivigil(
    kind: str, original: Path, modified: Path, max_keys: int, workdir: Path, timeout: float
) -> Measurement:
    label = f"apivigil-{kind}"
    command = [sys.executable, str(WORKER), kind, str(original), str(modified), str(max_keys)]
    code, measurement, out_path = time_command(command, workdir, label, timeout)
    if code != 0:
        raise BenchmarkError(f"{label} exited {code}:\n{tail(workdir / f'{label}.err')}")
    try:
        report = json.loads(out_path.read_text())
    except ValueError as error:
        raise BenchmarkError(f"{label} printed no JSON ({error})") from None
    return Measurement(
        measurement.wall_seconds, measurement.cpu_seconds, measurement.peak_rss_bytes, report
    )


def run_diff(
    original: Path, modified: Path, recursive: bool, workdir: Path, timeout: float
) -> Measurement:
    label = "diff-r" if recursive else "diff"
    command = ["diff", *(["-r"] if recursive else []), str(original), str(modified)]
    code, measurement, out_path = time_command(command, workdir, label, timeout)
    if code != 1:  # 0: no difference, 2: trouble
        raise BenchmarkError(
            f"{label} exited {code}, expected 1:\n{tail(workdir / f'{label}.err')}"
        )
    counts: Counter[str] = Counter()
    with out_path.open("rb") as output:
        for line in output:
            counts["lines"] += 1
            for prefix, key in ((b"diff -r ", "edited"), (b"Binary files ", "edited")):
                if line.startswith(prefix):
                    counts[key] += 1
            if line.startswith(b"Only in "):
                counts["only_in"] += 1
    return Measurement(
        measurement.wall_seconds, measurement.cpu_seconds, measurement.peak_rss_bytes, counts
    )


def verify_config(apivigil: Measurement, diff: Measurement, data: Dataset) -> None:
    report, edits = apivigil.report, data.config_edits
    if report["entries_original"] != data.config_keys:
        raise BenchmarkError(
            f"apivigil flattened the config to {report['entries_original']} keys, "
            f"not {data.config_keys}"
        )
    expected = {
        "DRIFT-CHANGED": edits.changed,
        "DRIFT-ADDED": edits.added,
        "DRIFT-REMOVED": edits.removed,
    }
    if report["by_rule"] != {rule: n for rule, n in expected.items() if n}:
        raise BenchmarkError(f"apivigil found {report['by_rule']} in the config, made {expected}")
    if not diff.report["lines"]:
        raise BenchmarkError("diff printed nothing for the config")


def verify_tree(apivigil: Measurement, diff: Measurement, data: Dataset) -> None:
    report, edits = apivigil.report, data.tree_edits
    if "DRIFT-SOURCE-UNAVAILABLE" in report["by_rule"]:
        raise BenchmarkError(f"apivigil could not read part of the directory: {report['by_rule']}")
    if set(report["files"]) != edits.files:
        missing = sorted(edits.files - set(report["files"]))[:5]
        extra = sorted(set(report["files"]) - edits.files)[:5]
        raise BenchmarkError(f"apivigil's drifted files differ: missing {missing}, extra {extra}")
    if report["findings"] < len(edits.files):
        raise BenchmarkError("apivigil reported fewer findings than files changed")
    counts = diff.report
    if counts["edited"] != len(edits.edited) or counts["only_in"] != len(edits.added) + len(
        edits.removed
    ):
        raise BenchmarkError(
            f"diff -r reported {counts['edited']} differing and {counts['only_in']} lone files; "
            f"made {len(edits.edited)} edits, {len(edits.added)} additions, "
            f"{len(edits.removed)} removals"
        )


# ---------------------------------------------------------------------------- report


def median(rounds: Sequence[Round], pick: Callable[[Round], Measurement]) -> Measurement:
    """Per-number medians; the report is the median-total run's."""
    measurements = [pick(r) for r in rounds]
    by_total = sorted(measurements, key=lambda m: m.report.get("total_seconds", m.wall_seconds))
    return Measurement(
        wall_seconds=statistics.median(m.wall_seconds for m in measurements),
        cpu_seconds=statistics.median(m.cpu_seconds for m in measurements),
        peak_rss_bytes=int(statistics.median(m.peak_rss_bytes for m in measurements)),
        report=by_total[(len(by_total) - 1) // 2].report,
    )


def phase_median(rounds: Sequence[Round], pick: Callable[[Round], Measurement], key: str) -> float:
    return statistics.median(pick(r).report[key] for r in rounds)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.0f}x" if b > 0 else "inf"


def block(
    title: str,
    rounds: Sequence[Round],
    pick_apivigil: Callable[[Round], Measurement],
    pick_diff: Callable[[Round], Measurement],
    peer: str,
) -> list[str]:
    a, d = median(rounds, pick_apivigil), median(rounds, pick_diff)
    first = phase_median(rounds, pick_apivigil, "normalise_original_seconds")
    second = phase_median(rounds, pick_apivigil, "normalise_modified_seconds")
    diff_phase = phase_median(rounds, pick_apivigil, "diff_seconds")
    total = phase_median(rounds, pick_apivigil, "total_seconds")
    hwm_start = int(phase_median(rounds, pick_apivigil, "hwm_start_bytes"))
    hwm_normalised = int(phase_median(rounds, pick_apivigil, "hwm_after_normalise_bytes"))
    report = a.report
    return [
        title,
        f"  {'':22}{'normalise':>11}{'diff':>9}{'in-call':>10}{'process':>10}"
        f"{'peak RSS':>12}{'CPU':>9}",
        f"  {'apivigil':22}{first + second:>9.3f} s{diff_phase:>7.3f} s{total:>8.3f} s"
        f"{a.wall_seconds:>8.3f} s{mib(a.peak_rss_bytes):>12}{a.cpu_seconds:>7.3f} s",
        f"  {peer:22}{'':11}{'':9}{'':10}{d.wall_seconds:>8.3f} s"
        f"{mib(d.peak_rss_bytes):>12}{d.cpu_seconds:>7.3f} s",
        f"  {'ratio apivigil/' + peer.split(maxsplit=1)[0]:22}{'':11}{'':9}"
        f"{ratio(total, d.wall_seconds):>10}{ratio(a.wall_seconds, d.wall_seconds):>10}"
        f"{ratio(a.peak_rss_bytes, d.peak_rss_bytes):>12}"
        f"{ratio(a.cpu_seconds, d.cpu_seconds):>9}",
        f"  apivigil normalise: original {first:.3f} s + modified {second:.3f} s; "
        f"{report['entries_original']:,} -> {report['entries_modified']:,} entries "
        f"({report['secret_entries']:,} masked)",
        f"  apivigil peak RSS (VmHWM): {mib(hwm_start)} after imports, {mib(hwm_normalised)} "
        f"after both normalise phases, {mib(report['peak_rss_bytes'])} at exit",
        f"  apivigil found {report['findings']:,} drift items ("
        + ", ".join(
            f"{rule.split('-')[1].lower()} {n:,}" for rule, n in sorted(report["by_rule"].items())
        )
        + f"); {peer.split(maxsplit=1)[0]} printed {d.report['lines']:,} lines",
    ]


def summary(rounds: Sequence[Round], data: Dataset, args: argparse.Namespace) -> str:
    kinds = Counter(p.suffix.lstrip(".") for p in data.tree_original.rglob("*") if p.is_file())
    tree = data.tree_edits
    config = data.config_edits
    default_max = ConfigDriftParams.model_fields["max_keys"].default
    entries = rounds[0].tree_apivigil.report["entries_original"]
    lines = [
        f"config_drift benchmark: seed {args.seed}, {os.cpu_count()} CPU(s), "
        f"{len(rounds)} repeat(s)" + (" (medians)" if len(rounds) > 1 else ""),
        f"  config: {data.config_original.name} {data.config_original.stat().st_size / 1024:.0f}"
        f" KiB, {data.config_keys:,} keys; modified: {config.changed} changed, "
        f"{config.added} added, {config.removed} removed",
        f"  directory: {data.tree_files:,} files, {mib(measure.tree_bytes(data.tree_original))} ("
        + ", ".join(f"{n} .{kind}" for kind, n in sorted(kinds.items()))
        + f"); modified: {len(tree.edited)} edited, {len(tree.added)} added, "
        f"{len(tree.removed)} removed",
        f"  max_keys {args.max_keys:,} (default {default_max:,}"
        + (f", which this {entries:,}-entry directory exceeds)" if entries > default_max else ")"),
    ]
    if len(rounds) > 1:
        lines += [
            f"  round {i}: config {r.config_apivigil.wall_seconds:.2f} s vs "
            f"{r.config_diff.wall_seconds:.3f} s; directory {r.tree_apivigil.wall_seconds:.2f} s "
            f"vs {r.tree_diff.wall_seconds:.3f} s"
            for i, r in enumerate(rounds, 1)
        ]
    lines += [
        "",
        *block(
            f"config file ({data.config_keys:,} keys)",
            rounds,
            lambda r: r.config_apivigil,
            lambda r: r.config_diff,
            "diff",
        ),
        "",
        *block(
            f"directory ({data.tree_files:,} files)",
            rounds,
            lambda r: r.tree_apivigil,
            lambda r: r.tree_diff,
            "diff -r",
        ),
        "",
        "  normalise: both trees; in-call: normalise + baseline + diff inside the worker; "
        "process: spawn to exit",
        "  peak RSS: the tool's own ru_maxrss (GNU time); CPU: user + system (wait4)",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000, help="leaf keys in the config")
    parser.add_argument("--files", type=int, default=2_000, help="files in the directory")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml", help="config format")
    parser.add_argument("--seed", type=int, default=20240601, help="generator seed")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument(
        "--max-keys", type=int, default=1_000_000, help="config_drift max_keys per source"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per step")
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    args = parser.parse_args(argv)
    if args.keys < 100 or args.files < 100 or args.repeat < 1:
        parser.error("--keys and --files must be at least 100, --repeat at least 1")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep} must be empty or absent")

    measure.unwind_on_sigterm()
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="apivigil-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        logs = workdir / "logs"
        logs.mkdir()
        with measure.reporting_failures():
            measure.ensure_gnu_time()
            if shutil.which("diff") is None:
                raise BenchmarkError("diff is not on PATH (Debian package diffutils)")
            print("generating ...", flush=True)
            started = time.perf_counter()
            data = generate(workdir, args.seed, args.keys, args.files, args.format)
            print(f"  {time.perf_counter() - started:.1f} s", flush=True)
            for number in range(1, args.repeat + 1):
                print(f"round {number}/{args.repeat}: config ...", flush=True)
                config_apivigil = run_apivigil(
                    "file",
                    data.config_original,
                    data.config_modified,
                    args.max_keys,
                    logs,
                    args.timeout,
                )
                config_diff = run_diff(
                    data.config_original, data.config_modified, False, logs, args.timeout
                )
                verify_config(config_apivigil, config_diff, data)
                print(f"round {number}/{args.repeat}: directory ...", flush=True)
                tree_apivigil = run_apivigil(
                    "directory",
                    data.tree_original,
                    data.tree_modified,
                    args.max_keys,
                    logs,
                    args.timeout,
                )
                tree_diff = run_diff(
                    data.tree_original, data.tree_modified, True, logs, args.timeout
                )
                verify_tree(tree_apivigil, tree_diff, data)
                rounds.append(Round(config_apivigil, config_diff, tree_apivigil, tree_diff))
        print()
        print(summary(rounds, data, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
