"""apivigil's implementations of some sslyze scan commands, put in sslyze's registry.

- cipher suites and elliptic curves by elimination (checks/tls_posture/elimination.py);
- certificate_info: when the handshakes that send SNI all failed and one of them timed out,
  sslyze raises ValueError("Should never happen"), reported as a bug in sslyze, which nobody
  retries; here the timeout itself is raised, so the command is a connectivity issue, retried
  one connection at a time like every other timeout.
- session_renegotiation: sslyze reads a timeout during a client-initiated renegotiation as a
  refusal (Netty's way), so a busy server that accepts them was sometimes "refusing": a slow
  single-threaded server lost its cap between scans, even when asked again with twice the
  timeout. Here that timeout is raised as a handshake timeout, a connectivity issue retried
  one connection at a time like every other; one that stays leaves the command undetermined
  (the grade provisional), never a refusal. A refusal by alert or closed connection still
  counts at once. Secure renegotiation (RFC 5746) is another job of the same command, on a
  connection of its own: what it found stands (`ClientRenegotiationUndetermined`) when only
  the client renegotiation timed out, so a server without it keeps its F cap.

The registry is sslyze's module-level dict: `install()` applies to every Scanner of the process.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from nassl.legacy_ssl_client import LegacySslClient
from sslyze import ScanCommand
from sslyze.connection_helpers.tls_connection import SslConnection
from sslyze.errors import TlsHandshakeTimedOut
from sslyze.plugins import scan_commands
from sslyze.plugins.certificate_info.implementation import CertificateInfoImplementation
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.session_renegotiation_plugin import (
    SessionRenegotiationImplementation,
    SessionRenegotiationScanResult,
    _ScanJobResultEnum,
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


class ClientRenegotiationTimeoutIsConnectivity(SessionRenegotiationImplementation):
    @classmethod
    def scan_jobs_for_scan_command(
        cls, server_info: ServerConnectivityInfo, extra_arguments: Any = None
    ) -> list[ScanJob]:
        return [
            ScanJob(
                function_to_call=client_renegotiation_timeout_raised,
                function_arguments=job.function_arguments,
            )
            if job.function_to_call is _test_client_renegotiation
            else job
            for job in super().scan_jobs_for_scan_command(server_info, extra_arguments)
        ]

    @classmethod
    def result_for_completed_scan_jobs(
        cls, server_info: ServerConnectivityInfo, scan_job_results: list[ScanJobResult]
    ) -> Any:
        try:
            return super().result_for_completed_scan_jobs(server_info, scan_job_results)
        except TlsHandshakeTimedOut as timeout:
            secure = _secure_renegotiation(scan_job_results)
            if secure is None:
                raise  # nothing determined: a connectivity issue, retried
            return ClientRenegotiationUndetermined(
                supports_secure_renegotiation=secure,
                is_vulnerable_to_client_renegotiation_dos=False,
                client_renegotiations_success_count=0,
                why=str(timeout),
            )


@dataclass(frozen=True)
class ClientRenegotiationUndetermined(SessionRenegotiationScanResult):
    """The command's result when client-initiated renegotiation timed out and secure
    renegotiation was determined: `supports_secure_renegotiation` stands; the client
    renegotiation fields are placeholders, not answers (`why` says what timed out)."""

    why: str = ""


def _secure_renegotiation(results: list[ScanJobResult]) -> bool | None:
    for result in results:
        try:
            kind, value = result.get_result()
        except Exception:  # noqa: S112 - the job that timed out: its answer is unknown
            continue
        if kind is _ScanJobResultEnum.SUPPORTS_SECURE_RENEG:
            return bool(value)
    return None


def client_renegotiation_timeout_raised(server_info: ServerConnectivityInfo, attempts: int) -> Any:
    """sslyze's client renegotiation test, except that a renegotiation the server did not
    answer within the network timeout raises TlsHandshakeTimedOut (sslyze reads it as a
    refusal)."""
    raising = _RenegotiationTimeoutRaised(
        server_location=server_info.server_location,
        network_configuration=server_info.network_configuration,
        tls_probing_result=server_info.tls_probing_result,
    )
    return _test_client_renegotiation(raising, attempts)


@dataclass(frozen=True)
class _RenegotiationTimeoutRaised(ServerConnectivityInfo):
    """Connections whose renegotiations raise TlsHandshakeTimedOut on a timeout."""

    def get_preconfigured_tls_connection(self, *args: Any, **kwargs: Any) -> SslConnection:
        connection = super().get_preconfigured_tls_connection(*args, **kwargs)
        client = connection.ssl_client
        if isinstance(client, LegacySslClient):  # the only client that renegotiates
            renegotiate = client.do_renegotiate

            def renegotiate_or_raise() -> None:
                try:
                    renegotiate()
                except TimeoutError as timeout:
                    raise TlsHandshakeTimedOut(
                        server_location=self.server_location,
                        network_configuration=self.network_configuration,
                        error_message="client-initiated renegotiation: no answer within "
                        f"{self.network_configuration.network_timeout}s",
                    ) from timeout

            setattr(client, "do_renegotiate", renegotiate_or_raise)  # noqa: B010
        return connection


_OURS: dict[ScanCommand, type] = {
    **BY_ELIMINATION,
    ScanCommand.CERTIFICATE_INFO: CertificateInfoTimeoutIsConnectivity,
    ScanCommand.SESSION_RENEGOTIATION: ClientRenegotiationTimeoutIsConnectivity,
}
_lock = threading.Lock()


def install() -> None:
    with _lock:
        scan_commands._IMPLEMENTATION_CLASSES.update(_OURS)
