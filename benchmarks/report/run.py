"""Benchmark: `apivigil report` over D days of history for N targets, in every format.

The history (history.py) is written in a child process first, so this process stays small:
on Linux a child's ru_maxrss starts at its parent's peak. Then each format's whole
`apivigil report` process (imports, config, queries, rendering, writing the file) is timed
from spawn to exit; peak RSS comes from wait4()'s rusage of that child. The goal is under
30 s per format for 500 targets x 90 days. Benchmarks report numbers; they assert nothing.

Run from the project root:  .venv/bin/python benchmarks/report/run.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMATS = ("json", "md", "html", "sarif", "oscal")
GOAL_SECONDS = 30.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--dir", type=Path, help="keep the store and reports here")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="apivigil-report-bench-") as scratch:
        directory = options.dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        store = directory / "history.db"
        store.unlink(missing_ok=True)
        print(f"writing {options.targets} targets x {options.days} days of history ...")
        made = subprocess.run(
            [
                sys.executable,
                str(HERE / "history.py"),
                str(store),
                str(options.targets),
                str(options.days),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        counts = json.loads(made.stdout)
        print(
            f"  {counts['runs']:,} runs, {counts['samples']:,} samples, "
            f"{counts['findings']:,} findings, {counts['finding_events']:,} finding events; "
            f"{counts['bytes'] / 2**20:,.0f} MiB in {counts['seconds']} s"
        )
        print(
            f"\n{'format':8} {'seconds':>8} {'peak RSS':>12} {'output':>12}  "
            f"goal < {GOAL_SECONDS:.0f} s"
        )
        for name in options.formats:
            output = directory / f"report.{name}"
            seconds, peak = timed_report(store.with_suffix(".yaml"), options.days, name, output)
            verdict = "met" if seconds < GOAL_SECONDS else "NOT met"
            print(
                f"{name:8} {seconds:8.1f} {peak / 2**20:8.0f} MiB "
                f"{output.stat().st_size / 2**20:8.1f} MiB  {verdict}"
            )


def timed_report(config: Path, days: int, name: str, output: Path) -> tuple[float, int]:
    """Wall-clock seconds and peak RSS (bytes) of one `apivigil report` process."""
    command = [
        sys.executable,
        "-m",
        "monitor",
        "report",
        "-c",
        str(config),
        "--since",
        f"{days}d",
        "-f",
        name,
        "-o",
        str(output),
    ]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        assert process.stderr is not None
        raise SystemExit(f"{name}: exit {process.returncode}: {process.stderr.read().decode()}")
    return seconds, usage.ru_maxrss * 1024


if __name__ == "__main__":
    main()
