"""Benchmark: `apivigil scan --check tls_posture` vs the sslyze CLI vs testssl.sh.

The same TLS servers on 127.0.0.1 (nginx server blocks of mixed, mostly weak, configurations
from tests/support/tls_servers.py, plus tlslite-ng servers for RC4 and 3DES) are scanned by:

- apivigil: one `apivigil scan --format json --concurrency C` process, one target per server;
- the sslyze CLI: one `python -m sslyze` process for all servers, with the scan commands that
  checks/tls_posture/collect.py asks sslyze for (read from that module at run time);
- testssl.sh (Debian): one `testssl --file TARGETS --parallel` mass-testing run.

Each tool is timed from spawn to exit. Peak memory: wait4()'s ru_maxrss (the largest single
process of the tool's tree) and the sampled peak of the summed PSS of its process group.

Run from the project root:  .venv/bin/python benchmarks/tls_posture/run.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
if str(ROOT) not in sys.path:  # tests/ (the shared test servers) is not an installed package
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))  # benchmarks/measure.py

import measure  # noqa: E402
from measure import BenchmarkError, tail  # noqa: E402
from sslyze import ScanCommand  # noqa: E402

from checks.tls_posture.collect import OTHER_COMMANDS, PROTOCOL_COMMANDS  # noqa: E402
from tests.support.tls_certs import TestPki  # noqa: E402
from tests.support.tls_servers import (  # noqa: E402
    MODERN_CIPHERS,
    TLSLITE_3DES,
    TLSLITE_RC4,
    WEAK_OPENSSL_CONF,
    NginxBlock,
    NginxTls,
    TlsliteConfig,
    TlsliteServer,
    make_dh_params,
    standard_nginx_blocks,
)

TESTSSL = "testssl"
TESTSSL_PACKAGE = "testssl.sh"
INSTALL_DEPS = ROOT / "tests" / "install-tls-test-deps.sh"
GOAL_SSLYZE_RATIO = 0.8  # apivigil wall time <= 0.8x the sslyze CLI's (issue 17)
GOAL_TESTSSL_SPEEDUP = 10.0  # apivigil >= 10x faster than testssl.sh
TESTSSL_MAX_PARALLEL = 20
TESTSSL_TEMP = Path("/tmp/testssl.*")  # its mktemp -d template, fixed in the script
DONE_LINE = re.compile(r"Done .*?\[\s*(?P<seconds>\d+)s\]\s*-->> [^:]+:(?P<port>\d+) ")

# Servers in the order `--servers N` takes them: varied from the start, tlslite last (slow).
NGINX_ORDER = (
    "good",
    "tls10",
    "dh1024",
    "expired",
    "cbc",
    "wrong_host",
    "rsa1024",
    "self_signed",
    "static_rsa",
    "missing_intermediate",
    "tls11",
    "sha1_intermediate",
    "ocsp_revoked",
    "unknown_root",
    "dh2048",
    "not_yet_valid",
    "long_lifetime",
    "no_hsts",
    "tls13_only",
    "legacy_mix",
)
TLSLITE_SERVERS: dict[str, TlsliteConfig] = {
    "tlslite_rc4": TLSLITE_RC4,
    "tlslite_3des": TLSLITE_3DES,
}
SERVER_ORDER = (*NGINX_ORDER, *TLSLITE_SERVERS)
# `null` (NULL ciphers only) is left out: sslyze cannot connect to it at all.
LEGACY_MIX_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"
)

# sslyze CLI flag for each scan command (`python -m sslyze --help`).
SSLYZE_FLAGS: dict[ScanCommand, str] = {
    ScanCommand.CERTIFICATE_INFO: "--certinfo",
    ScanCommand.SSL_2_0_CIPHER_SUITES: "--sslv2",
    ScanCommand.SSL_3_0_CIPHER_SUITES: "--sslv3",
    ScanCommand.TLS_1_0_CIPHER_SUITES: "--tlsv1",
    ScanCommand.TLS_1_1_CIPHER_SUITES: "--tlsv1_1",
    ScanCommand.TLS_1_2_CIPHER_SUITES: "--tlsv1_2",
    ScanCommand.TLS_1_3_CIPHER_SUITES: "--tlsv1_3",
    ScanCommand.TLS_COMPRESSION: "--compression",
    ScanCommand.TLS_1_3_EARLY_DATA: "--early_data",
    ScanCommand.OPENSSL_CCS_INJECTION: "--openssl_ccs",
    ScanCommand.TLS_FALLBACK_SCSV: "--fallback",
    ScanCommand.HEARTBLEED: "--heartbleed",
    ScanCommand.ROBOT: "--robot",
    ScanCommand.SESSION_RENEGOTIATION: "--reneg",
    ScanCommand.ELLIPTIC_CURVES: "--elliptic_curves",
    ScanCommand.TLS_EXTENDED_MASTER_SECRET: "--ems",
    ScanCommand.HTTP_HEADERS: "--http_headers",
    ScanCommand.SESSION_RESUMPTION: "--resum",
}


# apivigil's protocol labels -> the sslyze JSON's scan command names
SSLYZE_PROTOCOLS = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1.0": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    port: int
    kind: str  # "nginx" or "tlslite"


@dataclass(slots=True)
class Measurement:
    tool: str
    seconds: float
    exit_code: int
    max_rss_bytes: int  # wait4 ru_maxrss: the largest single process of the tree
    tree_pss_bytes: int  # sampled peak of the summed PSS of the process group
    tree_processes: int  # most processes seen at once in the group
    cpu_seconds: float  # user + system of the tool and its reaped descendants
    spawned_at: float  # epoch seconds
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    per_server: dict[str, str] = field(default_factory=dict)  # server name -> short result
    per_host_seconds: float | None = None  # testssl: mean of each host's own scan time
    grades: dict[str, str] = field(default_factory=dict)  # server name -> letter
    caps: dict[str, str] = field(default_factory=dict)  # server name -> caps, short
    # server name -> (protocols enabled, accepted (protocol, suite) pairs): apivigil vs sslyze
    answers: dict[str, tuple[frozenset[str], int]] = field(default_factory=dict)
    version: str = ""

    @property
    def killed(self) -> bool:
        return self.exit_code < 0


# ---------------------------------------------------------------------------- processes


class TreeSampler:
    """Samples the summed PSS of every process in one session (the tool and its descendants).

    Tools are started with start_new_session=True, so the session id is the tool's pid and
    every descendant (testssl's bash subshells and openssl clients) carries it.
    """

    def __init__(self, interval: float) -> None:
        self._session = 0
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self.peak_processes = 0
        self._thread = threading.Thread(target=self._run, daemon=True, name="tree-sampler")

    def watching(self, session: int) -> TreeSampler:
        """This sampler, set to sample `session` (for measure.run_in_session's watch)."""
        self._session = session
        return self

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _members(self) -> list[int]:
        members = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) == self._session:  # state ppid pgrp session ...
                members.append(int(entry.name))
        return members

    @staticmethod
    def _pss_bytes(pid: int) -> int:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:  # gone already, or a kernel thread
            return 0
        for line in text.splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            members = self._members()
            total = sum(self._pss_bytes(pid) for pid in members)
            self.peak_bytes = max(self.peak_bytes, total)
            self.peak_processes = max(self.peak_processes, len(members))
            self._stop.wait(self._interval)


def run_measured(
    tool: str,
    command: Sequence[str],
    *,
    stdout: Path,
    stderr: Path,
    timeout: float,
    sample_interval: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Measurement:
    """Run `command` in its own session; time it, sample its tree, reap it with wait4().

    After `timeout` seconds, on Ctrl-C or SIGTERM, the whole process group is killed; so is
    anything the tool left running when it exits.
    """
    sampler = TreeSampler(sample_interval)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        spawned_at = time.time()
        code, seconds, usage = measure.run_in_session(
            command,
            stdout=out,
            stderr=err,
            timeout=timeout,
            env=env,
            cwd=cwd,
            watch=sampler.watching,
        )
    measurement = Measurement(
        tool=tool,
        seconds=seconds,
        exit_code=code,
        max_rss_bytes=usage.ru_maxrss * 1024,
        tree_pss_bytes=sampler.peak_bytes,
        tree_processes=sampler.peak_processes,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        spawned_at=spawned_at,
    )
    if code < 0:
        measurement.problems.append(
            f"killed by signal {-code} after {seconds:.0f} s (timeout {timeout:g} s)"
        )
    return measurement


# ---------------------------------------------------------------------------- setup


def ensure_testssl() -> str:
    """testssl's path; installs the Debian package testssl.sh when it is missing (root)."""
    return measure.ensure_debian_command(TESTSSL, TESTSSL_PACKAGE, update_first=False, quiet=True)


def ensure_server_deps() -> None:
    """nginx, openssl and tlslite-ng (tests/install-tls-test-deps.sh, idempotent)."""
    try:
        subprocess.run(["bash", str(INSTALL_DEPS)], check=True, timeout=1200)
    except (OSError, subprocess.SubprocessError) as error:
        raise BenchmarkError(f"{INSTALL_DEPS.name} failed: {error}") from None


def nginx_blocks(pki: TestPki, names: Sequence[str]) -> list[NginxBlock]:
    """The standard blocks (without `null`) plus tls13_only and legacy_mix, those in `names`."""
    dh = make_dh_params()
    blocks = {block.name: block for block in standard_nginx_blocks(pki, dh)}
    good = blocks["good"]
    blocks["tls13_only"] = NginxBlock(
        "tls13_only", good.cert, good.key, protocols="TLSv1.3", ciphers=MODERN_CIPHERS,
        hsts_max_age=31536000,
    )  # fmt: skip
    blocks["legacy_mix"] = NginxBlock(
        "legacy_mix", good.cert, good.key, protocols="TLSv1 TLSv1.1 TLSv1.2",
        ciphers=LEGACY_MIX_CIPHERS, dhparam=dh.dh1024,
    )  # fmt: skip
    return [blocks[name] for name in names]


@contextlib.contextmanager
def tls_servers(count: int, workdir: Path) -> Iterator[tuple[list[Server], TestPki]]:
    """Start the first `count` servers of SERVER_ORDER; yields them (in that order) and the PKI."""
    names = SERVER_ORDER[:count]
    pki = TestPki(workdir / "pki")
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        nginx_names = [name for name in names if name in NGINX_ORDER]
        if nginx_names:
            nginx = stack.enter_context(NginxTls(nginx_blocks(pki, nginx_names), workdir / "nginx"))
            servers.update({name: Server(name, nginx.port(name), "nginx") for name in nginx_names})
        tlslite_cert = pki.good(stem="tlslite")
        for name in names:
            if name in TLSLITE_SERVERS:
                server = TlsliteServer(
                    tlslite_cert.chain,
                    tlslite_cert.key,
                    TLSLITE_SERVERS[name],
                    log=workdir / f"{name}.log",
                )
                stack.enter_context(server)
                servers[name] = Server(name, server.port, "tlslite")
        yield [servers[name] for name in names], pki


# ---------------------------------------------------------------------------- apivigil


def run_apivigil(
    servers: Sequence[Server], pki: TestPki, workdir: Path, args: Any, stem: str
) -> Measurement:
    """One `apivigil scan`; `stem` names its files (a fresh store each time)."""
    config_path = workdir / f"{stem}.yaml"
    config = {
        "store": f"sqlite:///{workdir / f'{stem}.db'}",
        "targets": [
            {
                "name": server.name,
                "url": f"https://127.0.0.1:{server.port}",
                "checks": {
                    "tls_posture": {
                        "server_name": pki.host,
                        "trust_store": str(pki.root_pem),
                        **(
                            {"servers_at_once": args.servers_at_once}
                            if args.servers_at_once
                            else {}
                        ),
                    }
                },
            }
            for server in servers
        ],
    }
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    command = [
        str(measure.apivigil_command()),
        "scan",
        "--config",
        str(config_path),
        "--check",
        "tls_posture",
        "--format",
        "json",
        "--concurrency",
        str(args.concurrency),
    ]
    # APIVIGIL_* variables override the config file: keep the run reproducible.
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIVIGIL_")}
    out, err = workdir / f"{stem}.json", workdir / f"{stem}.stderr"
    measurement = run_measured(
        "apivigil",
        command,
        stdout=out,
        stderr=err,
        timeout=args.timeout,
        sample_interval=args.sample_interval,
        env=env,
        cwd=workdir,
    )
    if measurement.killed:
        return measurement
    if measurement.exit_code not in (0, 1):  # 1: findings at or above --fail-on (expected)
        measurement.problems.append(f"exit code {measurement.exit_code}:\n{tail(err)}")
    try:
        document = json.loads(out.read_bytes())
        verify_apivigil(document, servers, measurement)
    except (ValueError, KeyError, TypeError) as error:
        measurement.problems.append(f"unusable JSON ({error!r}):\n{tail(err)}")
    return measurement


def phases(m: Measurement, first_start: datetime, last_end: datetime) -> str:
    """Where the wall time went: before the first scan, scanning, after the last scan."""
    before = first_start.timestamp() - m.spawned_at
    scanning = (last_end - first_start).total_seconds()
    return (
        f"{before:.2f} s before the first scan starts, {scanning:.2f} s scanning, "
        f"{m.seconds - before - scanning:.2f} s after the last one ends"
    )


def verify_apivigil(document: dict[str, Any], servers: Sequence[Server], m: Measurement) -> None:
    runs = {run["target"]: run for run in document["runs"]}
    if runs:
        starts = [datetime.fromisoformat(run["started_at"]) for run in runs.values()]
        ends = [
            start + timedelta(seconds=run["duration_seconds"])
            for start, run in zip(starts, runs.values(), strict=True)
        ]
        m.notes.append(phases(m, min(starts), max(ends)))
    missing = [server.name for server in servers if server.name not in runs]
    if missing:
        m.problems.append(f"no run for {', '.join(missing)}")
    durations = []
    for name, run in runs.items():
        grades = [
            o["labels"]["grade"] for o in run["observations"] if o["name"] == "tls_grade_info"
        ]
        durations.append(run["duration_seconds"])
        if run["status"] != "ok":
            m.problems.append(f"{name}: status {run['status']}: {run['error']}")
        elif not grades:
            m.problems.append(f"{name}: no tls_grade_info observation")
        m.per_server[name] = (
            f"{run['status']} {grades[0] if grades else '-'} {run['duration_seconds']:.1f}s"
        )
        enabled = frozenset(
            o["labels"]["protocol"]
            for o in run["observations"]
            if o["name"] == "tls_protocol_enabled" and o["value"] == 1.0
        )
        suites = sum(
            int(o["value"]) for o in run["observations"] if o["name"] == "tls_cipher_suites"
        )
        m.answers[name] = (enabled, suites)
        grade = run.get("grade")
        if grade:
            m.grades[name] = grade["letter"] + ("?" if run["scan_grade"]["provisional"] else "")
            m.caps[name] = "; ".join(f"{c['letter']} {c['reason']}" for c in grade["caps"])
    if durations:
        m.notes.append(
            f"per-run durations {min(durations):.1f}-{max(durations):.1f} s "
            f"(mean {sum(durations) / len(durations):.1f} s)"
        )


# ---------------------------------------------------------------------------- sslyze CLI


def sslyze_flags() -> list[str]:
    """The CLI flags for the scan commands apivigil's tls_posture asks sslyze for."""
    commands = {*PROTOCOL_COMMANDS.values(), *OTHER_COMMANDS, ScanCommand.HTTP_HEADERS}
    unknown = commands - SSLYZE_FLAGS.keys()
    if unknown:
        raise BenchmarkError(f"no sslyze CLI flag known for {sorted(c.value for c in unknown)}")
    return sorted(SSLYZE_FLAGS[command] for command in commands)


def run_sslyze(
    servers: Sequence[Server], pki: TestPki, workdir: Path, args: Any, stem: str
) -> Measurement:
    """One sslyze CLI process for all servers; `stem` names its files."""
    json_out = workdir / f"{stem}.json"
    command = [
        sys.executable,
        "-m",
        "sslyze",
        "--quiet",
        *sslyze_flags(),
        "--certinfo_ca_file",
        str(pki.root_pem),
        "--mozilla_config",
        "intermediate",  # apivigil checks the same Mozilla profile
        "--json_out",
        str(json_out),
        *(f"{pki.host}:{server.port}{{127.0.0.1}}" for server in servers),
    ]
    err = workdir / f"{stem}.stderr"
    measurement = run_measured(
        "sslyze CLI",
        command,
        stdout=workdir / f"{stem}.stdout",
        stderr=err,
        timeout=args.timeout,
        sample_interval=args.sample_interval,
    )
    if measurement.killed:
        return measurement
    if measurement.exit_code not in (0, 1):  # 1: not Mozilla-compliant (expected)
        measurement.problems.append(f"exit code {measurement.exit_code}:\n{tail(err)}")
    try:
        verify_sslyze(json.loads(json_out.read_bytes()), servers, measurement)
    except (OSError, ValueError, KeyError, TypeError) as error:
        measurement.problems.append(f"unusable JSON ({error!r}):\n{tail(err)}")
    return measurement


def _accepted_count(scan_result: dict[str, Any] | None, command: str) -> int:
    attempt = (scan_result or {}).get(command) or {}
    return len((attempt.get("result") or {}).get("accepted_cipher_suites") or [])


def verify_sslyze(document: dict[str, Any], servers: Sequence[Server], m: Measurement) -> None:
    m.notes.append(
        phases(
            m,
            datetime.fromisoformat(document["date_scans_started"]),
            datetime.fromisoformat(document["date_scans_completed"]),
        )
    )
    by_port = {server.port: server.name for server in servers}
    seen = set()
    for result in document["server_scan_results"]:
        name = by_port.get(result["server_location"]["port"], "?")
        seen.add(name)
        if result["scan_status"] != "COMPLETED":
            m.problems.append(f"{name}: scan {result['scan_status']}")
            m.per_server[name] = result["scan_status"].lower()
            continue
        errors = [
            command
            for command, attempt in (result["scan_result"] or {}).items()
            if isinstance(attempt, dict) and attempt.get("status") == "ERROR"
        ]
        if errors:
            m.notes.append(f"{name}: scan command errors: {', '.join(sorted(errors))}")
        m.per_server[name] = f"ok, {len(errors)} err" if errors else "ok"
        accepted = {
            label: _accepted_count(result["scan_result"], command)
            for label, command in SSLYZE_PROTOCOLS.items()
        }
        m.answers[name] = (
            frozenset(label for label, count in accepted.items() if count),
            sum(accepted.values()),
        )
    missing = [server.name for server in servers if server.name not in seen]
    if missing:
        m.problems.append(f"no result for {', '.join(missing)}")


# ---------------------------------------------------------------------------- testssl.sh


def run_testssl(
    binary: str, servers: Sequence[Server], pki: TestPki, workdir: Path, args: Any
) -> Measurement:
    targets = workdir / "testssl-targets.txt"
    targets.write_text("".join(f"https://{pki.host}:{server.port}\n" for server in servers))
    weak_conf = workdir / "openssl-weak.cnf"
    weak_conf.write_text(WEAK_OPENSSL_CONF)
    json_out = workdir / "testssl.json"
    command = [
        binary,
        "--file",
        str(targets),
        "--parallel",
        "--warnings",
        "off",  # after --file, so it overrides the "--warnings=batch" mass testing implies
        "--quiet",
        "--color",
        "0",
        "--nodns",
        "none",  # no DNS at all; the address comes from --ip
        "--ip",
        "127.0.0.1",
        "--add-ca",
        str(pki.root_pem),
        "--jsonfile-pretty",
        str(json_out),
    ]  # --phone-out stays off (the default): no OCSP or CRL fetches
    env = {
        **os.environ,
        "OPENSSL_CONF": str(weak_conf),  # else it aborts on TLS 1.0-only and DH-1024 servers
        "MAX_WAIT_TEST": str(int(args.testssl_timeout)),  # our timeout, not its own 1200 s
        "MAX_PARALLEL": str(TESTSSL_MAX_PARALLEL),  # hosts at once (its default)
    }
    err = workdir / "testssl.stderr"
    temp_before = set(TESTSSL_TEMP.parent.glob(TESTSSL_TEMP.name))
    finished = False
    try:
        measurement = run_measured(
            "testssl.sh",
            command,
            stdout=workdir / "testssl.stdout",
            stderr=err,
            timeout=args.testssl_timeout,
            sample_interval=args.sample_interval,
            env=env,
            cwd=workdir,
        )
        finished = not measurement.killed
    finally:
        if not finished:  # killed: it had no chance to remove its /tmp/testssl.XXXXXX dirs
            for leftover in set(TESTSSL_TEMP.parent.glob(TESTSSL_TEMP.name)) - temp_before:
                shutil.rmtree(leftover, ignore_errors=True)
    if measurement.killed:
        return measurement
    try:
        verify_testssl(
            json.loads(json_out.read_bytes()), servers, workdir / "testssl.stdout", measurement
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        measurement.problems.append(
            f"exit code {measurement.exit_code}, unusable JSON ({error!r}):\n"
            f"{tail(workdir / 'testssl.stdout')}"
        )
    return measurement


def verify_testssl(
    document: dict[str, Any], servers: Sequence[Server], stdout: Path, m: Measurement
) -> None:
    by_port = {server.port: server.name for server in servers}
    # Each host's own duration: " Done 2026-01-01 10:00:00 [  58s] -->> 127.0.0.1:PORT (host) <<--"
    scan_seconds: dict[str, float] = {}
    for match in DONE_LINE.finditer(stdout.read_text(errors="replace")):
        scan_seconds[by_port.get(int(match["port"]), "?")] = float(match["seconds"])
    m.version = (str(document.get("version", "")).split() or [""])[0]
    seen = set()
    for result in document["scanResult"]:
        if "port" not in result:  # a bare finding, e.g. "Your OpenSSL cannot connect to ..."
            text = f"{result.get('severity')} {result.get('id')}: {result.get('finding')}"
            port = re.search(r":(\d+)\b", text)
            if port and int(port[1]) in by_port:
                text += f" ({by_port[int(port[1])]})"
            m.notes.append(text)
            continue
        name = by_port.get(int(result["port"]), "?")
        seen.add(name)
        findings = [
            finding
            for section in result.values()
            if isinstance(section, list)
            for finding in section
            if isinstance(finding, dict)
        ]
        fatal = [f for f in findings if f.get("severity") == "FATAL"]
        if fatal or "protocols" not in result:
            reason = fatal[0].get("finding", "?") if fatal else "no protocols section"
            m.problems.append(f"{name}: {reason}")
        high = sum(f.get("severity") in ("HIGH", "CRITICAL") for f in findings)
        # testssl.sh 3.1+ rates like SSL Labs (run_rating): "overall_grade" and its caps
        rating = {f.get("id"): str(f.get("finding", "")) for f in findings}
        if "overall_grade" in rating:
            m.grades[name] = rating["overall_grade"]
            m.caps[name] = "; ".join(
                v for k, v in sorted(rating.items()) if str(k).startswith("grade_cap_reason")
            )
        took = f" {scan_seconds[name]:.0f}s" if name in scan_seconds else ""
        m.per_server[name] = f"{high} high/crit{took}"
    missing = [server.name for server in servers if server.name not in seen]
    if missing:
        m.problems.append(f"no result for {', '.join(missing)}")
    if scan_seconds:
        values = list(scan_seconds.values())
        m.per_host_seconds = sum(values) / len(values)
        m.notes.append(
            f"per-host scan time {min(values):.0f}-{max(values):.0f} s "
            f"(mean {m.per_host_seconds:.0f} s; its 'Done [..s]' lines)"
        )


# ---------------------------------------------------------------------------- report


def mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


@dataclass(frozen=True, slots=True)
class TestsslEstimate:
    measured_hosts: int
    seconds: float  # for all servers: measured, or the lower extrapolation
    linear_seconds: float  # wall x N / K
    cpu_bound_seconds: float  # max(mean per-host scan, CPU x N / K / cpus): a lower bound
    extrapolated: bool


def estimate_testssl(testssl: Measurement, measured_hosts: int, total: int) -> TestsslEstimate:
    if measured_hosts >= total:
        return TestsslEstimate(
            measured_hosts, testssl.seconds, testssl.seconds, testssl.seconds, False
        )
    scale = total / measured_hosts
    linear = testssl.seconds * scale
    per_host = testssl.per_host_seconds or testssl.seconds
    cpu_bound = max(per_host, testssl.cpu_seconds * scale / (os.cpu_count() or 1))
    return TestsslEstimate(measured_hosts, min(linear, cpu_bound), linear, cpu_bound, True)


def verdict(met: bool, *measurements: Measurement) -> str:
    if any(m.killed for m in measurements):
        return "UNDETERMINED (a tool was killed)"
    incomplete = any(m.problems for m in measurements)
    return ("MET" if met else "NOT MET") + (
        " (results incomplete: see PROBLEM lines)" if incomplete else ""
    )


def grade_agreement(
    servers: Sequence[Server], apivigil: Measurement, testssl: Measurement | None
) -> list[str]:
    """Host by host: apivigil's grade and caps next to testssl.sh's rating."""
    lines = [
        "grade agreement, host by host (apivigil letter [? = provisional], caps | testssl.sh):"
    ]
    rated = [s.name for s in servers if testssl is not None and s.name in testssl.grades]
    for server in servers:
        theirs = testssl.grades.get(server.name, "-") if testssl else "-"
        mine = apivigil.grades.get(server.name, "-")
        mark = ("same" if mine.rstrip("?") == theirs else "DIFFERS") if theirs != "-" else ""
        lines.append(
            f"  {server.name:22} {mine:4} {theirs:4} {mark:8} "
            f"{apivigil.caps.get(server.name, '') or 'no caps'}"
        )
        if mark == "DIFFERS" and testssl is not None:
            lines.append(f"  {'':22} testssl caps: {testssl.caps.get(server.name) or 'none'}")
    if testssl is None:
        lines.append("  testssl.sh not run: no agreement figure")
    elif not rated:
        lines.append(
            f"  testssl.sh {testssl.version or '?'} has no rating (run_rating came with 3.1/3.2): "
            "no agreement figure. Debian 12 ships 3.0.8, and this machine reaches no other "
            "source of testssl.sh 3.2"
        )
    else:
        same = sum(apivigil.grades.get(n, "").rstrip("?") == testssl.grades[n] for n in rated)
        lines.append(f"  agreement with testssl.sh {testssl.version}: {same} of {len(rated)}")
    return lines


def answer_agreement(
    servers: Sequence[Server], apivigil: Measurement, sslyze: Measurement
) -> list[str]:
    """Server names where apivigil's protocols or accepted-suite count differ from sslyze's."""
    return [
        f"{s.name}: apivigil {sorted(apivigil.answers[s.name][0])} "
        f"{apivigil.answers[s.name][1]} suites, sslyze CLI {sorted(sslyze.answers[s.name][0])} "
        f"{sslyze.answers[s.name][1]} suites"
        for s in servers
        if s.name in apivigil.answers
        and s.name in sslyze.answers
        and apivigil.answers[s.name] != sslyze.answers[s.name]
    ]


def median_run(runs: Sequence[Measurement]) -> Measurement:
    """The run with the median wall time (the lower middle one for an even count)."""
    return sorted(runs, key=lambda m: m.seconds)[(len(runs) - 1) // 2]


def summary(
    servers: Sequence[Server],
    apivigil_runs: Sequence[Measurement],
    sslyze_runs: Sequence[Measurement],
    testssl: Measurement | None,
    testssl_servers: int,
    concurrency: int,
    load_at_start: float,
) -> tuple[str, bool]:
    n = len(servers)
    apivigil, sslyze = median_run(apivigil_runs), median_run(sslyze_runs)
    lines = [
        f"tls_posture benchmark: {n} TLS servers on 127.0.0.1 "
        f"({sum(s.kind == 'nginx' for s in servers)} nginx blocks, "
        f"{sum(s.kind == 'tlslite' for s in servers)} tlslite), {os.cpu_count()} CPU(s), "
        f"load average at start {load_at_start:.2f}; apivigil --concurrency {concurrency}",
    ]
    if len(apivigil_runs) > 1:
        lines += [
            f"  round {i}: apivigil {a.seconds:.2f} s, sslyze CLI {s.seconds:.2f} s "
            f"({a.seconds / s.seconds:.2f}x)"
            for i, (a, s) in enumerate(zip(apivigil_runs, sslyze_runs, strict=True), 1)
        ]
        lines.append("  apivigil and sslyze CLI below: the round with the median wall time")
    lines += [
        f"{'':28}{'hosts':>6}{'wall time':>12}{'CPU time':>11}{'max RSS':>10}"
        f"{'tree PSS':>11}{'procs':>7}",
    ]
    tools = [apivigil, sslyze] + ([testssl] if testssl else [])
    for m in tools:
        hosts = testssl_servers if m is testssl else n
        lines.append(
            f"{m.tool:28}{hosts:>6}{m.seconds:>10.2f} s{m.cpu_seconds:>9.1f} s"
            f"{mib(m.max_rss_bytes):>10}{mib(m.tree_pss_bytes):>11}{m.tree_processes:>7}"
        )
    estimate = estimate_testssl(testssl, testssl_servers, n) if testssl else None
    if estimate is not None and estimate.extrapolated:
        lines.append(
            f"{'testssl.sh (EXTRAPOLATED)':28}{n:>6}{estimate.seconds:>10.0f} s"
            f"   <- from {estimate.measured_hosts} hosts: CPU-bound lower bound "
            f"{estimate.cpu_bound_seconds:.0f} s, linear {estimate.linear_seconds:.0f} s"
        )
    lines.append(
        "  max RSS: wait4 ru_maxrss, the largest single process of the tool's tree; tree PSS: "
        "peak of the summed PSS of its process group, sampled"
    )
    for m in tools:
        for note in m.notes:
            lines.append(f"  {m.tool}: {note}")
    if testssl is not None:
        per_host = testssl.seconds / testssl_servers
        lines.append(
            f"  testssl.sh: {per_host:.1f} s wall per host in this parallel run "
            f"({testssl.seconds:.0f} s / {testssl_servers}; up to {TESTSSL_MAX_PARALLEL} hosts "
            f"at once share the CPUs, which stretches each host's own scan time)"
        )

    sslyze_ratio = apivigil.seconds / sslyze.seconds
    lines.append(
        f"ratio apivigil / sslyze CLI:   {sslyze_ratio:.2f}x wall, "
        f"{apivigil.cpu_seconds / max(sslyze.cpu_seconds, 1e-9):.2f}x CPU, "
        f"{apivigil.max_rss_bytes / max(sslyze.max_rss_bytes, 1):.2f}x max RSS"
    )
    lines.append(
        f"goal apivigil <= {GOAL_SSLYZE_RATIO:g}x sslyze CLI: "
        + verdict(sslyze_ratio <= GOAL_SSLYZE_RATIO, apivigil, sslyze)
    )
    if testssl is not None and estimate is not None:
        speedup = estimate.seconds / apivigil.seconds
        label = " (testssl EXTRAPOLATED to all servers)" if estimate.extrapolated else ""
        lines.append(f"ratio testssl.sh / apivigil:   {speedup:.1f}x wall{label}")
        lines.append(
            f"goal apivigil >= {GOAL_TESTSSL_SPEEDUP:g}x faster than testssl.sh: "
            + verdict(speedup >= GOAL_TESTSSL_SPEEDUP, apivigil, testssl)
            + label
        )
    else:
        lines.append("testssl.sh: not run (--testssl-servers 0)")

    lines.append(
        "per server: apivigil status, grade, run time | sslyze CLI | testssl.sh HIGH+CRITICAL "
        "findings, its own scan time"
    )
    for server in servers:
        lines.append(
            f"  {server.name:22}{server.port:>6}  {apivigil.per_server.get(server.name, '-'):18}"
            f"{sslyze.per_server.get(server.name, '-'):12}"
            f"{testssl.per_server.get(server.name, '-') if testssl else '-'}"
        )
    lines += grade_agreement(servers, apivigil, testssl)
    differences = 0
    for a, s in zip(apivigil_runs, sslyze_runs, strict=True):
        different = answer_agreement(servers, a, s)
        differences += len(different)
        a.problems += [f"protocols/suites differ from the sslyze CLI: {d}" for d in different]
    compared = sum(s.name in apivigil.answers and s.name in sslyze.answers for s in servers)
    lines.append(
        f"protocols enabled and accepted-suite counts vs the sslyze CLI, {compared} of {n} "
        "servers, every round: "
        + (f"{differences} DIFFERENCES (PROBLEM lines)" if differences else "all the same")
    )
    ok = True
    rounds = len(apivigil_runs)
    everything = [*apivigil_runs, *sslyze_runs] + ([testssl] if testssl else [])
    for i, m in enumerate(everything):
        where = f" (round {i % rounds + 1})" if m is not testssl and rounds > 1 else ""
        for problem in m.problems:
            ok = False
            lines.append(f"PROBLEM {m.tool}{where}: {problem}")
    lines.append("all tools returned complete results" if ok else "SOME RESULTS ARE INCOMPLETE")
    return "\n".join(lines), ok


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--servers",
        type=int,
        default=len(SERVER_ORDER),
        help=f"servers to start and scan (1..{len(SERVER_ORDER)}, default all)",
    )
    parser.add_argument(
        "--testssl-servers",
        type=int,
        default=None,
        help="how many of them testssl.sh scans (default: all; 0 skips it); fewer -> its "
        "time for all is extrapolated",
    )
    parser.add_argument("--concurrency", type=int, default=20, help="apivigil scan --concurrency")
    parser.add_argument(
        "--servers-at-once",
        type=int,
        default=None,
        help="apivigil's tls_posture servers_at_once (default: apivigil's own, 10, as the "
        "sslyze CLI's concurrent server scans)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of apivigil + sslyze CLI (the median is reported); testssl.sh runs once",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed to apivigil and sslyze each"
    )
    parser.add_argument(
        "--testssl-timeout", type=float, default=2400.0, help="seconds allowed to testssl.sh"
    )
    parser.add_argument(
        "--sample-interval", type=float, default=0.2, help="seconds between memory samples"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep the outputs (JSON, logs) in this directory"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.servers <= len(SERVER_ORDER):
        parser.error(f"--servers must be 1..{len(SERVER_ORDER)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    testssl_servers = args.servers if args.testssl_servers is None else args.testssl_servers
    if not 0 <= testssl_servers <= args.servers:
        parser.error("--testssl-servers must be 0..--servers")

    measure.unwind_on_sigterm()  # SIGTERM unwinds like Ctrl-C: the finally blocks stop every child
    measure.raise_fd_limit(8192)
    apivigil_runs: list[Measurement] = []
    sslyze_runs: list[Measurement] = []
    with measure.reporting_failures():
        ensure_server_deps()
        testssl_binary = ensure_testssl() if testssl_servers else ""
        with contextlib.ExitStack() as stack:
            if args.keep is not None:
                workdir = args.keep.resolve()
                workdir.mkdir(parents=True, exist_ok=True)
            else:
                tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="apivigil-tls-bench-"))
                workdir = Path(tmp)
            print(f"starting {args.servers} TLS servers ...", flush=True)
            servers, pki = stack.enter_context(tls_servers(args.servers, workdir))
            load_at_start = os.getloadavg()[0]
            for i in range(1, args.repeat + 1):
                print(f"round {i}/{args.repeat}: {len(servers)} servers: apivigil ", end="")
                apivigil_runs.append(run_apivigil(servers, pki, workdir, args, f"apivigil-{i}"))
                print(f"{apivigil_runs[-1].seconds:.2f} s, sslyze CLI ", end="", flush=True)
                sslyze_runs.append(run_sslyze(servers, pki, workdir, args, f"sslyze-{i}"))
                print(f"{sslyze_runs[-1].seconds:.2f} s", flush=True)
            testssl = None
            if testssl_servers:
                print(
                    f"testssl.sh --parallel on {testssl_servers} servers "
                    f"(about a minute per host, CPU-bound) ...",
                    flush=True,
                )
                testssl = run_testssl(testssl_binary, servers[:testssl_servers], pki, workdir, args)
                print(f"  {testssl.seconds:.1f} s", flush=True)
    text, ok = summary(
        servers,
        apivigil_runs,
        sslyze_runs,
        testssl,
        testssl_servers,
        args.concurrency,
        load_at_start,
    )
    print()
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
