"""What the long-lived services (`apivigil run` and `apivigil worker`) share: run until
SIGTERM or SIGINT, SIGHUP asks for a reload, and one assembly of the HTTP API."""

from __future__ import annotations

import signal
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import structlog

from monitor.alerting_health import AlertingHealth
from monitor.api import ApiServer, Probes, create_app
from monitor.api_security import tls_context
from monitor.api_v1 import api_router
from monitor.clock import Clock
from monitor.metrics import Schedule, build_registry
from monitor.settings import ConfigError, Settings, load_settings
from monitor.store.interface import Store

log = structlog.get_logger("apivigil")


class DaemonError(Exception):
    """The daemon or a worker cannot start; the message says what to do."""


def serve_api(
    settings: Settings,
    store: Store,
    probes: Probes,
    *,
    address: tuple[str, int],
    clock: Clock,
    schedule: Schedule | None = None,
    alerting: AlertingHealth | None = None,
) -> ApiServer:
    """Serve /metrics, the probes and (with `api_tokens`) /api/v1 on `address`, as the
    settings say: HTTPS only when `api_tls` is set, the body-size limit, the rate limits,
    proxy headers only from `api_trusted_proxies`.
    Returns once the port is bound (a taken port fails the start before any scanning).

    Raises DaemonError when api_tls's files cannot be used, OSError when the server does
    not start.
    """
    tls = settings.api_tls
    try:
        context = None if tls is None else tls_context(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as error:
        raise DaemonError(f"api_tls: cannot use the certificate or key: {error}") from None
    app = create_app(
        build_registry(store, schedule, alerting),
        probes,
        settings.api_max_body_bytes,
        hsts=tls is not None,
    )
    if settings.api_tokens:
        app.include_router(api_router(store, settings.api_tokens, clock, settings.api_rate_limit))
    server = ApiServer(app, *address, context, settings.api_trusted_proxies)
    server.start()
    return server


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
