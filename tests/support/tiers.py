"""Test tiers, enforced (a pytest plugin; tests/conftest.py loads it).

Every test has exactly one tier marker, or collection fails naming the test:

- `unit`: no sockets, no subprocesses; the whole tier runs in seconds (`pytest -m unit`).
  While a unit test runs, connecting or binding an internet socket, starting a subprocess or
  forking fails it: the call raises `UnitTierViolation` and, in case the code under test
  swallows that, the test fails afterwards all the same. AF_UNIX sockets stay allowed
  (asyncio's self-pipe is a socketpair), and threads that were already running when the test
  started (servers left by other tiers' session fixtures) are not the test's doing.
- `integration`: real local servers (TLS servers, nginx, PostgreSQL, HTTP fakes), and tests
  that use none but take seconds each (scale tests), which would slow the unit loop down.
- `e2e`: apivigil daemon processes, Prometheus, Alertmanager, the cluster.

A test that uses PostgreSQL (`postgres`) cannot be `unit`: libpq opens its sockets in C,
where the unit guard cannot see them.
"""

from __future__ import annotations

import _posixsubprocess
import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

TIERS = ("unit", "integration", "e2e")

DESCRIPTIONS = {
    "unit": "no sockets, no subprocesses; the tier runs in seconds (enforced while it runs)",
    "integration": "real local servers (TLS servers, nginx, PostgreSQL, HTTP fakes on 127.0.0.1),"
    " or seconds of work each",
    "e2e": "apivigil daemon processes, Prometheus, Alertmanager, the cluster",
}

_HOW_TO_MARK = (
    "give each test module `pytestmark = pytest.mark.unit` (or `.integration`, `.e2e`), "
    "or mark the classes or tests where a module mixes tiers ({})"
)

_violations = pytest.StashKey[list[str]]()


class UnitTierViolation(Exception):
    """A unit test reached for the network or for another process."""


def tier_problem(item: pytest.Item) -> str | None:
    """Why `item`'s tier markers are wrong, or None when it has exactly one tier."""
    tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
    if not tiers:
        return "has no tier marker"
    if len(tiers) > 1:
        return f"has {len(tiers)} tier markers ({', '.join(tiers)}); it needs exactly one"
    if tiers == ["unit"] and item.get_closest_marker("postgres") is not None:
        return "is marked unit but uses PostgreSQL (postgres): a real server makes it integration"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problems = [f"  {item.nodeid} {problem}" for item in items if (problem := tier_problem(item))]
    if problems:
        shown = problems[:50]
        if len(problems) > len(shown):
            shown.append(f"  ... and {len(problems) - len(shown)} more")
        raise pytest.UsageError(
            f"{len(problems)} test(s) without exactly one tier marker:\n"
            + "\n".join(shown)
            + "\n"
            + _HOW_TO_MARK.format("; ".join(f"{t}: {d}" for t, d in DESCRIPTIONS.items()))
        )


@contextlib.contextmanager
def _stay_in_process(item: pytest.Item) -> Iterator[None]:
    """While active, the item's sockets (but AF_UNIX) and processes raise UnitTierViolation."""
    violations = item.stash.setdefault(_violations, [])
    already_running = {t.ident for t in threading.enumerate()} - {threading.main_thread().ident}

    def refuse(what: str) -> None:
        if threading.get_ident() in already_running:
            return
        message = (
            f"unit test {item.nodeid} {what}: unit tests (and the fixtures they set up) open no "
            "sockets and start no processes; mark it integration (real local servers) or e2e "
            "(daemon processes, Prometheus, Alertmanager, cluster)"
        )
        violations.append(message)
        raise UnitTierViolation(message)

    with pytest.MonkeyPatch.context() as patch:

        def guard_socket(name: str) -> None:
            original: Callable[..., Any] = getattr(socket.socket, name)

            def guarded(self: socket.socket, address: Any, *args: Any) -> Any:
                if self.family != socket.AF_UNIX:
                    refuse(f"called socket.{name}({address!r})")
                return original(self, address, *args)

            patch.setattr(socket.socket, name, guarded)

        for name in ("connect", "connect_ex", "bind"):
            guard_socket(name)

        popen_init = subprocess.Popen.__init__

        def guarded_popen(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
            refuse(f"started a subprocess ({args!r})")
            popen_init(self, args, *rest, **kw)

        patch.setattr(subprocess.Popen, "__init__", guarded_popen)

        def guard_call(owner: object, name: str, what: str) -> None:
            original: Callable[..., Any] = getattr(owner, name)

            def guarded(*args: Any, **kw: Any) -> Any:
                refuse(what)
                return original(*args, **kw)

            patch.setattr(owner, name, guarded)

        guard_call(os, "fork", "forked (os.fork)")
        guard_call(os, "system", "ran a shell command (os.system)")
        guard_call(os, "posix_spawn", "spawned a process (os.posix_spawn)")
        guard_call(os, "posix_spawnp", "spawned a process (os.posix_spawnp)")
        guard_call(_posixsubprocess, "fork_exec", "spawned a process (fork_exec)")
        yield


# Setup is guarded too: a module- or session-scoped fixture that a unit test is the first to
# need is set up inside that test's setup. Teardown is not: it may finalise another tier's
# module fixture (stopping its servers).
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("unit") is None:
        return (yield)
    with _stay_in_process(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("unit") is None:
        return (yield)
    with _stay_in_process(item):
        result = yield
    violations = item.stash.get(_violations, [])
    if violations:
        pytest.fail("\n".join(dict.fromkeys(violations)), pytrace=False)
    return result
