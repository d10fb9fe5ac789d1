"""Running and measuring child processes, for the benchmark scripts (benchmarks/*/run.py).

The scripts run as plain files, so each puts this folder on sys.path before importing it:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/measure.py
    import measure
    from measure import BenchmarkError, mib, tail

What is here: starting a child in its own session and reaping it with wait4() (its own
rusage) under a timeout, GNU time's peak RSS, stopping processes, /proc readings (VmHWM,
CPU time), and the machine-level setup the scripts share (RLIMIT_NOFILE, a free port,
Debian packages, the apivigil entry point). Errors are BenchmarkError; reporting_failures()
turns one into `benchmark failed: ...` and exit status 1.
"""

from __future__ import annotations

import contextlib
import os
import py_compile
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]  # the project's root
GNU_TIME = "/usr/bin/time"
CHILD_STOP_SECONDS = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchmarkError(Exception):
    """The benchmark could not run or a tool gave wrong answers."""


# ---------------------------------------------------------------------------- signals


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def unwind_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so the finally blocks stop every child process."""
    signal.signal(signal.SIGTERM, _exit_on_signal)


@contextlib.contextmanager
def reporting_failures(
    interrupted: str = "interrupted; every child process was stopped",
) -> Iterator[None]:
    """Around a benchmark's rounds: a BenchmarkError is printed as `benchmark failed: ...`
    and exits 1; Ctrl-C prints `interrupted` and exits 130 (the finally blocks inside have
    stopped the children by then)."""
    try:
        yield
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        raise SystemExit(130) from None


def precompile() -> None:
    """Write this module's .pyc, which PYTHONDONTWRITEBYTECODE would not: a script that is
    its own worker process then reads it instead of compiling this file, which would add
    about 0.6 MiB to the VmHWM the worker measures after its imports."""
    py_compile.compile(__file__, doraise=False, quiet=1)


# ---------------------------------------------------------------------------- child processes


def kill_group(pid: int) -> None:
    """SIGKILL the process group `pid` (a child started with start_new_session=True)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def stop_process(process: subprocess.Popen[bytes], seconds: float = CHILD_STOP_SECONDS) -> None:
    """Terminate, then kill; waits at most `seconds` for each."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(seconds)


def wait_with_usage(
    process: subprocess.Popen[bytes], timeout: float
) -> tuple[int, resource.struct_rusage]:
    """Reap `process` with wait4() to get its own rusage; kill it after `timeout` seconds."""
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): do not leave the child running
        process.kill()
        process.wait(CHILD_STOP_SECONDS)
        raise
    finally:
        killer.cancel()
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage


def run_in_session(
    command: Sequence[str],
    *,
    stdout: IO[bytes],
    stderr: IO[bytes],
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_timeout: Callable[[int], None] = kill_group,
    watch: Callable[[int], AbstractContextManager[object]] | None = None,
) -> tuple[int, float, resource.struct_rusage]:
    """Run `command` in its own session and reap it with wait4(); returns (exit code, wall
    seconds from spawn to exit, its rusage).

    After `timeout` seconds `on_timeout(pid)` runs (by default: kill the whole group). On
    Ctrl-C or SIGTERM the whole group is killed; so is anything the command left running
    when it exits. `watch(pid)`, if given, is a context manager held while the child runs.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    killer = threading.Timer(timeout, on_timeout, args=(process.pid,))
    killer.start()
    reaped = False
    try:
        with watch(process.pid) if watch is not None else contextlib.nullcontext():
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            reaped = True
    finally:
        killer.cancel()
        kill_group(process.pid)  # leftovers, or everything when interrupted
        if not reaped:
            process.wait(CHILD_STOP_SECONDS)
    process.returncode = code = os.waitstatus_to_exitcode(status)
    return code, wall, usage


def tail(path: Path, lines: int = 15) -> str:
    """The last `lines` lines of a log file, or `(no output)`."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


# ---------------------------------------------------------------------------- GNU time


def ensure_gnu_time() -> None:
    """BenchmarkError unless GNU_TIME is GNU time (the scripts need its -f %M)."""
    try:
        version = subprocess.run(
            [GNU_TIME, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        raise BenchmarkError(f"{GNU_TIME} is missing: install the Debian package `time`") from None
    if "GNU" not in version.stdout + version.stderr:
        raise BenchmarkError(f"{GNU_TIME} is not GNU time (needed for -f %M)")


def gnu_time(rss_path: Path, command: Sequence[str]) -> list[str]:
    """`command` under GNU time, which writes the command's peak RSS (KiB) to `rss_path`."""
    return [GNU_TIME, "-q", "-f", "%M", "-o", str(rss_path), *command]


def gnu_time_peak_bytes(rss_path: Path) -> int:
    """The peak RSS GNU time wrote; OSError, ValueError or IndexError when it wrote none."""
    return int(rss_path.read_text().split()[-1]) * 1024


# ---------------------------------------------------------------------------- /proc


def proc_status_bytes(pid: int | str, key: str) -> int:
    """A size from /proc/PID/status (`VmHWM`, `VmRSS`, ...) in bytes; pid may be "self"."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    raise BenchmarkError(f"no {key} in /proc/{pid}/status")


def vm_hwm_bytes(pid: int | str = "self") -> int:
    """Peak resident set size so far of a running process (VmHWM), by default this one."""
    return proc_status_bytes(pid, "VmHWM")


def cpu_seconds(pid: int) -> float:
    """User + system time so far of a running process (/proc/PID/stat)."""
    # fields after the ")" that ends the command name: utime and stime are the 12th and 13th
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# ---------------------------------------------------------------------------- the machine


def raise_fd_limit(wanted: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit to `wanted` (at most the hard limit); children inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    # imported here: the scripts that are their own workers measure their memory after imports
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_debian_command(
    command: str, package: str, *, update_first: bool = True, quiet: bool = False
) -> str:
    """`command`'s path; installs the Debian `package` when it is missing (needs root).

    update_first: `apt-get update` before the install; otherwise only when the install
    fails. quiet: apt-get's -qq.
    """
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchmarkError(f"{command} is not installed and we are not root to install it")
    print(f"installing the Debian package {package} ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    flags = ["-qq"] if quiet else []
    update = ["apt-get", "update", *flags]
    install = ["apt-get", "install", "-y", *flags, package]
    try:
        installed = (  # without update_first, the install alone is tried first
            not update_first
            and subprocess.run(install, check=False, timeout=900, env=env).returncode == 0
        )
        if not installed:
            subprocess.run(update, check=True, timeout=600, env=env)
            subprocess.run(install, check=True, timeout=900, env=env)
    except (OSError, subprocess.SubprocessError) as error:
        raise BenchmarkError(f"could not install {package}: {error}") from None
    found = shutil.which(command)
    if not found:
        raise BenchmarkError(f"{command} is still not on PATH after apt-get install")
    return found


def apivigil_command() -> Path:
    """The `apivigil` entry point next to this interpreter (the project's venv)."""
    for candidate in (
        Path(sys.executable).parent / "apivigil",
        ROOT / ".venv" / "bin" / "apivigil",
    ):
        if candidate.exists():
            return candidate
    raise BenchmarkError("apivigil is not installed next to this Python; use the project venv")


# ---------------------------------------------------------------------------- sizes


def tree_bytes(path: Path) -> int:
    """The size of a file, or of every file below a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mib(size: float) -> str:
    """Bytes as `12.3 MiB`."""
    return f"{size / 2**20:.1f} MiB"
