"""apivigil's implementations of some sslyze scan commands, put in sslyze's registry.

- cipher suites and elliptic curves by elimination (checks/tls_posture/elimination.py);
- certificate_info: when the handshakes that send SNI all failed and one of them timed out,
  sslyze raises ValueError("Should never happen"), reported as a bug in sslyze, which nobody
  retries; here the timeout itself is raised, so the command is a connectivity issue, retried
  one connection at a time like every other timeout.

The registry is sslyze's module-level dict: `install()` applies to every Scanner of the process.
"""

from __future__ import annotations

import threading
from typing import Any

from sslyze import ScanCommand
from sslyze.errors import TlsHandshakeTimedOut
from sslyze.plugins import scan_commands
from sslyze.plugins.certificate_info.implementation import CertificateInfoImplementation
from sslyze.plugins.plugin_base import ScanJobResult
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


_OURS: dict[ScanCommand, type] = {
    **BY_ELIMINATION,
    ScanCommand.CERTIFICATE_INFO: CertificateInfoTimeoutIsConnectivity,
}
_lock = threading.Lock()


def install() -> None:
    with _lock:
        scan_commands._IMPLEMENTATION_CLASSES.update(_OURS)
