"""Accepted cipher suites and elliptic curves by elimination.

sslyze's cipher suite commands test each suite its OpenSSL builds know with a handshake of its
own: 7 for SSL 2.0, 121 each for SSL 3.0, TLS 1.0 and TLS 1.1, 158 for TLS 1.2 and 5 for TLS
1.3, about 530 handshakes per server, most of them refused, whatever the server supports. They
were three quarters of a scan's time. Elimination offers every suite at once, notes the one the
server picks, and offers the rest again until the server refuses: one handshake per accepted
suite plus one, per OpenSSL build. A server picks among what is offered, so what is found is
the same set; each accepted suite keeps the ephemeral key of a handshake that chose it, as
sslyze's does. SSL 2.0 is only asked once with every suite: refused, it is not offered;
accepted, its 7 suites are tested one by one as sslyze does.

Where the answer is ambiguous the suites left are tested one by one as sslyze does (the server
picked a suite that was not offered, or a handshake failed after the ServerHello and the
chosen suite cannot be read). A handshake that times out is tried once more; a timeout on the
first offer then counts as sslyze counts it (every suite "timed out": could not determine), a
timeout after suites were found fails the command, so it is retried and, failing that, the
scan says it is incomplete instead of missing the suites not yet found.

Curves go the same way: sslyze offers each of its 30 curves in a handshake of its own; here
every curve left is offered, the one in the server's key exchange is noted and dropped, until
the server refuses. A timeout (twice) fails the command rather than reading as "rejected".

The results are sslyze's own result classes, so everything downstream (facts, the Mozilla
profile check, retries) reads them unchanged; checks/tls_posture/registry.py puts these
implementations in sslyze's registry of scan commands.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, ClassVar

from nassl._nassl import OpenSSLError
from nassl.ephemeral_key_info import (
    _OPENSSL_NID_TO_SECG_ANSI_X9_62,
    EcDhEphemeralKeyInfo,
    OpenSslEcNidEnum,
)
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import (
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)
from sslyze import ScanCommand
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.elliptic_curves_plugin import (
    EllipticCurve,
    SupportedEllipticCurvesImplementation,
    SupportedEllipticCurvesScanResult,
    _test_curve,
)
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
    CipherSuiteAcceptedByServer,
    CipherSuiteRejectedByServer,
    _set_cipher_suite_string,
    connect_with_cipher_suite,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.plugins.openssl_cipher_suites.implementation import (
    CipherSuitesScanResult,
    Sslv20ScanImplementation,
    Sslv30ScanImplementation,
    Tlsv10ScanImplementation,
    Tlsv11ScanImplementation,
    Tlsv12ScanImplementation,
    Tlsv13ScanImplementation,
)
from sslyze.plugins.plugin_base import ScanCommandWrongUsageError, ScanJob, ScanJobResult
from sslyze.server_connectivity import (
    ServerConnectivityInfo,
    TlsVersionEnum,
    enable_ecdh_cipher_suites,
)

Outcome = CipherSuiteAcceptedByServer | CipherSuiteRejectedByServer
_TIMEOUT_ATTEMPTS = 2  # a handshake that timed out is tried once more before it counts


class EliminationIncomplete(TlsHandshakeTimedOut):
    """Handshakes timed out after some suites were found: the rest is not known.

    A TlsHandshakeTimedOut, so sslyze marks the command as a connectivity issue (retried).
    """


@functools.cache
def _legacy_tls12_names() -> frozenset[str]:
    """TLS 1.2 suites the legacy OpenSSL build offers (sslyze's rule: legacy when it can)."""
    client = LegacySslClient(
        ssl_version=OpenSslVersionEnum.TLSV1_2, ssl_verify=OpenSslVerifyEnum.NONE
    )
    client.set_cipher_list("ALL:COMPLEMENTOFALL")
    return frozenset(client.get_cipher_list())


def _groups(tls_version: TlsVersionEnum) -> list[tuple[bool, list[CipherSuite]]]:
    """The suites to test split by the OpenSSL build that offers them: (legacy?, suites)."""
    suites = sorted(
        CipherSuitesRepository.get_all_cipher_suites(tls_version), key=attrgetter("name")
    )
    if tls_version is TlsVersionEnum.TLS_1_3:
        return [(False, suites)]
    if tls_version is not TlsVersionEnum.TLS_1_2:
        return [(True, suites)]
    legacy_names = _legacy_tls12_names()
    legacy = [s for s in suites if s.openssl_name in legacy_names]
    modern = [s for s in suites if s.openssl_name not in legacy_names]
    return [(True, legacy), (False, modern)]


def eliminate(
    server_info: ServerConnectivityInfo,
    tls_version: TlsVersionEnum,
    legacy: bool,
    suites: Sequence[CipherSuite],
) -> list[Outcome]:
    """Offer every suite left; the one the server picks is accepted; again until it refuses."""
    left: dict[str, list[CipherSuite]] = {}
    for suite in suites:  # one OpenSSL name can stand for more than one IANA name
        left.setdefault(suite.openssl_name, []).append(suite)
    outcomes: list[Outcome] = []
    while left:
        try:
            chosen, key = _offer(server_info, tls_version, legacy, list(left))
        except ServerRejectedTlsHandshake as refusal:
            outcomes += _rejected(left, refusal.error_message)
            return outcomes
        except NoCiphersAvailableBugInSSlyze:
            return outcomes  # this build cannot offer the rest: sslyze skips such suites too
        except TlsHandshakeTimedOut as timeout:
            if outcomes:
                raise EliminationIncomplete(
                    server_location=server_info.server_location,
                    network_configuration=server_info.network_configuration,
                    error_message=f"{timeout.error_message} (after {len(outcomes)} suites found)",
                ) from None
            return _rejected(left, timeout.error_message)
        found = left.pop(chosen, None) if chosen is not None else None
        if found is None:  # not what was offered, or not readable: ask suite by suite
            remaining = [suite for group in left.values() for suite in group]
            return outcomes + _one_by_one(server_info, tls_version, remaining)
        outcomes += [CipherSuiteAcceptedByServer(cipher_suite=s, ephemeral_key=key) for s in found]
    return outcomes


def asked_once(
    server_info: ServerConnectivityInfo,
    tls_version: TlsVersionEnum,
    legacy: bool,
    suites: Sequence[CipherSuite],
) -> list[Outcome]:
    """Offer every suite once: refused, every suite is; otherwise one handshake per suite."""
    left = {suite.openssl_name: [suite] for suite in suites}
    try:
        _offer(server_info, tls_version, legacy, list(left))
    except ServerRejectedTlsHandshake as refusal:
        return _rejected(left, refusal.error_message)
    except TlsHandshakeTimedOut as timeout:
        return _rejected(left, timeout.error_message)
    except NoCiphersAvailableBugInSSlyze:
        return []
    return _one_by_one(server_info, tls_version, list(suites))


def _offer(
    server_info: ServerConnectivityInfo,
    tls_version: TlsVersionEnum,
    legacy: bool,
    names: list[str],
) -> tuple[str | None, Any]:
    """One handshake offering `names`: the OpenSSL name of the suite chosen (None when it
    cannot be read) and the ephemeral key."""
    for attempt in range(1, _TIMEOUT_ATTEMPTS + 1):
        connection = server_info.get_preconfigured_tls_connection(
            override_tls_version=tls_version, should_use_legacy_openssl=legacy
        )
        _set_cipher_suite_string(tls_version, ":".join(names), connection.ssl_client)
        try:
            connection.connect()
            return connection.ssl_client.get_current_cipher_name(), (
                connection.ssl_client.get_ephemeral_key()
            )
        except ClientCertificateRequested:
            # the ServerHello came: as sslyze, the suite counts as accepted
            return _chosen(connection.ssl_client), connection.ssl_client.get_ephemeral_key()
        except ServerTlsConfigurationNotSupported:
            # this client refused the server's DH group: the suite is accepted, its key unknown
            return _chosen(connection.ssl_client), None
        except TlsHandshakeTimedOut:
            if attempt == _TIMEOUT_ATTEMPTS:
                raise
        finally:
            connection.close()
    raise AssertionError("unreachable")  # pragma: no cover


def _chosen(client: Any) -> str | None:
    try:
        name = client.get_current_cipher_name()
    except Exception:  # nassl raises when no suite was negotiated
        return None
    return name if isinstance(name, str) and name else None


def _rejected(left: dict[str, list[CipherSuite]], message: str) -> list[Outcome]:
    return [
        CipherSuiteRejectedByServer(cipher_suite=suite, error_message=message)
        for group in left.values()
        for suite in group
    ]


def _one_by_one(
    server_info: ServerConnectivityInfo, tls_version: TlsVersionEnum, suites: list[CipherSuite]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for suite in suites:
        try:
            outcomes.append(connect_with_cipher_suite(server_info, tls_version, suite))
        except NoCiphersAvailableBugInSSlyze:
            continue  # as sslyze's own result builder does
    return outcomes


class _ByElimination:
    """The scan_jobs/result pair of a cipher suite command, by elimination."""

    _tls_version: ClassVar[TlsVersionEnum]

    @classmethod
    def scan_jobs_for_scan_command(
        cls, server_info: ServerConnectivityInfo, extra_arguments: Any = None
    ) -> list[ScanJob]:
        if extra_arguments:
            raise ScanCommandWrongUsageError("This plugin does not take extra arguments")
        once = cls._tls_version is TlsVersionEnum.SSL_2_0
        return [
            ScanJob(
                function_to_call=asked_once if once else eliminate,
                function_arguments=[server_info, cls._tls_version, legacy, suites],
            )
            for legacy, suites in _groups(cls._tls_version)
            if suites
        ]

    @classmethod
    def result_for_completed_scan_jobs(
        cls, server_info: ServerConnectivityInfo, scan_job_results: list[ScanJobResult]
    ) -> CipherSuitesScanResult:
        accepted: list[CipherSuiteAcceptedByServer] = []
        rejected: list[CipherSuiteRejectedByServer] = []
        for job in scan_job_results:
            for outcome in job.get_result():  # a job's exception fails the command, as in sslyze
                if isinstance(outcome, CipherSuiteAcceptedByServer):
                    accepted.append(outcome)
                else:
                    rejected.append(outcome)
        accepted.sort(key=attrgetter("cipher_suite.name"), reverse=True)
        rejected.sort(key=attrgetter("cipher_suite.name"), reverse=True)
        return CipherSuitesScanResult(
            tls_version_used=cls._tls_version,
            accepted_cipher_suites=accepted,
            rejected_cipher_suites=rejected,
        )


class Sslv20ByElimination(_ByElimination, Sslv20ScanImplementation):
    pass


class Sslv30ByElimination(_ByElimination, Sslv30ScanImplementation):
    pass


class Tlsv10ByElimination(_ByElimination, Tlsv10ScanImplementation):
    pass


class Tlsv11ByElimination(_ByElimination, Tlsv11ScanImplementation):
    pass


class Tlsv12ByElimination(_ByElimination, Tlsv12ScanImplementation):
    pass


class Tlsv13ByElimination(_ByElimination, Tlsv13ScanImplementation):
    pass


def eliminate_curves(
    server_info: ServerConnectivityInfo, nids: Sequence[OpenSslEcNidEnum]
) -> tuple[list[EllipticCurve], list[EllipticCurve]]:
    """(accepted, rejected) curves: offer every curve left, drop the one the server used."""
    left = list(nids)
    accepted: list[EllipticCurve] = []
    while left:
        try:
            used = _offer_curves(server_info, left)
        except ServerRejectedTlsHandshake:
            return accepted, [_curve(nid) for nid in left]
        except TlsHandshakeTimedOut as timeout:
            raise EliminationIncomplete(
                server_location=server_info.server_location,
                network_configuration=server_info.network_configuration,
                error_message=f"{timeout.error_message} (after {len(accepted)} curves found)",
            ) from None
        if used is None or used not in left:  # not readable, or not offered: curve by curve
            rejected: list[EllipticCurve] = []
            for nid in left:
                outcome = _test_curve(server_info, nid)
                (accepted if outcome.was_accepted_by_server else rejected).append(outcome.curve)
            return accepted, rejected
        left.remove(used)
        accepted.append(_curve(used))
    return accepted, []


def _offer_curves(
    server_info: ServerConnectivityInfo, nids: list[OpenSslEcNidEnum]
) -> OpenSslEcNidEnum | None:
    """The curve of one handshake offering `nids` (None: no EC key exchange to read)."""
    tls_version = server_info.tls_probing_result.highest_tls_version_supported
    for attempt in range(1, _TIMEOUT_ATTEMPTS + 1):
        connection = server_info.get_preconfigured_tls_connection(
            override_tls_version=tls_version, should_use_legacy_openssl=False
        )
        client = connection.ssl_client
        if not isinstance(client, SslClient):
            raise RuntimeError("asked sslyze for the modern OpenSSL client, got the legacy one")
        enable_ecdh_cipher_suites(tls_version, client)
        client.set_groups(nids)
        try:
            connection.connect()
            key = client.get_ephemeral_key()
        except ClientCertificateRequested:
            key = client.get_ephemeral_key()
        except OpenSSLError:
            return None  # e.g. "wrong curve": sslyze's per-curve test knows these answers
        except TlsHandshakeTimedOut:
            if attempt == _TIMEOUT_ATTEMPTS:
                raise
            continue
        finally:
            connection.close()
        if not isinstance(key, EcDhEphemeralKeyInfo):
            return None
        try:
            return OpenSslEcNidEnum(key.curve)  # nassl gives the NID as an int
        except ValueError:
            return None
    raise AssertionError("unreachable")  # pragma: no cover


def _curve(nid: OpenSslEcNidEnum) -> EllipticCurve:
    name = _OPENSSL_NID_TO_SECG_ANSI_X9_62.get(nid, f"unknown-curve-with-openssl-id-{nid.value}")
    return EllipticCurve(name=name, openssl_nid=nid.value)


class CurvesByElimination(SupportedEllipticCurvesImplementation):
    @classmethod
    def scan_jobs_for_scan_command(
        cls, server_info: ServerConnectivityInfo, extra_arguments: Any = None
    ) -> list[ScanJob]:
        if extra_arguments or not server_info.tls_probing_result.supports_ecdh_key_exchange:
            return super().scan_jobs_for_scan_command(server_info, extra_arguments)
        nids = OpenSslEcNidEnum.get_supported_by_ssl_client()
        return [ScanJob(function_to_call=eliminate_curves, function_arguments=[server_info, nids])]

    @classmethod
    def result_for_completed_scan_jobs(
        cls, server_info: ServerConnectivityInfo, scan_job_results: list[ScanJobResult]
    ) -> SupportedEllipticCurvesScanResult:
        if not server_info.tls_probing_result.supports_ecdh_key_exchange:
            return super().result_for_completed_scan_jobs(server_info, scan_job_results)
        (job,) = scan_job_results
        accepted, rejected = job.get_result()
        return SupportedEllipticCurvesScanResult(
            supports_ecdh_key_exchange=True, supported_curves=accepted, rejected_curves=rejected
        )


BY_ELIMINATION: dict[ScanCommand, type] = {
    ScanCommand.SSL_2_0_CIPHER_SUITES: Sslv20ByElimination,
    ScanCommand.SSL_3_0_CIPHER_SUITES: Sslv30ByElimination,
    ScanCommand.TLS_1_0_CIPHER_SUITES: Tlsv10ByElimination,
    ScanCommand.TLS_1_1_CIPHER_SUITES: Tlsv11ByElimination,
    ScanCommand.TLS_1_2_CIPHER_SUITES: Tlsv12ByElimination,
    ScanCommand.TLS_1_3_CIPHER_SUITES: Tlsv13ByElimination,
    ScanCommand.ELLIPTIC_CURVES: CurvesByElimination,
}
