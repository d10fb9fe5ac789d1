"""Benchmark: apivigil's access-log reading, route matching and traffic tally, streamed.

Generates (seeded) a spec of 2,000 operations (built as `Operation`s directly; templates with
1-3 parameters, some literal siblings such as `/users/me`, 2 % deprecated) plus 20 operations
of a "previous document" that the current one removed, and a combined-format access log of
1,000,000 lines: ~94.5 % to current operations (ids as numbers, UUIDs or hex; base path `/v1`
on 90 %; query strings, trailing slashes and HEAD on some), ~0.5 % to removed operations,
~5 % to undocumented paths (answered 200 or 403: shadow endpoints; or 404: noise) and, mid-log,
a scanner's burst of 20,000 distinct 404 paths with two served endpoints requested once each
inside it. Then measures, each round in its own child process (`logs.py worker ...`, under
GNU time): `RouteMatcher` over the 2,000 operations, then `read_stream(log, aggregator.add)`:
read, parse, match and tally every line without holding the requests.

The worker's figures must equal what the generator wrote: per documented operation, per shadow
endpoint template (every one found, the two requested once included), refused requests in
total, per zombie operation. Wall and CPU: spawn to exit, CPU from wait4()'s rusage. Peak RSS:
the worker runs under `/usr/bin/time -f %M`; its growth is VmHWM at the end minus VmHWM after
imports.

Run from the project root:  .venv/bin/python benchmarks/api_inventory/logs.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from checks.api_inventory.access_log import DEFAULT_MAX_BYTES, read_stream
from checks.api_inventory.routes import RouteMatcher
from checks.api_inventory.traffic import TrafficAggregator, ZombieReason
from checks.openapi.inventory import Operation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
import measure
from measure import BenchmarkError, mib, tail

HERE = Path(__file__).resolve()
BASE_PATH = "/v1"
RESOURCES = (
    "users",
    "orders",
    "items",
    "invoices",
    "payments",
    "accounts",
    "projects",
    "teams",
    "members",
    "tokens",
    "keys",
    "sessions",
    "devices",
    "files",
    "folders",
    "reports",
    "alerts",
    "rules",
    "policies",
    "groups",
    "roles",
    "permissions",
    "events",
    "webhooks",
    "subscriptions",
    "plans",
    "products",
    "prices",
    "carts",
    "shipments",
    "returns",
    "reviews",
    "comments",
    "tags",
    "labels",
    "notes",
    "tasks",
    "jobs",
    "builds",
    "releases",
    "deployments",
)
ACTIONS = ("export", "status", "history", "summary", "archive", "restore", "preview")
METHODS = ("get", "get", "get", "post", "put", "patch", "delete")
# undocumented shapes and how the server answers them: 200 (a shadow endpoint), 403 (a route
# behind authentication: a low one) or 404 (noise, aggregated)
UNDOCUMENTED = (
    ("/admin/users/{n}", 200),
    ("/internal/metrics", 403),
    ("/internal/jobs/{uuid}/retry", 200),
    ("/debug/pprof/heap", 200),
    ("/svc{s}/unknown-things/{n}", 404),
    ("/svc{s}/users/{n}/legacy-export", 200),
    ("/files/{hex}/raw", 200),
    ("/.env", 404),
    ("/wp-login.php", 404),
)
SCAN_PATHS = 20_000  # one scanner's burst of distinct 404 paths, mid-log
ONCE = (("GET", "/v1/internal/flags"), ("DELETE", "/v1/cache/42"))  # served, requested once
ONCE_TEMPLATES = (("GET", "/internal/flags"), ("DELETE", "/cache/{param}"))
AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Spec:
    current: tuple[Operation, ...]
    removed: tuple[Operation, ...]

    def zombies(self) -> dict[str, Operation]:
        deprecated = {op.key: op for op in self.current if op.deprecated}
        return deprecated | {op.key: op for op in self.removed}


@dataclass(frozen=True, slots=True)
class Expected:
    lines: int
    documented: dict[str, int]
    shadow: dict[str, int]  # "METHOD template" -> requests answered 2xx or 401/403
    refused: int  # requests to undocumented paths answered 404
    zombie: dict[str, int]


def operations(rng: random.Random, count: int, service_prefix: str) -> list[Operation]:
    result: dict[str, Operation] = {}
    while len(result) < count:
        segments = [f"{service_prefix}{rng.randrange(50)}"]
        for _ in range(rng.randint(1, 3)):
            resource = rng.choice(RESOURCES)
            segments += [resource, "{" + resource[:-1] + "Id}"]
        if rng.random() < 0.3:
            segments.append(rng.choice(ACTIONS))
        path = "/" + "/".join(segments)
        template = "/" + "/".join("{}" if s.startswith("{") else s for s in segments)
        method = rng.choice(METHODS)
        operation = Operation(
            method=method, path=path, template=template, deprecated=rng.random() < 0.02
        )
        result.setdefault(operation.key, operation)
        # a literal sibling of the last parameter (`/users/me` next to `/users/{userId}`)
        if rng.random() < 0.05 and len(result) < count:
            literal = template.rsplit("/", 1)[0] + "/me"
            sibling = Operation(method=method, path=literal, template=literal)
            result.setdefault(sibling.key, sibling)
    return list(result.values())


def make_spec(seed: int, count: int) -> Spec:
    rng = random.Random(seed)
    current = operations(rng, count, "svc")
    removed = [
        Operation(method=op.method, path=op.path, template=op.template)
        for op in operations(rng, 20, "old")
    ]
    return Spec(tuple(current), tuple(removed))


def identifier(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.6:
        return str(rng.randrange(1, 10**7))
    if kind < 0.8:
        return uuid(rng)
    return f"{rng.getrandbits(96):024x}"


def request_path(rng: random.Random, template: str) -> str:
    path = "/".join(identifier(rng) if s == "{}" else s for s in template.split("/"))
    if rng.random() < 0.9:
        path = BASE_PATH + path
    if rng.random() < 0.01:
        path += "/"
    if rng.random() < 0.2:
        path += f"?page={rng.randrange(1, 50)}&limit=50"
    return path


def undocumented_path(rng: random.Random) -> tuple[str, str, int]:
    """(path, expected template, status)."""
    shape, status = rng.choice(UNDOCUMENTED)
    service = str(rng.randrange(50))
    path = (
        shape.replace("{n}", str(rng.randrange(1, 10**6)))
        .replace("{s}", service)
        .replace("{uuid}", uuid(rng))
        .replace("{hex}", f"{rng.getrandbits(64):016x}")
    )
    template = re.sub(r"\{(n|uuid|hex)\}", "{param}", shape.replace("{s}", service))
    return (BASE_PATH + path if rng.random() < 0.5 else path), template, status


def uuid(rng: random.Random) -> str:
    value = f"{rng.getrandbits(128):032x}"
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def generate(path: Path, spec: Spec, seed: int, lines: int) -> Expected:
    """Writes the log; returns what a correct summary must count."""
    rng = random.Random(seed + 1)
    documented: Counter[str] = Counter()
    zombie: Counter[str] = Counter()
    deprecated = {op.key for op in spec.current if op.deprecated}
    shadow: Counter[str] = Counter()
    refused = 0
    start = datetime(2024, 6, 1, tzinfo=UTC)
    step = 86_400 / lines
    scan_from = lines // 2
    with path.open("w", encoding="utf-8") as log:
        batch = []
        for number in range(lines):
            draw = rng.random()
            scanned = number - scan_from
            if 0 <= scanned < SCAN_PATHS:
                method, target, status = "GET", f"/scan{scanned}/probe.php", 404
                refused += 1
            elif 0 <= scanned - SCAN_PATHS // 2 < len(ONCE):  # inside the scan
                method, target = ONCE[scanned - SCAN_PATHS // 2]
                status = 200
                shadow[" ".join(ONCE_TEMPLATES[scanned - SCAN_PATHS // 2])] += 1
            elif draw < 0.05:
                method = rng.choice(("GET", "GET", "POST"))
                target, template, status = undocumented_path(rng)
                if status == 404:
                    refused += 1
                else:
                    shadow[f"{method} {template}"] += 1
            else:
                operation = rng.choice(spec.removed if draw < 0.055 else spec.current)
                method = operation.method.upper()
                if method == "GET" and rng.random() < 0.01:
                    method = "HEAD"
                target = request_path(rng, operation.template)
                status = rng.choice((200, 200, 200, 201, 204, 400, 401, 404, 500))
                if draw >= 0.055:
                    documented[operation.key] += 1
                if draw < 0.055 or operation.key in deprecated:
                    zombie[operation.key] += 1
            stamp = (start + timedelta(seconds=int(number * step))).strftime(
                "%d/%b/%Y:%H:%M:%S +0000"
            )
            batch.append(
                f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)} - - "
                f'[{stamp}] "{method} {target} HTTP/1.1" {status} {rng.randrange(20, 9000)} '
                f'"-" "{AGENT}"\n'
            )
            if len(batch) >= 10_000:
                log.writelines(batch)
                batch.clear()
        log.writelines(batch)
    return Expected(lines, dict(documented), dict(shadow), refused, dict(zombie))


# ---------------------------------------------------------------------------- the worker


def worker(log: Path, seed: int, count: int, max_bytes: int) -> dict[str, Any]:
    spec = make_spec(seed, count)
    zombies = spec.zombies()
    hwm_start = measure.vm_hwm_bytes()
    started = time.perf_counter()
    matcher = RouteMatcher(spec.current, [BASE_PATH])
    matcher_done = time.perf_counter()
    aggregator = TrafficAggregator(matcher, zombies)
    cursor, reads, lines, requests, malformed, more = None, 0, 0, 0, 0, True
    while more:  # one read unless --max-bytes is below the log's size
        cursor, stats = read_stream(log, aggregator.add, cursor, max_bytes)
        reads, lines, requests, malformed, more = (
            reads + 1,
            lines + stats.lines,
            requests + stats.requests,
            malformed + stats.malformed,
            stats.more,
        )
    summary = aggregator.summary()
    finished = time.perf_counter()
    return {
        "read_seconds": finished - matcher_done,
        "matcher_seconds": matcher_done - started,
        "total_seconds": finished - started,
        "hwm_start_bytes": hwm_start,
        "hwm_end_bytes": measure.vm_hwm_bytes(),
        "reads": reads,
        "max_bytes": max_bytes,
        "lines": lines,
        "requests": requests,
        "malformed": malformed,
        "cursor_offset": cursor.offset if cursor else 0,
        "documented": dict(summary.documented),
        "shadow": {f"{s.method} {s.path}": s.served_count + s.auth_count for s in summary.shadow},
        "refused": sum(summary.unmatched.values()),
        "evicted": summary.evicted,
        "evicted_served": summary.evicted_served,
        "shadow_top": [[s.method, s.path, s.count, s.served_count] for s in summary.shadow[:3]],
        "unmatched_top": [[u.method, u.path, u.count] for u in summary.unmatched_top[:3]],
        "zombie": {z.key: z.count for z in summary.zombie},
        "zombie_removed": sum(1 for z in summary.zombie if z.reason is ZombieReason.REMOVED),
    }


# ---------------------------------------------------------------------------- measuring


@dataclass(frozen=True, slots=True)
class Measurement:
    wall_seconds: float  # spawn to exit (interpreter start and imports included)
    cpu_seconds: float  # user + system, from wait4()
    peak_rss_bytes: int  # the worker's own ru_maxrss, from GNU time
    report: dict[str, Any]


def time_command(command: Sequence[str], workdir: Path, label: str, timeout: float) -> Measurement:
    """Runs `command` under GNU time in its own session; it must print one JSON object."""
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    rss_path = workdir / f"{label}.maxrss"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        code, wall, usage = measure.run_in_session(
            measure.gnu_time(rss_path, command), stdout=out, stderr=err, timeout=timeout
        )
    if code != 0:
        raise BenchmarkError(f"{label} exited {code} (timeout {timeout:g}s):\n{tail(err_path)}")
    try:
        peak_bytes = measure.gnu_time_peak_bytes(rss_path)
        report = json.loads(out_path.read_text())
    except (OSError, ValueError, IndexError) as error:
        raise BenchmarkError(f"{label}: no %M or no JSON ({error}):\n{tail(err_path)}") from None
    return Measurement(wall, usage.ru_utime + usage.ru_stime, peak_bytes, report)


def verify(report: dict[str, Any], expected: Expected) -> None:
    if report["lines"] != expected.lines or report["requests"] != expected.lines:
        raise BenchmarkError(
            f"read {report['lines']:,} lines / {report['requests']:,} requests, "
            f"wrote {expected.lines:,} ({report['malformed']} malformed)"
        )
    if report["documented"] != expected.documented:
        wrong = sorted(
            key
            for key in expected.documented.keys() | report["documented"].keys()
            if expected.documented.get(key) != report["documented"].get(key)
        )
        raise BenchmarkError(f"documented counts differ for {len(wrong)} operations: {wrong[:5]}")
    if report["shadow"] != expected.shadow:
        missing = sorted(expected.shadow.keys() - report["shadow"].keys())
        extra = sorted(report["shadow"].keys() - expected.shadow.keys())
        raise BenchmarkError(f"shadow endpoints differ: missing {missing[:5]}, extra {extra[:5]}")
    if report["refused"] != expected.refused:
        raise BenchmarkError(f"{report['refused']:,} refused requests, wrote {expected.refused:,}")
    if report["zombie"] != expected.zombie:
        raise BenchmarkError(f"zombie counts {report['zombie']} != {expected.zombie}")


# ---------------------------------------------------------------------------- report


def summary(
    measurements: Sequence[Measurement], spec: Spec, expected: Expected, log: Path, seed: int
) -> str:
    def med(key: str) -> float:
        return float(statistics.median(m.report[key] for m in measurements))

    by_total = sorted(measurements, key=lambda m: m.report["total_seconds"])
    report = by_total[(len(by_total) - 1) // 2].report
    total = med("total_seconds")
    wall = statistics.median(m.wall_seconds for m in measurements)
    cpu = statistics.median(m.cpu_seconds for m in measurements)
    peak = statistics.median(m.peak_rss_bytes for m in measurements)
    parameters = Counter(op.template.count("{}") for op in spec.current)
    lines = [
        f"api_inventory logs benchmark: seed {seed}, {os.cpu_count()} CPU(s), "
        f"{len(measurements)} round(s)" + (" (medians)" if len(measurements) > 1 else ""),
        f"  spec: {len(spec.current):,} operations ("
        + ", ".join(f"{n} with {k} parameter(s)" for k, n in sorted(parameters.items()))
        + f"; {sum(op.deprecated for op in spec.current)} deprecated) + "
        f"{len(spec.removed)} removed",
        f"  log: {expected.lines:,} combined lines, {mib(log.stat().st_size)}; "
        f"{sum(expected.documented.values()):,} documented, "
        f"{sum(expected.shadow.values()):,} to {len(expected.shadow)} shadow endpoints, "
        f"{expected.refused:,} refused (incl. a {SCAN_PATHS:,}-path 404 scan), "
        f"{sum(expected.zombie.values()):,} to zombie operations",
        *(
            f"  round {i}: total {m.report['total_seconds']:.2f} s, process {m.wall_seconds:.2f} s"
            f", peak RSS {mib(m.peak_rss_bytes)}"
            for i, m in enumerate(measurements, 1)
        ),
        "",
        f"  build matcher  {med('matcher_seconds'):7.3f} s",
        f"  read + parse + match + tally (streamed) {med('read_seconds'):.3f} s   "
        f"({report['reads']} read_stream call(s), max_bytes {report['max_bytes']:,})",
        f"  total (in-call){total:7.3f} s   {expected.lines / total:,.0f} lines/s",
        f"  process        {wall:7.3f} s   CPU {cpu:.3f} s   peak RSS {mib(peak)}",
        f"  VmHWM: {mib(med('hwm_start_bytes'))} after imports, "
        f"{mib(med('hwm_end_bytes'))} at the end: growth "
        f"{mib(med('hwm_end_bytes') - med('hwm_start_bytes'))}",
        f"  shadow endpoints: {len(report['shadow'])} found of {len(expected.shadow)} served or "
        f"401/403 (both requested-once ones included); evicted templates {report['evicted']:,} "
        f"(answered ones among them: {report['evicted_served']})",
        "  top shadow: "
        + "; ".join(f"{m} {p} {n:,} ({ok:,} 2xx)" for m, p, n, ok in report["shadow_top"]),
        "  top refused: " + "; ".join(f"{m} {p} {n:,}" for m, p, n in report["unmatched_top"]),
        f"  zombie endpoints: {len(report['zombie'])} "
        f"({report['zombie_removed']} removed, the rest deprecated)",
        "  all counts equal the generator's",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["worker"]:
        log_name, seed, count, max_bytes = arguments[1:]
        report = worker(Path(log_name), int(seed), int(count), int(max_bytes))
        print(json.dumps({**report, "peak_rss_bytes": measure.vm_hwm_bytes()}))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="access-log lines")
    parser.add_argument("--operations", type=int, default=2_000, help="operations in the spec")
    parser.add_argument("--seed", type=int, default=20240601, help="generator seed")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="read bound")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per round")
    parser.add_argument("--keep", type=Path, help="write the data here and keep it")
    args = parser.parse_args(arguments)
    if args.lines < 1000 or args.operations < 100 or args.repeat < 1:
        parser.error("--lines at least 1000, --operations at least 100, --repeat at least 1")

    measure.unwind_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="apivigil-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        log = workdir / "access.log"
        with measure.reporting_failures():
            measure.ensure_gnu_time()
            measure.precompile()  # for the worker, this script run again
            print("generating ...", flush=True)
            started = time.perf_counter()
            spec = make_spec(args.seed, args.operations)
            expected = generate(log, spec, args.seed, args.lines)
            print(f"  {time.perf_counter() - started:.1f} s", flush=True)
            measurements = []
            for number in range(1, args.repeat + 1):
                print(f"round {number}/{args.repeat} ...", flush=True)
                command = [
                    sys.executable,
                    str(HERE),
                    "worker",
                    str(log),
                    str(args.seed),
                    str(args.operations),
                    str(args.max_bytes),
                ]
                measurement = time_command(command, workdir, f"round-{number}", args.timeout)
                verify(measurement.report, expected)
                measurements.append(measurement)
        print()
        print(summary(measurements, spec, expected, log, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
