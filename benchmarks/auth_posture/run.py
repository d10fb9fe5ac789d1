"""auth_posture benchmark: scan a 300-operation API's secured operations within the request
budget, against Schemathesis' `ignored_auth` check (the closest peer) on the same API.

    .venv/bin/python benchmarks/auth_posture/run.py                  # 300 operations
    .venv/bin/python benchmarks/auth_posture/run.py --operations 900 --no-peer

The API runs in its own process on 127.0.0.1 (stdlib ThreadingHTTPServer): per resource a
secured list GET, a secured item GET (`{id}` with an example) and a secured POST; every
20th list GET is planted open, the rest answer 401 with a challenge unless the bearer token
is valid. Both tools are timed as whole processes; their answers are checked against the
planted operations, and the server counts every request it got by method and by tool. The
benchmark asserts nothing about speed; it prints the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "Bearer bench-token"
PEER = Path("/work/main/.venv-fuzz/bin/st")  # tests/install-fuzz-test-deps.sh makes it
GOAL_SECONDS = 10.0


def spec(resources: int) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": {}}}}}
    for index in range(resources):
        paths[f"/res{index}"] = {"get": {"responses": ok}, "post": {"responses": ok}}
        paths[f"/res{index}/{{id}}"] = {
            "get": {
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                        "example": 1,
                    }
                ],
                "responses": ok,
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Bench", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def planted(resources: int) -> set[str]:
    return {f"GET /res{index}" for index in range(0, resources, 20)}


def serve(port_file: Path, resources: int) -> None:
    document = json.dumps(spec(resources)).encode()
    open_paths = {key.split(" ", 1)[1] for key in planted(resources)}
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            if path == "/__stats":
                self._send(200, json.dumps(counts).encode())
                return
            tool = "apivigil" if self.headers.get("X-Apivigil-Probe") else "other"
            with lock:
                counts[f"{tool} {self.command}"] += 1
            if path == "/openapi.json":
                self._send(200, document)
            elif path in open_paths or self.headers.get("Authorization") == TOKEN:
                self._send(200, b'[{"id": 1, "name": "thing"}]')
            else:
                self._send(401, b'{"error": "invalid_token"}', {"WWW-Authenticate": "Bearer"})

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response_only(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        setattr(Handler, f"do_{method}", Handler._any)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


def stats(url: str) -> Counter[str]:
    import httpx  # noqa: PLC0415

    return Counter(httpx.get(f"{url}/__stats", timeout=10).json())


def run_apivigil(url: str, work: Path, budget: int) -> tuple[float, dict[str, Any]]:
    header = work / "auth-header"
    header.write_text(TOKEN + "\n")
    header.chmod(0o600)
    config = work / "apivigil.yaml"
    target = {
        "name": "bench",
        "url": url,
        "checks": {
            "auth_posture": {
                "spec_path": "/openapi.json",
                "auth_header_file": str(header),
                "max_requests": budget,
                "timeout": "120s",
            }
        },
    }
    config.write_text(json.dumps({"targets": [target]}))  # JSON is YAML
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "monitor", "scan", "-c", str(config), "-f", "json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"apivigil scan failed ({done.returncode}): {done.stderr[-2000:]}")
    (run,) = json.loads(done.stdout)["runs"]
    return elapsed, run


def run_peer(url: str, work: Path) -> tuple[float, set[str]] | None:
    if not PEER.exists():
        print(f"peer: {PEER} missing (tests/install-fuzz-test-deps.sh installs it); skipped")
        return None
    report = work / "st-report.json"
    command = [
        str(PEER),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "ignored_auth",
        "--include-method",
        "GET",
        "--header",
        f"Authorization: {TOKEN}",
        "--max-examples",
        "1",
        "--phases",
        "examples,fuzzing",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    started = time.perf_counter()
    done = subprocess.run(  # in the temporary directory: it writes a .schemathesis cache
        command, capture_output=True, text=True, check=False, timeout=600, cwd=work
    )
    elapsed = time.perf_counter() - started
    found: set[str] = set()
    for line in done.stdout.splitlines():
        stripped = line.strip().lstrip("_").strip()
        if stripped.startswith("GET /res") and "{" not in stripped:
            found.add(stripped.split()[0] + " " + stripped.split()[1])
    if done.returncode not in (0, 1):
        raise SystemExit(f"schemathesis failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=300, help="a multiple of 3")
    parser.add_argument("--budget", type=int, default=500, help="auth_posture max_requests")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    resources = options.operations // 3
    if options.serve is not None:
        serve(options.serve, resources)
        return 0
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        port_file = work / "port"
        operations = str(resources * 3)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port_file), "--operations", operations]
        )
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}"
            return report(url, work, resources, options)
        finally:
            server.terminate()
            server.wait(10)


def report(url: str, work: Path, resources: int, options: argparse.Namespace) -> int:
    expected = planted(resources)
    print(
        f"API: {resources * 3} operations ({resources * 2} secured GETs, {resources} POSTs), "
        f"{len(expected)} planted open; budget {options.budget} requests"
    )
    elapsed, run = run_apivigil(url, work, options.budget)
    sent = stats(url)
    found = {f["subject"] for f in run["findings"] if f["rule_id"] == "AUTH-NOT-ENFORCED"}
    states = {o["labels"]["state"]: int(o["value"]) for o in run["observations"]}
    probes = sum(count for key, count in sent.items() if key.startswith("apivigil "))
    methods = sorted({key.split()[1] for key in sent if key.startswith("apivigil ")})
    print(
        f"apivigil: {elapsed:.2f} s wall for `apivigil scan` (the check itself "
        f"{run['duration_seconds']:.2f} s); {probes} probe requests, methods {methods}; "
        f"states {states}"
    )
    correct = found == expected
    print(f"apivigil: open operations found {len(found)}/{len(expected)}, exact: {correct}")
    within = probes <= options.budget
    print(f"budget held: {within} ({probes} <= {options.budget})")
    goal = "MET" if elapsed < GOAL_SECONDS else "NOT MET"
    print(f"goal (300-operation scan < {GOAL_SECONDS:g} s, whole process): {goal}")
    if not options.no_peer:
        peer = run_peer(url, work)
        if peer is not None:
            peer_elapsed, peer_found = peer
            after = stats(url)
            peer_requests = after["other GET"] - sent["other GET"]
            print(
                f"schemathesis ignored_auth: {peer_elapsed:.2f} s wall, {peer_requests} GETs; "
                f"open operations named {len(peer_found & expected)}/{len(expected)}"
            )
            print(f"ratio (schemathesis / apivigil wall): {peer_elapsed / elapsed:.1f}x")
    return 0 if correct and within and methods == ["GET"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
