"""`apivigil worker`: run checks from the cluster's queue and write results to the store.

Dramatiq, Redis and the worker code are imported inside the command: other commands never
pay for them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from monitor.cli_common import ConfigOption, err, load
from monitor.logs import configure_logging
from monitor.scan import EXIT_USAGE


def worker(
    config: ConfigOption = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="checks at once [default: cluster.worker.threads]"),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(help="also serve /metrics, /healthz, /readyz and the API on HOST:PORT"),
    ] = None,
    migrate: Annotated[bool, typer.Option(help="apply pending schema migrations at start")] = False,
) -> None:
    """Run checks enqueued by the cluster's leader (needs `cluster.broker` and PostgreSQL).

    SIGTERM lets running checks finish within shutdown_grace; SIGHUP reloads the config.
    """
    from monitor.cluster.service import WorkerService
    from monitor.daemon import exit_leaving_library_threads, open_service_store
    from monitor.serving import DaemonError
    from monitor.store.interface import StoreError

    settings, path = load(config, required=True)
    configure_logging(settings.log_level, settings.log_format)
    if not settings.cluster.enabled:
        err.print("[red]apivigil worker needs a cluster:[/] set cluster.broker in the config")
        raise typer.Exit(EXIT_USAGE)
    address = _address(listen) if listen else None
    try:
        store = open_service_store(settings, migrate)
        WorkerService(settings, path, store, threads=threads, listen=address).serve_forever()
    except (DaemonError, StoreError, OSError) as error:
        err.print(f"[red]apivigil worker cannot start:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    exit_leaving_library_threads()


def _address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        err.print(f"[red]--listen {listen}:[/] use host:port, e.g. 127.0.0.1:9691")
        raise typer.Exit(EXIT_USAGE)
    return host.strip("[]"), int(port)
