"""Benchmark: the scale-out cluster on 5,000 certificate targets with 1, 2 and 4 workers.

For each worker count, on a fresh PostgreSQL schema and Redis namespace:
one `apivigil run` (it wins the election and schedules) and W `apivigil worker` processes
check N loopback TLS listeners (one asyncio process, ../cert_expiry/tls_server.py) every
5 minutes. The leader's first act is to enqueue every target's current slot (they never
ran), which gives a burst of N checks: its drain rate is the capacity in checks per second.
Then the steady state is watched for a while: scheduling lag (a run's start minus its
slot) per minute, the store's growth per run and so per day at this rate, and /metrics
response time with N targets. Numbers are printed; nothing is asserted.

Run from the project root:  .venv/bin/python benchmarks/scale_out/run.py [--long]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import redis
import sqlalchemy as sa
import yaml

from monitor.certmaker import issue, write_server_files
from monitor.durations import parse_duration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
import measure
from measure import BenchmarkError, tail

HERE = Path(__file__).resolve().parent
TLS_SERVER = HERE.parent / "cert_expiry" / "tls_server.py"
SERVER_NAME = "bench.apivigil.test"
POSTGRES = os.environ.get(
    "APIVIGIL_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS = os.environ.get("APIVIGIL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
APIVIGIL = [sys.executable, "-m", "monitor"]
METRICS_SCRAPES = 5
STOP_SECONDS = 20.0
LONG_SECONDS = 10 * 60


@dataclass(frozen=True, slots=True)
class LagMinute:
    minute: int
    runs: int
    p50: float
    p95: float
    worst: float


@dataclass(frozen=True, slots=True)
class Phase:
    workers: int
    burst_checks: int
    burst_seconds: float
    steady_checks_per_second: float
    lag: list[LagMinute]
    bytes_per_run: float
    runs_per_day: float
    metrics_cold_seconds: float  # the first scrape renders synchronously
    metrics_seconds: list[float]  # later scrapes, 2 s apart
    metrics_bytes: int

    @property
    def capacity(self) -> float:
        return self.burst_checks / self.burst_seconds


# ---------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def tls_listeners(directory: Path, count: int) -> Iterator[list[int]]:
    """`count` TLS ports on 127.0.0.1 served by one asyncio process."""
    ca = issue("apivigil bench CA", ca=True)
    leaf = issue(SERVER_NAME, ca, hosts=(SERVER_NAME,))
    cert, key = write_server_files(directory, "bench", leaf, ca)
    command = [sys.executable, str(TLS_SERVER), "--cert", str(cert), "--key", str(key)]
    process = subprocess.Popen(
        [*command, "--count", str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise BenchmarkError("the TLS server did not start")
        yield list(json.loads(line)["ports"])
    finally:
        if process.stdin is not None:
            process.stdin.close()  # the server stops when its stdin closes
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            measure.stop_process(process, STOP_SECONDS)


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    schema = f"apivigil_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def fresh_namespace() -> Iterator[str]:
    namespace = f"apivigil_bench_{uuid.uuid4().hex[:10]}"
    try:
        yield namespace
    finally:
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        client.close()


def write_config(
    path: Path, store: str, namespace: str, ports: list[int], args: argparse.Namespace, workers: int
) -> Path:
    config = {
        "store": store,
        "listen": f"127.0.0.1:{measure.free_port()}",
        "log_level": "warning",
        "defaults": {"interval": args.interval, "timeout": "20s"},
        "scheduler": {"initial_spread": "1s", "misfire_grace": "5m"},
        "cluster": {
            "broker": REDIS,
            "namespace": namespace,
            "worker": {"threads": args.threads},
            # every listener is 127.0.0.1: a limit above all threads, so it never binds
            "politeness": {"per_host": 2 * args.threads * workers},
        },
        "targets": [
            {
                "name": f"ep{index:05d}",
                "url": f"https://127.0.0.1:{port}",
                "checks": {"cert_expiry": {"server_name": SERVER_NAME}},
            }
            for index, port in enumerate(ports)
        ],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---------------------------------------------------------------------------- measuring


class StoreProbe:
    def __init__(self, store: str) -> None:
        self.engine = sa.create_engine(store)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine.connect() as connection:
            return connection.execute(sa.text(sql), params).scalar()

    def runs(self) -> int:
        sql = "SELECT coalesce(sum(run_count), 0) FROM check_run"  # run-length rows
        return int(self.scalar(sql))  # type: ignore[arg-type]

    def size_bytes(self) -> int:
        return int(
            self.scalar(  # type: ignore[arg-type]
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        )

    def runs_until(self, moment: datetime) -> int:
        """Runs of slots due up to `moment` (the leader's first burst)."""
        sql = "SELECT count(*) FROM check_run WHERE slot_at <= :t"
        return int(self.scalar(sql, t=moment))  # type: ignore[arg-type]

    def burst_seconds(self, before: datetime) -> float:
        first = self.scalar("SELECT min(started_at) FROM check_run WHERE slot_at <= :t", t=before)
        last = self.scalar("SELECT max(finished_at) FROM check_run WHERE slot_at <= :t", t=before)
        assert isinstance(first, datetime)
        assert isinstance(last, datetime)
        return (last - first).total_seconds()

    def lags(self, after: datetime) -> list[tuple[datetime, float]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT slot_at, extract(epoch FROM started_at - slot_at) FROM check_run "
                    "WHERE slot_at > :t ORDER BY slot_at"
                ),
                {"t": after},
            ).all()
        return [(slot, float(lag)) for slot, lag in rows]

    def close(self) -> None:
        self.engine.dispose()


def lag_by_minute(lags: list[tuple[datetime, float]], start: datetime) -> list[LagMinute]:
    minutes: dict[int, list[float]] = {}
    for slot, lag in lags:
        minutes.setdefault(int((slot - start).total_seconds() // 60), []).append(lag)
    result = []
    for minute, values in sorted(minutes.items()):
        values.sort()
        result.append(
            LagMinute(
                minute=minute,
                runs=len(values),
                p50=values[len(values) // 2],
                p95=values[min(len(values) - 1, int(len(values) * 0.95))],
                worst=values[-1],
            )
        )
    return result


def wait_for(predicate: object, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(1)
    raise BenchmarkError(
        f"not within {timeout:g}s: {what}\n" + "\n".join(tail(p, 20) for p in logs)
    )


def start_processes(config: Path, workers: int, logs: list[Path]) -> list[subprocess.Popen[bytes]]:
    """W workers, then one candidate (it wins the election: it is alone)."""
    commands = [["worker"]] * workers + [["run"]]
    return [
        subprocess.Popen(
            [*APIVIGIL, *command, "--config", str(config)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for command, log in zip(commands, logs, strict=True)
    ]


def scrape_metrics(listen: str) -> tuple[float, list[float], int]:
    """The first scrape's seconds, then METRICS_SCRAPES more 2 s apart, and the body size."""
    times, size = [], 0
    for index in range(METRICS_SCRAPES + 1):
        if index:
            time.sleep(2)
        started = time.perf_counter()
        response = httpx.get(f"http://{listen}/metrics", timeout=120)
        times.append(time.perf_counter() - started)
        size = len(response.content)
    return times[0], times[1:], size


def run_phase(workers: int, ports: list[int], args: argparse.Namespace, directory: Path) -> Phase:
    steady_seconds = LONG_SECONDS if args.long and workers == 2 else args.steady
    with fresh_schema() as store, fresh_namespace() as namespace:
        config = write_config(
            directory / f"w{workers}.yaml", store, namespace, ports, args, workers
        )
        listen = yaml.safe_load(config.read_text())["listen"]
        upgrade = [*APIVIGIL, "db", "upgrade", "--config", str(config)]
        subprocess.run(upgrade, check=True, capture_output=True)
        logs = [directory / f"w{workers}-worker{i}.log" for i in range(workers)]
        logs.append(directory / f"w{workers}-leader.log")
        probe = StoreProbe(store)
        processes = start_processes(config, workers, logs)
        try:
            # the leader enqueues every target's current slot, then reports its role
            wait_for(lambda: role(listen) == "leader", 120, "the leader", logs)
            leading = datetime.now().astimezone()
            wait_for(
                lambda: probe.runs_until(leading) >= len(ports),
                args.timeout,
                f"the first {len(ports)} checks",
                logs,
            )
            drained = datetime.now().astimezone()
            burst = probe.burst_seconds(leading)
            runs_before, size_before = probe.runs(), probe.size_bytes()
            print(
                f"  {workers} worker(s): {probe.runs_until(leading)} checks drained in "
                f"{burst:.1f} s; steady state for {steady_seconds} s ...",
                flush=True,
            )
            time.sleep(steady_seconds)
            runs_after, size_after = probe.runs(), probe.size_bytes()
            cold, warm, size = scrape_metrics(listen)
            return Phase(
                workers=workers,
                burst_checks=probe.runs_until(leading),
                burst_seconds=burst,
                steady_checks_per_second=(runs_after - runs_before) / steady_seconds,
                lag=lag_by_minute(probe.lags(drained), drained),
                bytes_per_run=(size_after - size_before) / max(1, runs_after - runs_before),
                runs_per_day=len(ports) * 86400 / _seconds(args.interval),
                metrics_cold_seconds=cold,
                metrics_seconds=warm,
                metrics_bytes=size,
            )
        finally:
            for process in reversed(processes):
                measure.stop_process(process, STOP_SECONDS)
            probe.close()


def role(listen: str) -> str | None:
    try:
        return httpx.get(f"http://{listen}/readyz", timeout=5).json().get("role")
    except (httpx.HTTPError, ValueError):
        return None


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print(
        f"\n{args.targets} cert_expiry targets on 127.0.0.1 every {args.interval}, "
        f"{args.threads} threads per worker, {os.cpu_count()} CPUs"
    )
    print(
        "workers | capacity (burst) | steady checks/s | lag p50 / p95 / max | "
        "store per run | per day | /metrics first, then median / max"
    )
    for phase in phases:
        lags = phase.lag
        p50 = statistics.median(m.p50 for m in lags) if lags else float("nan")
        p95 = max((m.p95 for m in lags), default=float("nan"))
        worst = max((m.worst for m in lags), default=float("nan"))
        per_day = phase.bytes_per_run * phase.runs_per_day / 2**30
        scrapes = phase.metrics_seconds
        print(
            f"{phase.workers:>7} | {phase.capacity:>10.1f} /s  "
            f"| {phase.steady_checks_per_second:>15.1f}"
            f" | {p50:5.2f} / {p95:5.2f} / {worst:5.2f} s"
            f" | {phase.bytes_per_run:>9.0f} B | {per_day:5.2f} GiB"
            f" | {phase.metrics_cold_seconds * 1000:.0f} ms, then"
            f" {statistics.median(scrapes) * 1000:.0f} / {max(scrapes) * 1000:.0f} ms"
            f" ({phase.metrics_bytes / 2**20:.1f} MiB)"
        )
    for phase in phases:
        print(f"\nlag by minute after the burst, {phase.workers} worker(s): runs, p50 / p95 / max")
        for minute in phase.lag:
            print(
                f"  minute {minute.minute:>2}: {minute.runs:>5}  "
                f"{minute.p50:5.2f} / {minute.p95:5.2f} / {minute.worst:5.2f} s"
            )
        if len(phase.lag) >= 3:
            first, last = phase.lag[0], phase.lag[-1]
            grew = last.p95 > first.p95 * 1.5 + 0.5
            print(
                f"  lag {'grew' if grew else 'did not grow'}: p95 {first.p95:.2f} s "
                f"in the first minute, {last.p95:.2f} s in the last"
            )
    warm = max(max(p.metrics_seconds) for p in phases)
    cold = max(p.metrics_cold_seconds for p in phases)
    print(
        f"\ngoal /metrics < 500 ms with {args.targets} targets: "
        f"{'met' if warm < 0.5 else 'NOT met'} by repeated scrapes (slowest {warm * 1000:.0f} ms);"
        f" a first scrape renders synchronously ({cold * 1000:.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--interval", default="5m")
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    parser.add_argument("--steady", type=int, default=120, help="seconds of steady state per phase")
    parser.add_argument("--long", action="store_true", help="watch 10 minutes with 2 workers")
    parser.add_argument("--timeout", type=float, default=900, help="limit for the burst to drain")
    args = parser.parse_args()
    measure.raise_fd_limit(args.targets + 8192)
    with tempfile.TemporaryDirectory(prefix="apivigil-scale-out-") as temp:
        directory = Path(temp)
        with tls_listeners(directory, args.targets) as ports:
            phases = []
            for workers in (int(w) for w in args.workers.split(",")):
                phases.append(run_phase(workers, ports, args, directory))
        report(phases, args)


if __name__ == "__main__":
    try:
        main()
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(1)
