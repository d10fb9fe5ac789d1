"""apivigil's implementations of some sslyze scan commands, put in sslyze's registry.

- cipher suites and elliptic curves by elimination (checks/tls_posture/elimination.py);
- certificate_info: when the handshakes that send SNI all failed and one of them timed out,
  sslyze raises ValueError("Should never happen"), reported as a bug in sslyze, which nobody
  retries; here the timeout itself is raised, so the command is a connectivity issue, retried
  one connection at a time like every other timeout.
- session_renegotiation: sslyze reads a timeout during a client-initiated renegotiation as a
  refusal (Netty's way), so a busy server that accepts them was sometimes "refusing" (a slow
  single-threaded server lost its cap between scans). A refusal that took the network timeout
  is asked once more on a new connection with twice the timeout; only a second refusal counts.
  A refusal by alert or closed connection counts at once.

The registry is sslyze's module-level dict: `install()` applies to every Scanner of the process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

from sslyze import ScanCommand
from sslyze.errors import TlsHandshakeTimedOut
from sslyze.plugins import scan_commands
from sslyze.plugins.certificate_info.implementation import CertificateInfoImplementation
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.session_renegotiation_plugin import (
    SessionRenegotiationImplementation,
    _test_client_renegotiation,
)
from sslyze.server_connectivity import ServerConnectivityInfo

from checks.tls_posture.elimination import BY_ELIMINATION


class CertificateInfoTimeoutIsConnectivity(CertificateInfoImplementation):
    @classmethod
    def result_for_completed_scan_jobs(
        cls, server_info: ServerConnectivityInfo, scan_job_results: list[ScanJobResult]
    ) -> Any:
        try:
            return super().result_for_completed_scan_jobs(server_info, scan_job_results)
        except ValueError as error:
            timeout = _first_timeout(scan_job_results)
            if timeout is None:
                raise
            raise timeout from error


def _first_timeout(results: list[ScanJobResult]) -> TlsHandshakeTimedOut | None:
    for result in results:
        try:
            result.get_result()
        except TlsHandshakeTimedOut as timeout:
            return timeout
        except Exception:  # noqa: S112 - another job's failure: sslyze's own handling stands
            continue
    return None


class ClientRenegotiationAskedTwice(SessionRenegotiationImplementation):
    @classmethod
    def scan_jobs_for_scan_command(
        cls, server_info: ServerConnectivityInfo, extra_arguments: Any = None
    ) -> list[ScanJob]:
        return [
            ScanJob(
                function_to_call=client_renegotiation_asked_twice,
                function_arguments=job.function_arguments,
            )
            if job.function_to_call is _test_client_renegotiation
            else job
            for job in super().scan_jobs_for_scan_command(server_info, extra_arguments)
        ]


def client_renegotiation_asked_twice(server_info: ServerConnectivityInfo, attempts: int) -> Any:
    """sslyze's client renegotiation test; a refusal that took the network timeout (sslyze
    reads a timeout as a refusal) is tested again with twice the timeout before it counts."""
    started = time.monotonic()
    first = _test_client_renegotiation(server_info, attempts)
    _, (accepted, _) = first
    network = server_info.network_configuration
    if accepted or time.monotonic() - started < network.network_timeout:
        return first  # accepted, or refused at once (an alert, a closed connection)
    patient = replace(
        server_info,
        network_configuration=replace(network, network_timeout=network.network_timeout * 2),
    )
    try:
        return _test_client_renegotiation(patient, attempts)
    except Exception:  # the second connection failed: the first answer stands
        return first


_OURS: dict[ScanCommand, type] = {
    **BY_ELIMINATION,
    ScanCommand.CERTIFICATE_INFO: CertificateInfoTimeoutIsConnectivity,
    ScanCommand.SESSION_RENEGOTIATION: ClientRenegotiationAskedTwice,
}
_lock = threading.Lock()


def install() -> None:
    with _lock:
        scan_commands._IMPLEMENTATION_CLASSES.update(_OURS)
