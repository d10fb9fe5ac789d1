"""Run a long-lived service until SIGTERM or SIGINT; SIGHUP asks it to reload."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

from monitor.settings import ConfigError, Settings, load_settings

log = structlog.get_logger("apivigil")


def serve_until_signalled(
    start: Callable[[], None],
    stop: Callable[[], None],
    reload: Callable[[], object],
    stopping: threading.Event,
) -> None:
    """start(), then wait; SIGHUP calls reload() on this thread, SIGTERM/SIGINT end the wait
    and stop() runs whatever happened. Must be called from the main thread."""
    reload_wanted = threading.Event()

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal received; draining", signal=signal.Signals(signum).name)
        stopping.set()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        reload_wanted.set()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    start()
    try:
        while not stopping.wait(0.5):
            if reload_wanted.is_set():
                reload_wanted.clear()
                try:
                    reload()
                except Exception:  # e.g. the store is down: the running configuration stays
                    log.exception("reload failed; the running configuration stays")
    finally:
        stop()


def settings_for_reload(path: Path | None, service_log: structlog.BoundLogger) -> Settings | None:
    """The config file read again for SIGHUP, or None (logged on `service_log`, naming every
    problem) when it is invalid and the running config must stay."""
    try:
        return load_settings(path)
    except ConfigError as error:
        service_log.error(
            "config reload rejected; keeping the running config",
            config=error.source,
            problems=[str(problem) for problem in error.problems],
        )
        return None
