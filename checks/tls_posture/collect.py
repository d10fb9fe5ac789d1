"""I/O of tls_posture: an sslyze scan (one Scanner per server, capped) turned into plain facts.

sslyze objects are built here, inside the run, so a DNS failure is an `unreachable` run,
not a crash at config load. A handshake or connection timeout is "could not determine",
never "not supported". When sslyze cannot connect at all because the server only offers
what modern OpenSSL refuses (NULL ciphers, DH < 1024), a bare handshake probe says what
the server does accept.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.utils import CryptographyDeprecationWarning
from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandErrorReasonEnum,
    ScanCommandsExtraArguments,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)
from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    ServerNotCompliantWithTlsConfiguration,
    ServerScanResultIncomplete,
    TlsConfigurationEnum,
    check_server_against_tls_configuration,
)

from checks.files import read_input_file
from checks.interface import BadInput, CheckContext, CheckMisconfigured, TargetUnreachable
from checks.network import is_ip_literal, resolve
from checks.tls_posture import registry
from checks.tls_posture.facts import ChainFacts, ProtocolSupport, TlsPostureRaw, TlsVersion
from checks.tls_posture.params import TlsPostureParams
from checks.tls_posture.probe import dh_too_small, no_answer, probe_handshakes
from checks.tls_posture.server_scan import (
    NoHandshake,
    NoScanSlot,
    ScanLimits,
    ScanStopped,
    scan_server,
)
from checks.tls_posture.translate import (
    chain_facts,
    curves,
    hsts_max_age,
    protocol_support,
    robot_status,
)
from monitor.durations import format_duration
from monitor.model import CheckKind, Target
from monitor.text import without_collection_reprs

PROTOCOL_COMMANDS = {
    TlsVersion.SSL_2_0: ScanCommand.SSL_2_0_CIPHER_SUITES,
    TlsVersion.SSL_3_0: ScanCommand.SSL_3_0_CIPHER_SUITES,
    TlsVersion.TLS_1_0: ScanCommand.TLS_1_0_CIPHER_SUITES,
    TlsVersion.TLS_1_1: ScanCommand.TLS_1_1_CIPHER_SUITES,
    TlsVersion.TLS_1_2: ScanCommand.TLS_1_2_CIPHER_SUITES,
    TlsVersion.TLS_1_3: ScanCommand.TLS_1_3_CIPHER_SUITES,
}
OTHER_COMMANDS = {
    ScanCommand.CERTIFICATE_INFO,
    ScanCommand.TLS_COMPRESSION,
    ScanCommand.TLS_1_3_EARLY_DATA,
    ScanCommand.OPENSSL_CCS_INJECTION,
    ScanCommand.TLS_FALLBACK_SCSV,
    ScanCommand.HEARTBLEED,
    ScanCommand.ROBOT,
    ScanCommand.SESSION_RENEGOTIATION,
    ScanCommand.ELLIPTIC_CURVES,
    ScanCommand.TLS_EXTENDED_MASTER_SECRET,
}
# sslyze's connectivity test takes one or two handshakes with a server that answers; against
# a tarpit it tries eleven, each until the network timeout
# sslyze's bundled trust stores hold a root with a negative serial number: cryptography warns
# on every load, on the user's terminal, about nothing they can act on
warnings.filterwarnings(
    "ignore",
    message="Parsed a serial number which wasn't positive",
    category=CryptographyDeprecationWarning,
)
_MAX_TRUST_STORE_BYTES = 16 * 1024 * 1024  # a system bundle is ~200 KiB
_CONNECTIVITY_TIMEOUTS = 3
_UNREACHABLE_ERRORS = {
    "ConnectionToServerTimedOut",
    "ServerRejectedConnection",
    "TlsHandshakeTimedOut",
}


def collect(target: Target, params: TlsPostureParams, context: CheckContext) -> TlsPostureRaw:
    endpoint = target.endpoint
    if endpoint is None:
        raise CheckMisconfigured("tls_posture needs a target url (https://host[:port])")
    if params.trust_store is not None and not params.trust_store.is_file():
        raise CheckMisconfigured(f"trust_store {params.trust_store} is not a readable file")
    server_name = params.server_name or endpoint.host
    address = params.address or resolve(endpoint, context)[0]
    commands = set(PROTOCOL_COMMANDS.values()) | OTHER_COMMANDS
    if params.check_http_headers:
        commands.add(ScanCommand.HTTP_HEADERS)
    request = ServerScanRequest(
        server_location=ServerNetworkLocation(
            hostname=server_name, port=endpoint.port, ip_address=address
        ),
        network_configuration=ServerNetworkConfiguration(
            tls_server_name_indication=server_name if not is_ip_literal(server_name) else address,
            network_timeout=max(1, round(params.network_timeout.total_seconds())),
            network_max_retries=params.network_retries,
        ),
        scan_commands=commands,
        scan_commands_extra_arguments=ScanCommandsExtraArguments(
            certificate_info=CertificateInfoExtraArgument(custom_ca_file=params.trust_store)
            if params.trust_store
            else None
        ),
    )
    where = str(endpoint) if endpoint.host == address else f"{endpoint} ({address})"
    cap, bound = _scan_cap(params, context)
    registry.install()
    connectivity_cap = _CONNECTIVITY_TIMEOUTS * params.network_timeout.total_seconds()
    limits = ScanLimits(
        params.per_server_connections, params.servers_at_once, cap, connectivity_cap
    )
    ends_at = time.monotonic() + cap
    try:
        result = scan_server(request, limits)
    except NoHandshake:
        message = (
            f"no TLS handshake completed within {connectivity_cap:g}s "
            f"({_CONNECTIVITY_TIMEOUTS} x network_timeout)"
        )
        raise TargetUnreachable(message, subject=where) from None
    except ScanStopped:
        message = f"the TLS scan did not finish within {bound}"
        raise TargetUnreachable(message, subject=where) from None
    except NoScanSlot as busy:
        raise TargetUnreachable(
            f"the TLS scan could not start within {bound}: {busy} (servers_at_once)",
            subject=where,
        ) from None
    if result.scan_status is ServerScanStatusEnum.COMPLETED:
        result = _retry_undetermined(request, result, limits, ends_at)
    if result.scan_status is not ServerScanStatusEnum.COMPLETED:
        return _without_connectivity(
            result,
            str(endpoint),
            server_name,
            address,
            where,
            context,
            params.network_timeout.total_seconds(),
        )
    facts = translate_scan(result, str(endpoint), server_name, address, params)
    history = context.history
    previous = history.latest_snapshot(CheckKind.TLS_POSTURE, target.name) if history else None
    if previous is None:
        return facts
    last_complete = previous.get("last_complete_grade")
    certificates = previous.get("certificates")
    return replace(
        facts,
        last_complete_grade=last_complete if isinstance(last_complete, dict) else None,
        extra={
            **facts.extra,
            "previous_certificates": certificates if isinstance(certificates, list) else [],
        },
    )


def _undetermined_commands(result: ServerScanResult) -> set[ScanCommand]:
    """Commands that failed to connect, protocols whose every answer was a timeout, and a
    client renegotiation that timed out."""
    scan = result.scan_result
    assert scan is not None
    commands = set()
    for command in {*PROTOCOL_COMMANDS.values(), *OTHER_COMMANDS, ScanCommand.HTTP_HEADERS}:
        outcome = getattr(scan, command.value)
        if (
            outcome.status is ScanCommandAttemptStatusEnum.ERROR
            and outcome.error_reason is ScanCommandErrorReasonEnum.CONNECTIVITY_ISSUE
        ):
            commands.add(command)
    for protocol, command in PROTOCOL_COMMANDS.items():
        outcome = getattr(scan, command.value)
        if outcome.status is ScanCommandAttemptStatusEnum.COMPLETED:
            support = protocol_support(protocol, outcome.result)
            if support.supported is None:
                commands.add(command)
    renegotiation = scan.session_renegotiation
    if isinstance(renegotiation.result, registry.ClientRenegotiationUndetermined):
        commands.add(ScanCommand.SESSION_RENEGOTIATION)  # its client renegotiation timed out
    return commands


def _retry_undetermined(
    request: ServerScanRequest, result: ServerScanResult, limits: ScanLimits, ends_at: float
) -> ServerScanResult:
    """Ask again, one connection at a time with twice the timeout, what timed out or failed
    to connect, within what is left of the cap; keep every answer the retry got."""
    commands = _undetermined_commands(result) & set(request.scan_commands)
    left = ends_at - time.monotonic()
    if not commands or left < 2:
        return result
    network = request.network_configuration
    retry = replace(
        request,
        scan_commands=commands,
        scan_commands_extra_arguments=(
            request.scan_commands_extra_arguments
            if ScanCommand.CERTIFICATE_INFO in commands
            else ScanCommandsExtraArguments()
        ),
        network_configuration=replace(
            network, network_timeout=min(network.network_timeout * 2, max(1, int(left / 2)))
        ),
    )
    try:
        again = scan_server(
            retry, replace(limits, per_server_connections=1, cap=left, connectivity_cap=left)
        )
    except (ScanStopped, NoScanSlot):
        return result
    if again.scan_status is not ServerScanStatusEnum.COMPLETED or again.scan_result is None:
        return result
    assert result.scan_result is not None
    answered = {
        command.value: getattr(again.scan_result, command.value)
        for command in commands
        if getattr(again.scan_result, command.value).status
        is ScanCommandAttemptStatusEnum.COMPLETED
    }
    return replace(result, scan_result=replace(result.scan_result, **answered))


def _scan_cap(params: TlsPostureParams, context: CheckContext) -> tuple[float, str]:
    """Seconds the scan may take, and what sets that bound: scan_timeout or the run's
    deadline (less a margin, so that the scan is stopped and reported before the runner
    gives up on the run)."""
    remaining = context.remaining()
    left = remaining - min(1.0, remaining / 5)
    if params.scan_timeout.total_seconds() <= left:
        return params.scan_timeout.total_seconds(), (
            f"scan_timeout {format_duration(params.scan_timeout)}"
        )
    if left <= 0:
        raise TargetUnreachable("the run's deadline passed before the TLS scan could start")
    return left, "the run's timeout"


def translate_scan(
    result: ServerScanResult,
    endpoint: str,
    server_name: str,
    address: str,
    params: TlsPostureParams,
) -> TlsPostureRaw:
    """Plain facts from a completed sslyze scan (pure apart from reading sslyze objects)."""
    scan = result.scan_result
    assert scan is not None
    incomplete: list[str] = []

    def attempt(command: ScanCommand) -> Any:
        outcome = getattr(scan, command.value)
        if outcome.status is ScanCommandAttemptStatusEnum.COMPLETED:
            return outcome.result
        if outcome.status is ScanCommandAttemptStatusEnum.ERROR:
            reason = outcome.error_reason.value if outcome.error_reason else "error"
            incomplete.append(f"{command.value}: {reason}")
        return None

    protocols = []
    for protocol, command in PROTOCOL_COMMANDS.items():
        support = protocol_support(protocol, attempt(command))
        if support.supported is None and support.error and not support.error.startswith("scan"):
            incomplete.append(f"{protocol}: {support.error}")
        protocols.append(support)
    certificate_result = attempt(ScanCommand.CERTIFICATE_INFO)
    compression = attempt(ScanCommand.TLS_COMPRESSION)
    early = attempt(ScanCommand.TLS_1_3_EARLY_DATA)
    ccs = attempt(ScanCommand.OPENSSL_CCS_INJECTION)
    scsv = attempt(ScanCommand.TLS_FALLBACK_SCSV)
    heartbleed = attempt(ScanCommand.HEARTBLEED)
    robot = attempt(ScanCommand.ROBOT)
    renegotiation = attempt(ScanCommand.SESSION_RENEGOTIATION)
    client_renegotiation = (
        renegotiation.is_vulnerable_to_client_renegotiation_dos if renegotiation else None
    )
    if isinstance(renegotiation, registry.ClientRenegotiationUndetermined):
        client_renegotiation = None  # secure renegotiation was determined; this was not
        incomplete.append(f"session_renegotiation: client renegotiation: {renegotiation.why}")
    elliptic = attempt(ScanCommand.ELLIPTIC_CURVES)
    ems = attempt(ScanCommand.TLS_EXTENDED_MASTER_SECRET)
    headers = attempt(ScanCommand.HTTP_HEADERS) if params.check_http_headers else None
    hsts_checked = headers is not None and headers.http_error_trace is None
    if params.check_http_headers and not hsts_checked and headers is not None:
        incomplete.append("http_headers: the HTTP request failed")
    deviations = _mozilla_deviations(result, params, incomplete)
    certificate = chain_facts(certificate_result, server_name, params.trust_store)
    if certificate is not None and certificate.trusted is None:
        certificate = _self_signed_verdict(certificate, certificate_result)
    if certificate is not None and certificate.trusted is None and certificate.chain:
        why = certificate.validation_error or "no validation result"
        incomplete.append(f"certificate trust: not determined ({why})")
    return TlsPostureRaw(
        endpoint=endpoint,
        server_name=server_name,
        address=address,
        protocols=tuple(protocols),
        certificate=certificate,
        compression=compression.supports_compression if compression else None,
        secure_renegotiation=renegotiation.supports_secure_renegotiation if renegotiation else None,
        client_renegotiation=client_renegotiation,
        fallback_scsv=scsv.supports_fallback_scsv if scsv else None,
        heartbleed=heartbleed.is_vulnerable_to_heartbleed if heartbleed else None,
        robot=robot_status(robot),
        ccs_injection=ccs.is_vulnerable_to_ccs_injection if ccs else None,
        early_data=early.supports_early_data if early else None,
        extended_master_secret=ems.supports_ems_extension if ems else None,
        curves=curves(elliptic),
        hsts_max_age=hsts_max_age(headers) if hsts_checked else None,
        hsts_checked=hsts_checked,
        mozilla_profile=params.profile.value,
        mozilla_deviations=deviations,
        incomplete=tuple(incomplete),
    )


def _self_signed_verdict(certificate: ChainFacts, result: Any) -> ChainFacts:
    """A self-signed leaf is trusted only as a trust anchor itself: when the validator stopped
    at the name, it is untrusted unless one of the trust stores in use holds it."""
    leaf = certificate.chain[0] if certificate.chain else None
    if leaf is None or not leaf.self_signed:
        return certificate
    anchors: set[str] = set()
    for validation in result.certificate_deployments[0].path_validation_results:
        try:
            pem = read_input_file(Path(validation.trust_store.path), _MAX_TRUST_STORE_BYTES)
            anchors |= {
                c.fingerprint(hashes.SHA256()).hex() for c in x509.load_pem_x509_certificates(pem)
            }
        except (BadInput, ValueError):
            return certificate  # a store that cannot be read: the verdict stays unknown
    return certificate if leaf.sha256 in anchors else replace(certificate, trusted=False)


def _mozilla_deviations(
    result: ServerScanResult, params: TlsPostureParams, incomplete: list[str]
) -> tuple[str, ...] | None:
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum(params.profile.value))
    try:
        check_server_against_tls_configuration(result, profile)
    except ServerNotCompliantWithTlsConfiguration as deviation:
        # sslyze writes Python set reprs into its messages: {'TLSv1', 'TLSv1.1'}
        return tuple(
            f"{key}: {without_collection_reprs(value)}"
            for key, value in sorted(deviation.issues.items())
        )
    except ServerScanResultIncomplete as missing:
        incomplete.append(f"mozilla profile: {missing}")
        return None
    except Exception as error:
        incomplete.append(f"mozilla profile: checker failed ({type(error).__name__}: {error})")
        return None
    return ()


def _without_connectivity(
    result: ServerScanResult,
    endpoint: str,
    server_name: str,
    address: str,
    where: str,
    context: CheckContext,
    network_timeout: float,
) -> TlsPostureRaw:
    trace = result.connectivity_error_trace
    kind = trace.exc_type.__name__ if trace is not None and trace.exc_type else "unknown"
    message = _sslyze_message(str(trace)) if trace is not None else "no details"
    if kind in _UNREACHABLE_ERRORS:
        raise TargetUnreachable(message, subject=where)
    probe = probe_handshakes(
        address, int(endpoint.rsplit(":", 1)[1]), server_name, context, network_timeout
    )
    if not probe.accepted and not any(dh_too_small(r) for r in probe.refusals):
        if all(no_answer(r) for r in probe.refusals):
            raise TargetUnreachable(f"no TLS handshake completed ({message})", subject=where)
        details = "; ".join(probe.refusals[:3])
        raise BadInput(f"not a usable TLS server ({message}): {details}", subject=where)
    return TlsPostureRaw(
        endpoint=endpoint,
        server_name=server_name,
        address=address,
        protocols=tuple(
            ProtocolSupport(protocol, True if suites else None, suites=suites)
            for protocol, suites in probe.accepted.items()
        ),
        fallback_probe=True,
        incomplete=(f"sslyze could not connect: {message}", *probe.refusals),
        extra={"probe_refusals": list(probe.refusals)},
    )


def _sslyze_message(text: str) -> str:
    """sslyze says 'host:port -> "What happened".'; keep what happened."""
    message = text.strip().splitlines()[-1] if text.strip() else "no details"
    if "-> " in message:
        message = message.split("-> ", 1)[1]
    return message.strip().rstrip(".").strip('"')
