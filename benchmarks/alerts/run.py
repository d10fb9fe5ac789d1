"""Benchmark: apivigil's alert engine and outbox vs Prometheus Alertmanager, mass expiry.

The acceptance from the alerting issue: "10,000 findings opened at once (a mass certificate
expiry): number of notifications sent (must equal the number of groups) and time to drain the
outbox, printed." Both tools get the same 10,000 critical `CERT-EXPIRES-SOON` alerts over 500
targets, group them by target (one receiver, group_wait 0s) and send every group to the same
kind of webhook sink: a ThreadingHTTPServer in this process, on 127.0.0.1, that answers 200 and
counts the POSTs, the groups and the alerts inside them.

- apivigil (worker.py, its own child process under GNU time, SQLite store in a temp dir):
  after recording the findings (setup, reported apart), times the engine tick (`run_tick`,
  which writes one outbox row per group) and the drain (`Dispatcher.deliver_due()` with the
  real WebhookNotifier, batch_size 200, workers 8, until no row is pending).
- the peer, Debian's `prometheus-alertmanager` (fresh instance and storage every round):
  times from the first POST of the alerts to /api/v2/alerts (batches of 1,000, in target
  order) until the sink has received, for every group, a notification carrying all of the
  group's alerts. Peak RSS is its VmHWM, CPU its utime + stime from /proc, read before it
  is stopped.

Run from the project root:  .venv/bin/python benchmarks/alerts/run.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from findings import REMEDIATION, RULE_ID, SEVERITY, TITLE, plan

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
import measure
from measure import BenchmarkError, mib, tail

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
INSTALLER = "tests/install-alert-test-deps.sh"
HOST = "127.0.0.1"
SETTLE_SECONDS = 2.5  # after the last expected notification: > Alertmanager's group_interval
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


# ---------------------------------------------------------------------------- the sink


@dataclass(slots=True)
class Received:
    at: float  # perf_counter in this process
    group: str  # the target the notification is about
    alerts: int
    status: str  # apivigil: kind (firing, ...); Alertmanager: status (firing, resolved)


class Sink(ThreadingHTTPServer):
    """POST /hook on 127.0.0.1: answers 200 and records each notification, either format."""

    daemon_threads = True
    request_queue_size = 1024  # Alertmanager opens one connection per group at once

    def __init__(self) -> None:
        super().__init__((HOST, 0), _SinkHandler)
        self.received: list[Received] = []
        self.bad: list[str] = []
        self.changed = threading.Condition()
        self._thread = threading.Thread(target=self.serve_forever, name="sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/hook"

    def start(self) -> Sink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def take(self) -> tuple[list[Received], list[str]]:
        """What arrived since the last take(), and clear it."""
        with self.changed:
            received, bad = self.received, self.bad
            self.received, self.bad = [], []
            return received, bad

    def record(self, body: bytes) -> None:
        at = time.perf_counter()
        try:
            document = json.loads(body)
            if (
                "dedup_key" in document
            ):  # apivigil's webhook schema (Alertmanager's has "version" too)
                item = Received(
                    at,
                    document["group_labels"]["target"],
                    len(document["firing"]),
                    document["kind"],
                )
            else:  # Alertmanager's webhook payload
                item = Received(
                    at,
                    document["groupLabels"]["target"],
                    len(document["alerts"]),
                    document["status"],
                )
        except (ValueError, KeyError, TypeError) as error:
            with self.changed:
                self.bad.append(f"{type(error).__name__}: {error}: {body[:200]!r}")
            return
        with self.changed:
            self.received.append(item)
            self.changed.notify_all()


class _SinkHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for clients that reuse connections
    server: Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/hook":
            self.server.record(body)
            self.send_response(200)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


# ---------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class ApivigilRound:
    wall_seconds: float  # spawn to exit
    peak_rss_bytes: int  # GNU time %M
    report: dict[str, Any]  # the worker's JSON
    posts: int
    alerts: int
    groups: int


@dataclass(frozen=True, slots=True)
class PeerRound:
    all_groups_seconds: float  # first POST -> every group had its first notification
    complete_seconds: float  # first POST -> every group notified with all its alerts
    post_seconds: float  # first POST -> last POST answered
    cpu_seconds: float  # Alertmanager's utime + stime over the measured window
    peak_rss_bytes: int  # VmHWM before it was stopped
    notifications: int  # after the settle period
    alerts: int  # alerts carried in those notifications
    groups: int
    statuses: dict[str, int] = field(default_factory=dict)


def loopback_env() -> dict[str, str]:
    """This environment without proxies, so every request stays on 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = HOST
    return env


def ensure_tools() -> None:
    measure.ensure_gnu_time()
    if not ALERTMANAGER.exists():
        raise BenchmarkError(f"{ALERTMANAGER} is missing: run `sudo bash {INSTALLER}`")


def alertmanager_version() -> str:
    done = subprocess.run(
        [str(ALERTMANAGER), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    first = (done.stdout + done.stderr).splitlines()
    return first[0] if first else "alertmanager (version unknown)"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "inf"


def summarize(received: Sequence[Received]) -> tuple[int, int, int, dict[str, int]]:
    """(notifications, alerts carried, distinct groups, notifications by status)."""
    statuses: dict[str, int] = {}
    for item in received:
        statuses[item.status] = statuses.get(item.status, 0) + 1
    return (
        len(received),
        sum(item.alerts for item in received),
        len({item.group for item in received}),
        statuses,
    )


# ---------------------------------------------------------------------------- apivigil


def run_apivigil(sink: Sink, args: argparse.Namespace, workdir: Path, label: str) -> ApivigilRound:
    database = workdir / label
    database.mkdir()
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.log"
    rss_path = workdir / f"{label}.maxrss"
    command = [
        sys.executable,
        str(WORKER),
        sink.url,
        str(database),
        str(args.findings),
        str(args.targets),
        str(args.batch_size),
        str(args.workers),
    ]
    sink.take()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        code, wall, _ = measure.run_in_session(
            measure.gnu_time(rss_path, command),
            stdout=out,
            stderr=err,
            timeout=args.timeout,
            env=loopback_env(),
        )
    if code != 0:
        raise BenchmarkError(
            f"apivigil worker exited {code} (timeout {args.timeout:g}s):\n{tail(err_path)}"
        )
    try:
        report = json.loads(out_path.read_text())
        peak_bytes = measure.gnu_time_peak_bytes(rss_path)
    except (OSError, ValueError, IndexError) as error:
        raise BenchmarkError(f"apivigil worker: no JSON or no %M ({error})") from None
    received, bad = sink.take()
    if bad:
        raise BenchmarkError(f"the sink could not read {len(bad)} apivigil POSTs: {bad[:2]}")
    posts, alerts, groups, statuses = summarize(received)
    result = ApivigilRound(wall, peak_bytes, report, posts, alerts, groups)
    verify_apivigil(result, statuses, args)
    return result


def verify_apivigil(
    result: ApivigilRound, statuses: dict[str, int], args: argparse.Namespace
) -> None:
    report = result.report
    groups = min(args.targets, args.findings)
    problems = []
    if report["notifications"] != report["groups"] or report["groups"] != groups:
        problems.append(
            f"the tick made {report['notifications']} notifications for {report['groups']} "
            f"groups; expected {groups} of each"
        )
    if report["alerts"] != args.findings:
        problems.append(f"the notifications carry {report['alerts']} alerts, not {args.findings}")
    if report["outbox_rows"] != report["notifications"]:
        problems.append(f"{report['outbox_rows']} outbox rows for {report['notifications']}")
    if report["delivered"] != report["notifications"]:
        problems.append(f"delivered {report['delivered']} of {report['notifications']}")
    if (result.posts, result.alerts, result.groups) != (groups, args.findings, groups):
        problems.append(
            f"the sink got {result.posts} POSTs, {result.alerts} alerts, {result.groups} groups"
        )
    if set(statuses) != {"firing"}:
        problems.append(f"the sink got kinds {statuses}")
    if problems:
        raise BenchmarkError("apivigil: " + "; ".join(problems))


# ---------------------------------------------------------------------------- Alertmanager


def alertmanager_config(sink_url: str) -> str:
    document = {  # JSON is YAML
        "global": {"resolve_timeout": "1m"},
        "route": {
            "receiver": "sink",
            "group_by": ["target"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "sink",
                "webhook_configs": [{"url": sink_url, "send_resolved": True, "max_alerts": 0}],
            }
        ],
    }
    return json.dumps(document, indent=2)


def alert_batches(findings: int, targets: int, batch: int) -> tuple[list[bytes], dict[str, int]]:
    """The POST bodies (in target order) and the number of alerts per group."""
    alerts: list[dict[str, Any]] = []
    per_group: dict[str, int] = {}
    for name, items in plan(findings, targets).items():
        per_group[name] = len(items)
        alerts.extend(
            {
                "labels": {
                    "alertname": RULE_ID,
                    "target": item.target,
                    "subject": item.subject,
                    "severity": SEVERITY,
                },
                "annotations": {  # what apivigil's webhook document carries too
                    "summary": TITLE,
                    "description": item.evidence,
                    "remediation": REMEDIATION,
                },
            }
            for item in items
        )
    bodies = [
        json.dumps(alerts[start : start + batch]).encode() for start in range(0, len(alerts), batch)
    ]
    return bodies, per_group


class Alertmanager:
    def __init__(self, sink_url: str, workdir: Path, label: str) -> None:
        self.directory = workdir / label
        self.directory.mkdir()
        self.log = workdir / f"{label}.log"
        with contextlib.closing(socket.socket()) as probe:
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        config = self.directory / "alertmanager.yml"
        config.write_text(alertmanager_config(sink_url))
        self.command = [
            str(ALERTMANAGER),
            f"--config.file={config}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Alertmanager:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=loopback_env(),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                if self.process.poll() is not None:
                    raise BenchmarkError(
                        f"alertmanager exited with {self.process.returncode}:\n{tail(self.log)}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"alertmanager not ready after 30 s:\n{tail(self.log)}")
                time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(measure.CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                measure.kill_group(process.pid)
                process.wait(measure.CHILD_STOP_SECONDS)
        measure.kill_group(process.pid)


def run_alertmanager(
    sink: Sink,
    bodies: Sequence[bytes],
    per_group: dict[str, int],
    args: argparse.Namespace,
    workdir: Path,
    label: str,
) -> PeerRound:
    with (
        Alertmanager(sink.url, workdir, label) as alertmanager,
        httpx.Client(timeout=args.timeout, trust_env=False) as client,
    ):
        assert alertmanager.process is not None
        pid = alertmanager.process.pid
        sink.take()
        cpu_before = measure.cpu_seconds(pid)
        started = time.perf_counter()
        for body in bodies:
            answer = client.post(
                f"{alertmanager.url}/api/v2/alerts",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            if answer.status_code != 200:
                raise BenchmarkError(
                    f"alertmanager answered {answer.status_code}: {answer.text[:300]}"
                )
        posted = time.perf_counter()
        complete_at = wait_complete(sink, per_group, started, args.timeout)
        cpu = measure.cpu_seconds(pid) - cpu_before
        time.sleep(SETTLE_SECONDS)  # anything still coming is counted, not timed
        peak = measure.vm_hwm_bytes(pid)
        if alertmanager.process.poll() is not None:
            raise BenchmarkError(f"alertmanager died:\n{tail(alertmanager.log)}")
    received, bad = sink.take()
    if bad:
        raise BenchmarkError(f"the sink could not read {len(bad)} Alertmanager POSTs: {bad[:2]}")
    first: dict[str, float] = {}
    for item in received:
        first.setdefault(item.group, item.at)
    notifications, alerts, groups, statuses = summarize(received)
    if groups != len(per_group):
        raise BenchmarkError(f"alertmanager notified {groups} groups, not {len(per_group)}")
    return PeerRound(
        all_groups_seconds=max(first.values()) - started,
        complete_seconds=complete_at - started,
        post_seconds=posted - started,
        cpu_seconds=cpu,
        peak_rss_bytes=peak,
        notifications=notifications,
        alerts=alerts,
        groups=groups,
        statuses=statuses,
    )


def wait_complete(sink: Sink, per_group: dict[str, int], started: float, timeout: float) -> float:
    """When every group has had a notification with all its alerts (perf_counter)."""
    deadline = started + timeout
    complete: set[str] = set()
    seen = 0
    with sink.changed:
        while True:
            for item in sink.received[seen:]:
                if item.status == "firing" and item.alerts >= per_group.get(item.group, 1 << 30):
                    complete.add(item.group)
                    if len(complete) == len(per_group):
                        return item.at
            seen = len(sink.received)
            if sink.bad:
                raise BenchmarkError(f"the sink could not read Alertmanager POSTs: {sink.bad[:2]}")
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise BenchmarkError(
                    f"alertmanager: after {timeout:g} s only {len(complete)} of "
                    f"{len(per_group)} groups were notified with all their alerts"
                )
            sink.changed.wait(remaining)


# ---------------------------------------------------------------------------- report


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def summary(
    apivigil: Sequence[ApivigilRound],
    peer: Sequence[PeerRound],
    args: argparse.Namespace,
    peer_posts: int,
) -> str:
    def a(key: str) -> float:
        return med([r.report[key] for r in apivigil])

    groups = min(args.targets, args.findings)
    tick, drain, total = a("tick_seconds"), a("drain_seconds"), a("total_seconds")
    a_cpu = med([r.report["tick_cpu_seconds"] + r.report["drain_cpu_seconds"] for r in apivigil])
    a_rss = med([r.peak_rss_bytes for r in apivigil])
    p_complete = med([r.complete_seconds for r in peer])
    p_first = med([r.all_groups_seconds for r in peer])
    p_post = med([r.post_seconds for r in peer])
    p_cpu = med([r.cpu_seconds for r in peer])
    p_rss = med([r.peak_rss_bytes for r in peer])
    p_notifications = med([r.notifications for r in peer])
    p_alerts = med([r.alerts for r in peer])
    last = apivigil[-1].report
    lines = [
        f"alerts benchmark: {args.findings:,} findings over {args.targets:,} targets "
        f"({groups:,} groups), {os.cpu_count()} CPU(s), {len(apivigil)} repeat(s)"
        + (" (medians)" if len(apivigil) > 1 else ""),
        f"  apivigil: SQLite store; one route, group_by [target], group_wait 0s; dispatcher "
        f"batch_size {args.batch_size}, workers {args.workers}; WebhookNotifier",
        f"  peer: {alertmanager_version()}",
        f"    group_by [target], group_wait 0s, group_interval 1s; {peer_posts} POSTs of "
        f"<= {args.am_batch:,} alerts, in target order",
    ]
    for i, (ra, rp) in enumerate(zip(apivigil, peer, strict=True), 1):
        lines.append(
            f"  round {i}: apivigil tick {ra.report['tick_seconds']:.2f} s + drain "
            f"{ra.report['drain_seconds']:.2f} s = {ra.report['total_seconds']:.2f} s, "
            f"{ra.posts} notifications; alertmanager {rp.all_groups_seconds:.2f} s / "
            f"{rp.complete_seconds:.2f} s, {rp.notifications} notifications"
        )
    header = ("notifications", "alerts sent", "all groups", "all alerts", "CPU", "peak RSS")
    lines += [
        "",
        f"  {'':22}" + "".join(f"{h:>14}" for h in header),
        f"  {'apivigil tick + drain':22}{apivigil[-1].posts:>14,}{apivigil[-1].alerts:>14,}"
        f"{total:>12.3f} s{total:>12.3f} s{a_cpu:>12.3f} s{mib(a_rss):>14}",
        f"  {'alertmanager':22}{p_notifications:>14,.0f}{p_alerts:>14,.0f}"
        f"{p_first:>12.3f} s{p_complete:>12.3f} s{p_cpu:>12.3f} s{mib(p_rss):>14}",
        f"  {'ratio apivigil/peer':22}{'':14}{'':14}{ratio(total, p_first):>14}"
        f"{ratio(total, p_complete):>14}{ratio(a_cpu, p_cpu):>14}{ratio(a_rss, p_rss):>14}",
        f"  notifications == groups ({groups:,}): apivigil "
        f"{'yes' if all(r.posts == groups for r in apivigil) else 'NO'}, alertmanager "
        + (
            "yes"
            if all(r.notifications == groups for r in peer)
            else "NO (" + ", ".join(f"{r.notifications:,}" for r in peer) + " over the rounds)"
        ),
        "",
        f"  apivigil: tick {tick:.3f} s (CPU {a('tick_cpu_seconds'):.3f} s), drain {drain:.3f} s "
        f"(CPU {a('drain_cpu_seconds'):.3f} s, {last['passes']} deliver_due() passes, "
        f"{groups / drain if drain else 0:,.0f} notifications/s)",
        f"  apivigil setup, not timed above: schema, {args.targets:,} targets, "
        f"{args.targets:,} runs recorded with {args.findings:,} findings: "
        f"{a('setup_seconds'):.2f} s; worker {med([r.wall_seconds for r in apivigil]):.2f} s "
        "spawn to exit",
        f"  apivigil VmHWM: {mib(a('hwm_imports_bytes'))} after imports, "
        f"{mib(a('hwm_setup_bytes'))} after setup, {mib(a('hwm_tick_bytes'))} after the tick, "
        f"{mib(a('hwm_end_bytes'))} after the drain",
        f"  alertmanager: POSTs answered after {p_post:.3f} s; every group's first notification "
        f"after {p_first:.3f} s; every group with all its alerts after {p_complete:.3f} s",
        "  all groups: until every group had a notification; all alerts: until every group had "
        "one carrying all its alerts",
        "    (apivigil: tick + drain, timed in the worker; alertmanager: from the first POST)",
        "  CPU: apivigil process_time() of tick + drain; alertmanager utime + stime, first POST "
        "to all alerts",
        "  peak RSS: apivigil worker's ru_maxrss (GNU time; includes setup); alertmanager VmHWM",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=10_000, help="findings opened at once")
    parser.add_argument("--targets", type=int, default=500, help="targets (= groups)")
    parser.add_argument("--batch-size", type=int, default=200, help="dispatcher batch_size")
    parser.add_argument("--workers", type=int, default=8, help="dispatcher workers")
    parser.add_argument(
        "--am-batch", type=int, default=1_000, help="alerts per POST to Alertmanager"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per step")
    parser.add_argument("--keep", type=Path, help="keep the stores and logs here")
    args = parser.parse_args(argv)
    if args.targets < 1 or args.findings < args.targets or args.repeat < 1 or args.am_batch < 1:
        parser.error("need --targets >= 1, --findings >= --targets, --repeat and --am-batch >= 1")
    if not (1 <= args.batch_size <= 1000 and 1 <= args.workers <= 64):
        parser.error("--batch-size must be 1..1000 and --workers 1..64 (DispatcherConfig)")
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep} must be empty or absent")

    measure.unwind_on_sigterm()
    apivigil: list[ApivigilRound] = []
    peer: list[PeerRound] = []
    bodies, per_group = alert_batches(args.findings, args.targets, args.am_batch)
    with tempfile.TemporaryDirectory(prefix="apivigil-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        sink = Sink().start()
        try:
            with measure.reporting_failures():
                ensure_tools()
                for number in range(1, args.repeat + 1):
                    print(f"round {number}/{args.repeat}: apivigil ...", flush=True)
                    apivigil.append(run_apivigil(sink, args, workdir, f"apivigil-{number}"))
                    print(f"round {number}/{args.repeat}: alertmanager ...", flush=True)
                    peer.append(
                        run_alertmanager(
                            sink, bodies, per_group, args, workdir, f"alertmanager-{number}"
                        )
                    )
        finally:
            sink.stop()
        print()
        print(summary(apivigil, peer, args, len(bodies)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
