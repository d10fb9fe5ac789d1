"""Benchmark: `apivigil scan --check cert_expiry` vs prometheus-blackbox-exporter.

Both tools read the certificate expiry of the same N TLS endpoints on 127.0.0.1 (one
asyncio server process, tls_server.py, listening on N ports) with the same concurrency.

- apivigil: the whole `apivigil scan --format json` process (startup, config, checks,
  JSON), timed from spawn to exit; peak RSS from wait4()'s rusage of that child.
- blackbox: the exporter is started and healthy first; then N `GET /probe` requests from
  C threads with keep-alive connections are timed; peak RSS is the exporter's VmHWM.

Run from the project root:  .venv/bin/python benchmarks/cert_expiry/run.py
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import yaml

from monitor.certmaker import issue, write_server_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
import measure
from measure import BenchmarkError, mib, tail

HERE = Path(__file__).resolve().parent
SERVER_SCRIPT = HERE / "tls_server.py"
SERVER_NAME = "bench.apivigil.test"
BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_MODULE = "tls_connect"
GOAL_RATIO = 1.0
GOAL_SECONDS = 10.0
EXPIRY_TOLERANCE_SECONDS = 1.0
PROBE_HTTP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Measurement:
    seconds: float
    peak_rss_bytes: int
    cpu_seconds: float  # user + system time of the tool's process


@dataclass(frozen=True, slots=True)
class ApivigilMeasurement(Measurement):
    checks_seconds: float  # first run's start to last run's end, from the JSON


@dataclass(frozen=True, slots=True)
class Round:
    apivigil: ApivigilMeasurement
    blackbox: Measurement
    # the TLS server's CPU while each tool ran: one asyncio process, so at most one core
    server_cpu_apivigil: float
    server_cpu_blackbox: float


# ---------------------------------------------------------------------------- helpers


def read_line(stream: IO[bytes], timeout: float) -> bytes:
    """One line from `stream`, or BenchmarkError after `timeout` seconds."""
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise BenchmarkError(f"no line within {timeout:g}s")
    return lines[0]


# ---------------------------------------------------------------------------- setup


def ensure_blackbox() -> str:
    """The exporter's path; installs the Debian package when it is missing (needs root)."""
    return measure.ensure_debian_command(BLACKBOX, BLACKBOX, update_first=True)


def compile_bytecode() -> None:
    """Write the project's .pyc files, as `pip install` does for an installed package: an
    editable checkout under PYTHONDONTWRITEBYTECODE would otherwise compile every module
    from source on every start, a cost no installed apivigil pays."""
    root = HERE.parent.parent
    packages = [str(root / name) for name in ("monitor", "checks", "alerts", "dashboards")]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *packages],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )


def make_certificates(directory: Path) -> tuple[Path, Path, float]:
    """A CA and a leaf for SERVER_NAME (EC P-256, 90 days); returns chain, key, earliest expiry."""
    ca = issue("apivigil bench CA", ca=True)
    leaf = issue(SERVER_NAME, ca, hosts=(SERVER_NAME, "127.0.0.1"))
    cert_path, key_path = write_server_files(directory, "bench", leaf, ca)
    earliest = min(
        ca.certificate.not_valid_after_utc, leaf.certificate.not_valid_after_utc
    ).timestamp()
    return cert_path, key_path, earliest


@contextlib.contextmanager
def tls_endpoints(
    cert: Path, key: Path, count: int, workdir: Path
) -> Iterator[tuple[list[int], int]]:
    """Start tls_server.py on `count` free ports; yields the ports and the server's pid;
    stops it afterwards."""
    log_path = workdir / "tls_server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER_SCRIPT),
                "--cert",
                str(cert),
                "--key",
                str(key),
                "--count",
                str(count),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    try:
        assert process.stdout is not None
        try:
            line = read_line(process.stdout, timeout=60)
            ports: list[int] = json.loads(line)["ports"]
        except (BenchmarkError, ValueError, KeyError) as error:
            raise BenchmarkError(
                f"the TLS server did not start ({error}):\n{tail(log_path)}"
            ) from None
        if len(ports) != count:
            raise BenchmarkError(f"the TLS server listens on {len(ports)} ports, not {count}")
        yield ports, process.pid
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the server exits on EOF
        measure.stop_process(process)
        if process.stdout is not None:
            process.stdout.close()


# ---------------------------------------------------------------------------- apivigil


def target_name(index: int) -> str:
    return f"ep{index:04d}"


def write_apivigil_config(path: Path, ports: Sequence[int], store: Path) -> None:
    config = {
        "store": f"sqlite:///{store}",
        "targets": [
            {
                "name": target_name(i),
                "url": f"https://127.0.0.1:{port}",
                "checks": {"cert_expiry": {"server_name": SERVER_NAME}},
            }
            for i, port in enumerate(ports)
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def run_apivigil(
    config: Path,
    concurrency: int,
    count: int,
    earliest_expiry: float,
    workdir: Path,
    timeout: float,
) -> ApivigilMeasurement:
    out_path, err_path = workdir / "apivigil.json", workdir / "apivigil.stderr"
    command = [
        str(measure.apivigil_command()),
        "scan",
        "--config",
        str(config),
        "--check",
        "cert_expiry",
        "--format",
        "json",
        "--concurrency",
        str(concurrency),
    ]
    # APIVIGIL_* variables override the config file: keep the run reproducible.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIVIGIL_")}
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=workdir
        )
        code, usage = measure.wait_with_usage(process, timeout)
        seconds = time.perf_counter() - started
    if code < 0:
        raise BenchmarkError(f"apivigil scan was killed (signal {-code}; timeout {timeout:g}s)")
    exited = f"apivigil scan exited {code}"
    try:
        document = json.loads(out_path.read_bytes())
    except ValueError as error:
        raise BenchmarkError(f"{exited} without valid JSON ({error}):\n{tail(err_path)}") from None
    try:
        checks_seconds = verify_scan(document, count, earliest_expiry)  # explains most failures
    except (KeyError, TypeError, ValueError) as error:
        raise BenchmarkError(f"{exited}; its JSON has an unexpected shape: {error!r}") from None
    except BenchmarkError as error:
        raise BenchmarkError(f"{exited}; {error}") from None
    if code != 0:  # 1: findings at or above high, unexpected for 90-day certificates
        raise BenchmarkError(f"{exited}, expected 0:\n{tail(err_path)}")
    return ApivigilMeasurement(
        seconds=seconds,
        peak_rss_bytes=usage.ru_maxrss * 1024,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        checks_seconds=checks_seconds,
    )


def verify_scan(document: dict[str, Any], count: int, earliest_expiry: float) -> float:
    """Check every run; return the span from the first run's start to the last run's end."""
    runs = document.get("runs", [])
    if len(runs) != count:
        raise BenchmarkError(f"apivigil returned {len(runs)} runs, expected {count}")
    names = {run["target"] for run in runs}
    if names != {target_name(i) for i in range(count)}:
        raise BenchmarkError("apivigil's runs do not cover exactly the configured targets")
    bad = [run for run in runs if run["status"] != "ok"]
    if bad:
        first = bad[0]
        raise BenchmarkError(
            f"{len(bad)} apivigil run(s) not ok, e.g. {first['target']}: "
            f"{first['status']} {first['error']}"
        )
    starts, ends = [], []
    for run in runs:
        not_after = [
            o["value"]
            for o in run["observations"]
            if o["name"] == "cert_not_after_timestamp_seconds"
        ]
        if not not_after:
            raise BenchmarkError(f"{run['target']}: no cert_not_after_timestamp_seconds")
        if abs(min(not_after) - earliest_expiry) > EXPIRY_TOLERANCE_SECONDS:
            raise BenchmarkError(
                f"{run['target']}: earliest not-after {min(not_after)}, expected {earliest_expiry}"
            )
        start = datetime.fromisoformat(run["started_at"])
        starts.append(start)
        ends.append(start + timedelta(seconds=run["duration_seconds"]))
    return (max(ends) - min(starts)).total_seconds()


# ---------------------------------------------------------------------------- blackbox


def write_blackbox_config(path: Path) -> None:
    config = {
        "modules": {
            BLACKBOX_MODULE: {
                "prober": "tcp",
                "timeout": "10s",
                "tcp": {
                    "tls": True,
                    "tls_config": {"insecure_skip_verify": True, "server_name": SERVER_NAME},
                },
            }
        }
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def blackbox_exporter(binary: str, workdir: Path) -> Iterator[tuple[int, int]]:
    """Start the exporter on a free loopback port; yields (port, pid) once it is healthy."""
    config_path, log_path = workdir / "blackbox.yml", workdir / "blackbox.log"
    write_blackbox_config(config_path)
    port = measure.free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=error",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        wait_healthy(port, process, log_path, timeout=20)
        yield port, process.pid
    finally:
        measure.stop_process(process)


def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"{BLACKBOX} exited {process.returncode}:\n{tail(log)}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            connection.request("GET", "/-/healthy")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        time.sleep(0.05)
    raise BenchmarkError(f"{BLACKBOX} was not healthy within {timeout:g}s:\n{tail(log)}")


class KeepAliveClient:
    """One persistent HTTP/1.1 connection per thread to the exporter."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(
                "127.0.0.1", self._port, timeout=PROBE_HTTP_TIMEOUT_SECONDS
            )
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def get(self, path: str) -> tuple[int, str]:
        for attempt in range(2):  # one retry on a fresh connection if the old one went stale
            connection = self._connection(fresh=attempt > 0)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                return response.status, response.read().decode()
            except (ConnectionError, http.client.HTTPException):
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()


def check_probe(port: int, status: int, body: str, earliest_expiry: float) -> None:
    if status != 200:
        raise BenchmarkError(f"probe of port {port}: HTTP {status}")
    values: dict[str, str] = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            values[name] = value
    if values.get("probe_success") != "1":
        raise BenchmarkError(f"probe of port {port}: probe_success {values.get('probe_success')}")
    if "probe_ssl_earliest_cert_expiry" not in values:
        raise BenchmarkError(f"probe of port {port}: no probe_ssl_earliest_cert_expiry")
    expiry = float(values["probe_ssl_earliest_cert_expiry"])
    if abs(expiry - earliest_expiry) > EXPIRY_TOLERANCE_SECONDS:
        raise BenchmarkError(
            f"probe of port {port}: earliest expiry {expiry}, expected {earliest_expiry}"
        )


def run_blackbox(
    binary: str,
    ports: Sequence[int],
    concurrency: int,
    earliest_expiry: float,
    workdir: Path,
    timeout: float,
) -> Measurement:
    with blackbox_exporter(binary, workdir) as (exporter_port, pid):
        client = KeepAliveClient(exporter_port)

        def probe(port: int) -> None:
            path = f"/probe?module={BLACKBOX_MODULE}&target=127.0.0.1:{port}"
            try:
                status, body = client.get(path)
            except (OSError, http.client.HTTPException) as error:
                raise BenchmarkError(f"probe of port {port}: {error!r}") from None
            check_probe(port, status, body, earliest_expiry)

        try:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="probe") as pool:
                cpu_before = measure.cpu_seconds(pid)
                started = time.perf_counter()
                futures = [pool.submit(probe, port) for port in ports]
                done, pending = wait(futures, timeout=timeout, return_when=FIRST_EXCEPTION)
                seconds = time.perf_counter() - started
                cpu_used = measure.cpu_seconds(pid) - cpu_before
                for future in pending:
                    future.cancel()
                for future in done:
                    future.result()  # re-raises the first failure
                if pending:
                    raise BenchmarkError(f"{len(pending)} probes unfinished after {timeout:g}s")
        finally:
            client.close()
        return Measurement(
            seconds=seconds, peak_rss_bytes=measure.vm_hwm_bytes(pid), cpu_seconds=cpu_used
        )


# ---------------------------------------------------------------------------- report


def median_round(rounds: Sequence[Round]) -> Round:
    def med(values: Iterator[float]) -> float:
        return statistics.median(list(values))

    return Round(
        apivigil=ApivigilMeasurement(
            seconds=med(r.apivigil.seconds for r in rounds),
            peak_rss_bytes=int(med(r.apivigil.peak_rss_bytes for r in rounds)),
            cpu_seconds=med(r.apivigil.cpu_seconds for r in rounds),
            checks_seconds=med(r.apivigil.checks_seconds for r in rounds),
        ),
        blackbox=Measurement(
            seconds=med(r.blackbox.seconds for r in rounds),
            peak_rss_bytes=int(med(r.blackbox.peak_rss_bytes for r in rounds)),
            cpu_seconds=med(r.blackbox.cpu_seconds for r in rounds),
        ),
        server_cpu_apivigil=med(r.server_cpu_apivigil for r in rounds),
        server_cpu_blackbox=med(r.server_cpu_blackbox for r in rounds),
    )


def summary(rounds: Sequence[Round], endpoints: int, concurrency: int) -> str:
    result = median_round(rounds)
    a, b = result.apivigil, result.blackbox
    time_ratio = a.seconds / b.seconds
    memory_ratio = a.peak_rss_bytes / b.peak_rss_bytes
    cpu_ratio = a.cpu_seconds / b.cpu_seconds if b.cpu_seconds else float("inf")
    goal = time_ratio <= GOAL_RATIO and a.seconds < GOAL_SECONDS
    lines = [
        f"cert_expiry benchmark: {endpoints} TLS endpoints on 127.0.0.1, concurrency "
        f"{concurrency}, {len(rounds)} repeat(s), {os.cpu_count()} CPU(s)",
    ]
    if len(rounds) > 1:
        lines += [
            f"  repeat {i}: apivigil {r.apivigil.seconds:.2f} s / "
            f"{mib(r.apivigil.peak_rss_bytes)}, blackbox {r.blackbox.seconds:.2f} s / "
            f"{mib(r.blackbox.peak_rss_bytes)}"
            for i, r in enumerate(rounds, 1)
        ]
        lines.append("  (figures below are medians)")
    lines += [
        f"{'':24}{'wall time':>11}{'peak RSS':>13}{'CPU time':>11}",
        f"{'apivigil scan':24}{a.seconds:>9.2f} s{mib(a.peak_rss_bytes):>13}"
        f"{a.cpu_seconds:>9.2f} s",
        f"{'blackbox exporter':24}{b.seconds:>9.2f} s{mib(b.peak_rss_bytes):>13}"
        f"{b.cpu_seconds:>9.2f} s",
        f"{'ratio apivigil/blackbox':24}{time_ratio:>10.2f}x{memory_ratio:>12.2f}x"
        f"{cpu_ratio:>10.2f}x",
        f"  apivigil: whole process (startup, config, checks, JSON); its checks phase "
        f"(first run start to last run end) took {a.checks_seconds:.2f} s, "
        f"{a.checks_seconds / b.seconds:.2f}x blackbox",
        f"  blackbox: {endpoints} /probe requests to an exporter already running; "
        f"CPU is the exporter's only",
        f"  TLS server (one core): {result.server_cpu_apivigil:.2f} s CPU during apivigil, "
        f"{result.server_cpu_blackbox:.2f} s during blackbox; neither tool can finish its "
        f"handshakes sooner",
        f"goal (apivigil time <= {GOAL_RATIO:g}x blackbox and < {GOAL_SECONDS:g} s): "
        + ("MET" if goal else "NOT MET"),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=1000, help="TLS endpoints to create")
    parser.add_argument("--concurrency", type=int, default=50, help="checks/probes at once")
    parser.add_argument("--repeat", type=int, default=1, help="rounds; the median is reported")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds allowed per tool per round"
    )
    args = parser.parse_args(argv)
    if args.endpoints < 1 or args.repeat < 1:
        parser.error("--endpoints and --repeat must be at least 1")
    if not 1 <= args.concurrency <= 2000:
        parser.error("--concurrency must be 1..2000 (apivigil scan's range)")

    measure.unwind_on_sigterm()  # SIGTERM unwinds like Ctrl-C: the finally blocks stop every child
    measure.raise_fd_limit(args.endpoints + 4096)
    rounds: list[Round] = []
    with measure.reporting_failures():
        blackbox = ensure_blackbox()
        compile_bytecode()
        with tempfile.TemporaryDirectory(prefix="apivigil-bench-") as tmp:
            workdir = Path(tmp)
            cert, key, earliest = make_certificates(workdir / "tls")
            config = workdir / "apivigil.yaml"
            with tls_endpoints(cert, key, args.endpoints, workdir) as (ports, server):
                write_apivigil_config(config, ports, workdir / "apivigil.db")
                for i in range(args.repeat):
                    print(f"round {i + 1}/{args.repeat}: apivigil scan ...", flush=True)
                    before = measure.cpu_seconds(server)
                    apivigil = run_apivigil(
                        config, args.concurrency, args.endpoints, earliest, workdir, args.timeout
                    )
                    server_apivigil = measure.cpu_seconds(server) - before
                    print(f"round {i + 1}/{args.repeat}: blackbox exporter ...", flush=True)
                    before = measure.cpu_seconds(server)
                    exporter = run_blackbox(
                        blackbox, ports, args.concurrency, earliest, workdir, args.timeout
                    )
                    server_blackbox = measure.cpu_seconds(server) - before
                    rounds.append(Round(apivigil, exporter, server_apivigil, server_blackbox))
    print()
    print(summary(rounds, args.endpoints, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
