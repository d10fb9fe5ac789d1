"""Benchmark: apivigil's API inventory diff vs Optic (`optic diff --check`), same spec pair.

Generates (seeded) two versions of an OpenAPI 3.0 YAML document with `--operations`
operations sharing large nested component schemas, with every change class planted a known
number of times, then measures, each in its own child process:

- apivigil (this file with --worker): `read_inventory_file` on both files, then
  `diff_inventories` and `group_changes`; the worker times each phase and counts changes.
  The counts must equal what was planted.
- the peer: Optic, installed with npm under .peer/, running
  `optic diff before.yaml after.yaml --check --validation loose` with telemetry and update
  checks off, in a network namespace of its own (`unshare -n`, when allowed) so it cannot
  reach any other host.

Wall and CPU time: spawn to exit, CPU from wait4()'s rusage. Peak RSS: each tool runs under
GNU time (`/usr/bin/time -f %M`): the tool's own ru_maxrss, the largest of its processes.

Run from the project root:  .venv/bin/python benchmarks/api_inventory/run.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The code of the checkout this file is in (not of whichever one the venv installed), and
# benchmarks/measure.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import measure
from measure import BenchmarkError, mib, tail

from checks.api_inventory.diff import Axis, ChangeKind, diff_inventories, group_changes
from checks.api_inventory.reading import read_inventory_file
from checks.openapi.loading import LoadLimits

HERE = Path(__file__).resolve().parent
PEER_DIR = HERE / ".peer"
OPTIC_BIN = PEER_DIR / "node_modules" / ".bin" / "optic"
# ajv >= 8.18 miscompiles ajv-errors' code, so spectral (inside Optic) dies at start-up with
# "SyntaxError: Unexpected token ':'" (stoplightio/spectral#2946); 8.17.1 works.
OPTIC_PACKAGE = {
    "private": True,
    "dependencies": {"@useoptic/optic": "1.0.9"},
    "overrides": {
        "@stoplight/spectral-core": {"ajv": "8.17.1"},
        "@stoplight/spectral-functions": {"ajv": "8.17.1"},
        "@stoplight/spectral-rulesets": {"ajv": "8.17.1"},
    },
}
OPTIC_ENV = {"OPTIC_TELEMETRY_LEVEL": "off", "NO_UPDATE_NOTIFIER": "1", "CI": "true"}


class Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # plain YAML: no &anchors for objects used twice


SUNSET = "2027-06-30"


@dataclass(frozen=True, slots=True)
class Measurement:
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    exit_code: int
    timed_out: bool
    stdout: Path
    stderr: Path


# ---------------------------------------------------------------------------- generate

# Templates as YAML flow text: short, and what the generated documents look like.
PROPERTIES = yaml.safe_load("""
- {type: string, maxLength: 200, description: a text field}
- {type: integer, format: int64, minimum: 0}
- {type: number}
- {type: boolean}
- {type: string, format: date-time}
- {type: string, enum: [draft, active, archived, gone]}
- {type: array, items: {type: string}}
- {type: object, properties: {a: {type: string}, b: {type: integer}}}
""")
PARAMETERS = yaml.safe_load("""
- {name: X-Request-Id, in: header, required: false, schema: {type: string}}
- {name: limit, in: query, schema: {type: integer}}
- {name: cursor, in: query, schema: {type: string}}
- {name: sort, in: query, schema: {type: string, enum: [asc, desc, relevance]}}
""")
ERROR = {"$ref": "#/components/responses/Error"}
COMPONENTS = yaml.safe_load("""
schemas:
  Error: {type: object, required: [code],
          properties: {code: {type: integer}, message: {type: string}}}
responses:
  Error: {description: error,
          content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
securitySchemes:
  oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: 'https://id.example.test/token',
                                                    scopes: {read: read, write: write}}}}
  apiKey: {type: apiKey, in: header, name: X-Api-Key}
  partner: {type: oauth2, flows: {clientCredentials: {tokenUrl: 'https://id.example.test/partner',
                                                      scopes: {}}}}
""")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def schemas(rng: random.Random) -> dict[str, Any]:
    """Three tiers (20 resources, 16 parts, 12 leaves) of 20-50 properties; each resource
    and part refers to two schemas of the tier below, so nesting is three deep."""
    tiers = [
        [f"{kind}{i:02d}" for i in range(n)]
        for kind, n in (("Resource", 20), ("Part", 16), ("Leaf", 12))
    ]
    result = deepcopy(COMPONENTS["schemas"])
    for tier, names in enumerate(tiers):
        for name in names:
            count = rng.randint(20, 50)
            properties = {f"field{i:02d}": deepcopy(rng.choice(PROPERTIES)) for i in range(count)}
            if tier < 2:
                child, children = rng.sample(tiers[tier + 1], 2)
                properties["child"] = ref(child)
                properties["children"] = {"type": "array", "items": ref(children)}
            result[name] = {"type": "object", "required": ["field00"], "properties": properties}
    return result


def resource_operations(area: int, number: int, model: str) -> dict[str, Any]:
    """Two path items, five operations: list and create; read, replace and delete."""
    base, item = f"/area{area:02d}/res{number:04d}", f"res{number}Id"

    def operation(verb: str, status: str, body: bool = False, listing: bool = False) -> Any:
        content = {"type": "array", "items": ref(model)} if listing else ref(model)
        result: dict[str, Any] = {
            "operationId": f"{verb}Res{number:04d}",
            "tags": [f"area{area:02d}"],
            "parameters": deepcopy(PARAMETERS if listing else PARAMETERS[:1]),
            "responses": {
                status: {"description": "ok", "content": {"application/json": {"schema": content}}},
                "400": deepcopy(ERROR),
                "default": deepcopy(ERROR),
            },
        }
        if body:
            mode = {"type": "string", "enum": ["fast", "safe", "audit"]}
            schema = {"type": "object", "properties": {"data": ref(model), "mode": mode}}
            media = {"schema": schema}
            content = {"application/json": media, "application/xml": deepcopy(media)}
            result["requestBody"] = {"required": False, "content": content}
        return result

    path_parameter = {"name": item, "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        base: {
            "get": operation("list", "200", listing=True),
            "post": operation("create", "201", body=True),
        },
        f"{base}/{{{item}}}": {
            "parameters": [path_parameter],
            "get": operation("read", "200"),
            "put": operation("replace", "200", body=True),
            "delete": operation("delete", "204"),
        },
    }


def document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Benchmark shop", "version": "1.0.0"},
        "servers": [{"url": "https://api.example.test/v1"}],
        "security": [{"oauth": ["read"]}],
        "paths": paths,
        "components": {**deepcopy(COMPONENTS), "schemas": schemas},
    }


# What is planted, k times each; the expected (kind, sub-kind) counts of apivigil's report.
PLANTED = {
    "removed-undeprecated": ("INVENTORY-OPERATION-REMOVED", "high"),
    "removed-deprecated": ("INVENTORY-OPERATION-REMOVED", "medium"),
    "deprecated": ("INVENTORY-OPERATION-DEPRECATED", "low"),
    "required-parameter": ("INVENTORY-BREAKING-CHANGE", "required parameter added"),
    "parameter-removed": ("INVENTORY-BREAKING-CHANGE", "parameter removed"),
    "type-changed": ("INVENTORY-BREAKING-CHANGE", "parameter type changed"),
    "became-required": ("INVENTORY-BREAKING-CHANGE", "parameter became required"),
    "parameter-enum": ("INVENTORY-BREAKING-CHANGE", "enum value removed"),
    "body-enum": ("INVENTORY-BREAKING-CHANGE", "enum value removed"),
    "status-removed": ("INVENTORY-BREAKING-CHANGE", "response status removed"),
    "body-required": ("INVENTORY-BREAKING-CHANGE", "request body became required"),
    "media-type": ("INVENTORY-BREAKING-CHANGE", "request media type removed"),
    "security-empty": ("INVENTORY-SECURITY-REMOVED", "critical"),
    "scheme-removed": ("INVENTORY-SECURITY-WEAKENED", "high"),
    "scopes-reduced": ("INVENTORY-SECURITY-WEAKENED", "high"),
    "or-alternative": ("INVENTORY-SECURITY-WEAKENED", "high"),
    "scheme-type": ("INVENTORY-SECURITY-WEAKENED", "high"),
}


def generate(workdir: Path, seed: int, operations: int) -> tuple[Path, Path, Counter[str]]:
    """Writes before.yaml and after.yaml; returns them and the expected change counts."""
    rng = random.Random(seed)
    resources = max(operations // 5, 4)
    paths: dict[str, Any] = {}
    for number in range(resources):
        paths |= resource_operations(number % 25, number, f"Resource{rng.randrange(20):02d}")
    components = schemas(rng)
    before, after = document(paths, components), document(deepcopy(paths), deepcopy(components))
    # oauth2 -> apiKey: weakens every operation that relies on `partner`
    after["components"]["securitySchemes"]["partner"] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-Partner",
    }
    listing = [(p, "get") for p in paths if "{" not in p]
    bodies = [(p, m) for p, item in paths.items() for m in ("post", "put") if m in item]
    every = [(p, m) for p, item in paths.items() for m in item if m != "parameters"]
    for pool in (listing, bodies, every):
        rng.shuffle(pool)
    used: set[tuple[str, str]] = set()
    k = max(operations // 80, 1)

    def pick(pool: list[tuple[str, str]]) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        chosen = [key for key in pool if key not in used][:k]
        used.update(chosen)
        return [(p, m, before["paths"][p][m], after["paths"][p][m]) for p, m in chosen]

    expected: Counter[str] = Counter()
    removed: list[tuple[str, str]] = []
    for name, (kind, sub) in PLANTED.items():
        pool = listing if name in {"type-changed", "parameter-enum"} else every
        pool = bodies if name in {"body-enum", "body-required", "media-type"} else pool
        for path, method, old, new in pick(pool):
            expected[f"{kind}/{sub}"] += 1
            plant(name, old, new)
            if name.startswith("removed"):
                removed.append((path, method))
    for path, method in removed:
        del after["paths"][path][method]
    # Renamed path parameters (`{res7Id}` -> `{id}`) must be no change at all.
    for path in [p for p in paths if "{" in p][: 3 * k : 3]:
        renamed = after["paths"].pop(path)
        renamed["parameters"][0]["name"] = "id"
        after["paths"][re.sub(r"\{[^}]*\}", "{id}", path)] = renamed
    # A property added to a shared leaf schema: a digest-only change wherever it is used.
    after["components"]["schemas"]["Leaf03"]["properties"]["addedField"] = {"type": "string"}
    for index in range(2 * max(k // 5, 1)):
        unauthenticated = index % 2 == 1
        new_paths = resource_operations(index % 25, resources + index, "Resource00")
        for path, item in new_paths.items():
            for method, operation in item.items():
                if method == "parameters":
                    continue
                expected["INVENTORY-OPERATION-ADDED/low"] += 1
                if unauthenticated:
                    operation["security"] = []
                    expected["INVENTORY-UNAUTHENTICATED-OPERATION/high"] += 1
            after["paths"][path] = item
    files = workdir / "before.yaml", workdir / "after.yaml"
    for file, content in zip(files, (before, after), strict=True):
        with file.open("w") as out:
            yaml.dump(content, out, Dumper=Dumper, sort_keys=False, width=120)
    return files[0], files[1], expected


def plant(name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Makes one operation carry change `name` from `old` (before) to `new` (after)."""
    body = new.get("requestBody", {})
    match name:
        case "removed-deprecated":
            old |= {"deprecated": True, "x-sunset": SUNSET}
        case "deprecated":
            new |= {"deprecated": True, "x-sunset": SUNSET}
        case "required-parameter":
            new["parameters"].append(
                {**deepcopy(PARAMETERS[2]), "name": "tenant", "required": True}
            )
        case "parameter-removed":
            new["parameters"] = new["parameters"][1:]
        case "type-changed":
            new["parameters"][2]["schema"]["type"] = "integer"
        case "became-required":
            new["parameters"][0]["required"] = True
        case "parameter-enum":
            new["parameters"][3]["schema"]["enum"].remove("relevance")
        case "body-enum":
            for media in body["content"].values():
                media["schema"]["properties"]["mode"]["enum"].remove("audit")
        case "status-removed":
            del new["responses"]["400"]
        case "body-required":
            body["required"] = True
        case "media-type":
            del body["content"]["application/xml"]
        case "security-empty":
            new["security"] = []
        case "scheme-removed":
            old["security"] = [{"oauth": ["read"], "apiKey": []}]
            new["security"] = [{"oauth": ["read"]}]
        case "scopes-reduced":
            old["security"] = [{"oauth": ["read", "write"]}]
            new["security"] = [{"oauth": ["read"]}]
        case "or-alternative":
            old["security"] = [{"oauth": ["read"], "apiKey": []}]
            new["security"] = [{"oauth": ["read"], "apiKey": []}, {"apiKey": []}]
        case "scheme-type":
            old["security"] = new["security"] = [{"partner": []}]


# ---------------------------------------------------------------------------- apivigil


def worker(before_path: Path, after_path: Path) -> dict[str, Any]:
    """The measured apivigil run, in its own process: load both, diff, group."""
    hwm_start = measure.vm_hwm_bytes()
    started = time.perf_counter()
    before = read_inventory_file(before_path, LoadLimits())
    loaded_before = time.perf_counter()
    after = read_inventory_file(after_path, LoadLimits())
    loaded = time.perf_counter()
    hwm_loaded = measure.vm_hwm_bytes()
    changes = diff_inventories(before, after)
    diffed = time.perf_counter()
    groups = group_changes(changes)
    finished = time.perf_counter()
    # Keys as in PLANTED: breaking changes by sub-kind, the rest by severity.
    planted_view: Counter[str] = Counter()
    for change in changes:
        if change.kind is not ChangeKind.BREAKING_CHANGE:
            planted_view[f"{change.kind}/{change.severity}"] += 1
        elif change.axis is Axis.BREAKING:
            planted_view[f"{change.kind}/{change.detail.split(':', 1)[0]}"] += 1
    return {
        "load_before_seconds": loaded_before - started,
        "load_after_seconds": loaded - loaded_before,
        "diff_seconds": diffed - loaded,
        "group_seconds": finished - diffed,
        "total_seconds": finished - started,
        "operations": [len(before.operations), len(after.operations)],
        "problems": [len(before.problems), len(after.problems)],
        "changes": len(changes),
        "by_kind": dict(Counter(change.kind.value for change in changes)),
        "digest_only": sum(
            c.kind is ChangeKind.BREAKING_CHANGE and c.axis is Axis.INFO for c in changes
        ),
        "planted_view": dict(planted_view),
        "groups": len(groups),
        "hwm_start_bytes": hwm_start,
        "hwm_after_load_bytes": hwm_loaded,
        "peak_rss_bytes": measure.vm_hwm_bytes(),
    }


# ---------------------------------------------------------------------------- measuring


def kill_tool(group: int) -> None:
    """SIGKILL every process of the group but its leader, GNU time, which then still writes
    the killed tool's peak RSS."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            process_group = int(stat.read_text().rsplit(")", 1)[1].split()[2])
            if process_group == group and int(stat.parent.name) != group:
                os.kill(int(stat.parent.name), signal.SIGKILL)


def time_command(
    command: Sequence[str], workdir: Path, label: str, timeout: float, env: dict[str, str]
) -> Measurement:
    """Runs `command` under GNU time in its own session; the tool is killed after `timeout`
    seconds."""
    out_path, err_path, rss_path = (workdir / f"{label}.{ext}" for ext in ("out", "err", "rss"))
    timer_fired = threading.Event()

    def expire(pid: int) -> None:
        timer_fired.set()
        kill_tool(pid)

    with out_path.open("wb") as out, err_path.open("wb") as err:
        code, wall, usage = measure.run_in_session(
            measure.gnu_time(rss_path, command),
            stdout=out,
            stderr=err,
            timeout=timeout,
            env={**os.environ, **env},
            cwd=workdir,
            on_timeout=expire,
        )
    try:
        peak_bytes = measure.gnu_time_peak_bytes(rss_path)
    except (OSError, ValueError, IndexError):
        peak_bytes = 0  # GNU time itself was killed: no figure
    return Measurement(
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=peak_bytes,
        exit_code=code,
        timed_out=timer_fired.is_set(),
        stdout=out_path,
        stderr=err_path,
    )


def run_apivigil(
    before: Path, after: Path, workdir: Path, timeout: float
) -> tuple[Measurement, dict[str, Any]]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(before), str(after)]
    measurement = time_command(command, workdir, "apivigil", timeout, {})
    if measurement.timed_out or measurement.exit_code != 0:
        raise BenchmarkError(
            f"apivigil {'timed out' if measurement.timed_out else 'failed'} "
            f"(exit {measurement.exit_code}):\n{tail(measurement.stderr, 12)}"
        )
    try:
        return measurement, json.loads(measurement.stdout.read_text())
    except ValueError as error:
        raise BenchmarkError(f"apivigil printed no JSON ({error})") from None


def install_optic(timeout: float) -> str | None:
    """Installs the pinned Optic under .peer/ unless it is there; returns why it cannot run."""
    package = PEER_DIR / "package.json"
    wanted = json.dumps(OPTIC_PACKAGE, indent=2) + "\n"
    if OPTIC_BIN.exists() and package.exists() and package.read_text() == wanted:
        return None
    if shutil.which("npm") is None:
        return "npm is not on PATH"
    PEER_DIR.mkdir(exist_ok=True)
    package.write_text(wanted)
    print("installing Optic with npm into .peer/ ...", flush=True)
    try:
        result = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PEER_DIR, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"npm install took more than {timeout:g} s"
    if result.returncode != 0 or not OPTIC_BIN.exists():
        return f"npm install failed (exit {result.returncode}): {result.stderr.strip()[-600:]}"
    return None


def run_optic(before: Path, after: Path, workdir: Path, timeout: float) -> Measurement:
    command = [str(OPTIC_BIN), "diff", before.name, after.name, "--check", "--validation", "loose"]
    # Its own network namespace (root only): Optic cannot reach anything but itself.
    isolated = os.geteuid() == 0 and shutil.which("unshare")
    return time_command(
        ["unshare", "-n", *command] if isolated else command, workdir, "optic", timeout, OPTIC_ENV
    )


def optic_counts(output: str) -> dict[str, int]:
    """Its summary lines: `Operations: 10 operations added, 16 changed, 2 removed` and
    `Checks: 2300/2935 passed`."""
    counts: dict[str, int] = {}
    summary = re.search(r"^Operations: (.*)$", output, re.MULTILINE)
    for number, word in re.findall(r"(\d+)(?: operations?)? (\w+)", summary[1] if summary else ""):
        counts[f"operations {word}"] = int(number)
    checks = re.search(r"Checks: (\d+)/(\d+) passed", output)
    if checks:
        counts["checks failed"] = int(checks[2]) - int(checks[1])
        counts["checks run"] = int(checks[2])
    return counts


# ---------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> str:
    if a <= 0 or b <= 0:
        return "n/a"
    return f"1/{b / a:.0f}" if b > a else f"{a / b:.1f}"


def verify(report: dict[str, Any], expected: Counter[str]) -> list[str]:
    """The planted changes apivigil did not report as planted, one line each."""
    found = report["planted_view"]
    return [
        f"{key}: planted {expected.get(key, 0)}, reported {found.get(key, 0)}"
        for key in sorted(set(found) | set(expected))
        if found.get(key, 0) != expected.get(key, 0)
    ]


def summary(
    args: argparse.Namespace,
    files: tuple[Path, Path],
    apivigil: tuple[Measurement, dict[str, Any]],
    optic: Measurement | str,
    mismatches: list[str],
) -> str:
    measured, report = apivigil
    load = report["load_before_seconds"] + report["load_after_seconds"]
    lines = [
        f"api_inventory benchmark: seed {args.seed}, {os.cpu_count()} CPU(s), "
        f"Optic timeout {args.timeout:g} s",
        "  "
        + ", ".join(f"{f.name} {mib(f.stat().st_size)}" for f in files)
        + f"; operations {report['operations'][0]:,} -> {report['operations'][1]:,}",
        f"  planted: {max(args.operations // 80, 1)} of each of {len(PLANTED)} change classes, "
        "new operations (half without security), renamed path parameters (no change), "
        "one property added to a shared leaf schema",
        "",
        f"  {'':22}{'load x2':>10}{'diff':>9}{'in-call':>10}{'process':>10}{'peak RSS':>12}"
        f"{'CPU':>9}",
        f"  {'apivigil':22}{load:>8.3f} s{report['diff_seconds']:>7.3f} s"
        f"{report['total_seconds']:>8.3f} s{measured.wall_seconds:>8.3f} s"
        f"{mib(measured.peak_rss_bytes):>12}{measured.cpu_seconds:>7.2f} s",
    ]
    if isinstance(optic, str):
        lines.append(f"  {'optic':22}not run: {optic}")
    elif optic.timed_out:
        lines.append(
            f"  {'optic':22}TIMED OUT: killed after {optic.wall_seconds:.1f} s, "
            f"{mib(optic.peak_rss_bytes)} peak RSS and {optic.cpu_seconds:.1f} s CPU by then, "
            "no output"
        )
    elif optic.exit_code not in (0, 1):
        lines.append(f"  {'optic':22}failed (exit {optic.exit_code}): {tail(optic.stderr, 3)}")
    else:
        lines += [
            f"  {'optic':22}{'':37}{optic.wall_seconds:>8.3f} s{mib(optic.peak_rss_bytes):>12}"
            f"{optic.cpu_seconds:>7.2f} s",
            f"  {'ratio apivigil/optic':22}{'':37}"
            f"{ratio(measured.wall_seconds, optic.wall_seconds):>10}"
            f"{ratio(measured.peak_rss_bytes, optic.peak_rss_bytes):>12}"
            f"{ratio(measured.cpu_seconds, optic.cpu_seconds):>9}",
        ]
    kinds = sorted(report["by_kind"].items())
    lines += [
        "",
        f"  apivigil: {report['changes']:,} changes in {report['groups']} groups ("
        + ", ".join(f"{kind.removeprefix('INVENTORY-').lower()} {n}" for kind, n in kinds)
        + f"); {report['digest_only']} of the breaking-change ones are schema digest changes "
        f"only (info/low); {report['problems'][0] + report['problems'][1]} load problems",
        "  apivigil vs planted: "
        + ("every planted change found, nothing else" if not mismatches else "MISMATCH"),
        *(f"    {line}" for line in mismatches),
        f"  apivigil peak RSS (VmHWM): {mib(report['hwm_start_bytes'])} after imports, "
        f"{mib(report['hwm_after_load_bytes'])} after loading both",
    ]
    if isinstance(optic, Measurement) and not optic.timed_out and optic.exit_code in (0, 1):
        counts = optic_counts(optic.stdout.read_text(errors="replace"))
        lines.append(
            "  optic: "
            + ", ".join(f"{name} {n:,}" for name, n in counts.items())
            + f"; {len(optic.stdout.read_text(errors='replace').splitlines()):,} output lines"
        )
    goal = measured.wall_seconds < 10 and measured.peak_rss_bytes < 500 * 10**6
    lines += [
        f"  goal (apivigil under 10 s and 500 MB for the pair): {'met' if goal else 'MISSED'}",
        "  load x2: read_inventory_file on both files; in-call: load + diff + group, as the "
        "worker measures it; process: spawn to exit",
        "  peak RSS: the tool's own ru_maxrss (GNU time); CPU: user + system (wait4)",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"] and len(argv) == 3:
        print(json.dumps(worker(Path(argv[1]), Path(argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=2_000, help="operations per spec")
    parser.add_argument("--seed", type=int, default=20240601, help="generator seed")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds allowed to Optic")
    parser.add_argument("--no-optic", action="store_true", help="measure apivigil only")
    parser.add_argument("--keep", type=Path, help="write the specs and outputs here, keep them")
    args = parser.parse_args(argv)
    if args.operations < 20:
        parser.error("--operations must be at least 20")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep} must be empty or absent")
    if subprocess.run([measure.GNU_TIME, "--version"], capture_output=True, check=False).returncode:
        print(f"{measure.GNU_TIME} is not GNU time (Debian package `time`)", file=sys.stderr)
        return 1

    measure.unwind_on_sigterm()
    measure.precompile()  # for the worker, this script run again
    with tempfile.TemporaryDirectory(prefix="apivigil-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        with measure.reporting_failures():
            started = time.perf_counter()
            before, after, expected = generate(workdir, args.seed, args.operations)
            print(f"generated in {time.perf_counter() - started:.1f} s; apivigil ...", flush=True)
            apivigil = run_apivigil(before, after, workdir, 600.0)
            mismatches = verify(apivigil[1], expected)
            optic: Measurement | str = "--no-optic" if args.no_optic else ""
            optic = optic or install_optic(600.0) or ""
            if not optic:
                print(f"optic (up to {args.timeout:g} s) ...", flush=True)
                optic = run_optic(before, after, workdir, args.timeout)
        print()
        print(summary(args, (before, after), apivigil, optic, mismatches))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
