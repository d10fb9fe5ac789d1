"""Cipher suites by elimination find what sslyze's one-handshake-per-suite finds, on real
servers, and a timeout never turns into a shorter list of suites."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import pytest
from nassl.ephemeral_key_info import OpenSslEcNidEnum
from sslyze import (
    ScanCommand,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)
from sslyze.errors import TlsHandshakeTimedOut
from sslyze.plugins import scan_commands
from sslyze.plugins.certificate_info.implementation import CertificateInfoImplementation
from sslyze.plugins.elliptic_curves_plugin import SupportedEllipticCurvesImplementation
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import (
    CipherSuiteAcceptedByServer,
    CipherSuiteRejectedByServer,
)
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuitesRepository
from sslyze.plugins.openssl_cipher_suites.implementation import (
    CipherSuitesScanResult,
    Sslv20ScanImplementation,
    Sslv30ScanImplementation,
    Tlsv10ScanImplementation,
    Tlsv11ScanImplementation,
    Tlsv12ScanImplementation,
    Tlsv13ScanImplementation,
)
from sslyze.plugins.plugin_base import ScanJobResult
from sslyze.server_connectivity import (
    ServerConnectivityInfo,
    TlsVersionEnum,
    check_connectivity_to_server,
)

from checks.tls_posture import elimination, registry
from checks.tls_posture.facts import TlsVersion
from checks.tls_posture.registry import (
    CertificateInfoTimeoutIsConnectivity,
    ClientRenegotiationTimeoutIsConnectivity,
)
from checks.tls_posture.translate import protocol_support
from tests.support.ports import HOST
from tests.support.tls_certs import TestPki
from tests.support.tls_relays import TlsRelay
from tests.support.tls_servers import (
    TLSLITE_3DES,
    TLSLITE_RC4,
    TLSLITE_SSL3,
    NginxBlock,
    NginxTls,
    TlsliteServer,
    make_dh_params,
    standard_nginx_blocks,
)

pytestmark = pytest.mark.integration

COMMANDS = tuple(elimination.BY_ELIMINATION)
STOCK = {  # sslyze's own: one handshake per suite
    ScanCommand.SSL_2_0_CIPHER_SUITES: Sslv20ScanImplementation,
    ScanCommand.SSL_3_0_CIPHER_SUITES: Sslv30ScanImplementation,
    ScanCommand.TLS_1_0_CIPHER_SUITES: Tlsv10ScanImplementation,
    ScanCommand.TLS_1_1_CIPHER_SUITES: Tlsv11ScanImplementation,
    ScanCommand.TLS_1_2_CIPHER_SUITES: Tlsv12ScanImplementation,
    ScanCommand.TLS_1_3_CIPHER_SUITES: Tlsv13ScanImplementation,
    ScanCommand.ELLIPTIC_CURVES: SupportedEllipticCurvesImplementation,
}
NGINX = ("good", "tls10", "tls11", "dh1024", "static_rsa", "cbc", "legacy_mix")
LEGACY_MIX_CIPHERS = (
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:DHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"
)


@dataclass(frozen=True)
class Servers:
    pki: TestPki
    ports: dict[str, int]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("elimination")
    pki = TestPki(directory / "pki")
    dh = make_dh_params()
    blocks = {block.name: block for block in standard_nginx_blocks(pki, dh)}
    good = blocks["good"]
    blocks["legacy_mix"] = NginxBlock(
        "legacy_mix", good.cert, good.key, protocols="TLSv1 TLSv1.1 TLSv1.2",
        ciphers=LEGACY_MIX_CIPHERS, dhparam=dh.dh1024,
    )  # fmt: skip
    tlslite = pki.good(stem="tlslite")
    with (
        NginxTls([blocks[name] for name in NGINX], directory / "nginx") as nginx,
        TlsliteServer(tlslite.chain, tlslite.key, TLSLITE_RC4) as rc4,
        TlsliteServer(tlslite.chain, tlslite.key, TLSLITE_3DES) as triple_des,
        TlsliteServer(tlslite.chain, tlslite.key, TLSLITE_SSL3) as ssl3,
    ):
        ports = {name: nginx.port(name) for name in NGINX}
        ports |= {"rc4": rc4.port, "3des": triple_des.port, "ssl3": ssl3.port}
        yield Servers(pki, ports)


def accepted(servers: Servers) -> dict[str, dict[str, list[tuple[str, Any]]]]:
    """Server -> command -> accepted suites with their ephemeral key, from one Scanner."""
    by_port = {port: name for name, port in servers.ports.items()}
    requests = [
        ServerScanRequest(
            server_location=ServerNetworkLocation(servers.pki.host, port, HOST),
            scan_commands=set(COMMANDS),
        )
        for port in by_port
    ]
    scanner = Scanner()
    scanner.queue_scans(requests)
    found: dict[str, dict[str, list[tuple[str, Any]]]] = {}
    for result in scanner.get_results():
        name = by_port[result.server_location.port]
        assert result.scan_status is ServerScanStatusEnum.COMPLETED, name
        assert result.scan_result is not None
        found[name] = {}
        for command in COMMANDS:
            attempt = getattr(result.scan_result, command.value)
            if attempt.result is None:  # sslyze errs on curves of an SSL 3.0-only server
                found[name][command.value] = [("error", str(attempt.error_trace))]
                continue
            if command is ScanCommand.ELLIPTIC_CURVES:
                found[name][command.value] = [
                    (curve.name, None) for curve in attempt.result.supported_curves or ()
                ]
                continue
            found[name][command.value] = sorted(
                (suite.cipher_suite.name, _key(suite.ephemeral_key))
                for suite in attempt.result.accepted_cipher_suites
            )
    return found


def _key(key: Any) -> Any:
    if key is None:
        return None
    return (str(key.type_name), int(key.size), getattr(key, "curve_name", None))


def test_elimination_finds_the_same_suites_and_ephemeral_keys_as_one_handshake_per_suite(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = scan_commands._IMPLEMENTATION_CLASSES
    for command, implementation in STOCK.items():
        monkeypatch.setitem(registry, command, implementation)
    one_by_one = accepted(servers)
    for command, implementation in elimination.BY_ELIMINATION.items():
        monkeypatch.setitem(registry, command, implementation)
    by_elimination = accepted(servers)
    assert by_elimination == one_by_one
    # the servers cover what elimination must get right: several suites per protocol, legacy
    # and modern OpenSSL builds in TLS 1.2, DHE and ECDHE keys, SSL 3.0, RC4, 3DES
    assert len(one_by_one["legacy_mix"]["tls_1_2_cipher_suites"]) == 4
    assert {name for name, _ in one_by_one["ssl3"]["ssl_3_0_cipher_suites"]} >= {
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    }
    assert one_by_one["rc4"]["tls_1_0_cipher_suites"]
    assert any(key and key[0] == "DH" for _, key in one_by_one["dh1024"]["tls_1_2_cipher_suites"])
    assert one_by_one["good"]["tls_1_0_cipher_suites"] == []
    assert len(one_by_one["good"]["tls_1_3_cipher_suites"]) == 3
    assert one_by_one["legacy_mix"]["tls_1_3_cipher_suites"] == []
    assert tuple(STOCK) == COMMANDS
    assert len(one_by_one["good"]["elliptic_curves"]) >= 3
    assert [name for name, _ in one_by_one["ssl3"]["elliptic_curves"]] == ["error"]
    assert len(one_by_one["rc4"]["elliptic_curves"]) > len(one_by_one["good"]["elliptic_curves"])


def stalling_after(servers: Servers, name: str, relayed: int) -> Iterator[ServerConnectivityInfo]:
    """Connectivity info for server `name`, pointing at a relay that stalls every connection
    after the first `relayed`."""
    return stalling(servers, name, lambda index, _: index > relayed)


@contextlib.contextmanager
def stalling(
    servers: Servers, name: str, stalls: Callable[[int, bytes], bool]
) -> Iterator[ServerConnectivityInfo]:
    """Connectivity info for server `name` (probed directly), pointing at a relay that holds
    each connection for which `stalls(index, hello)`."""
    network = ServerNetworkConfiguration(
        tls_server_name_indication=servers.pki.host, network_timeout=1, network_max_retries=0
    )
    direct = ServerNetworkLocation(servers.pki.host, servers.ports[name], HOST)
    probing = check_connectivity_to_server(direct, network)
    with TlsRelay(servers.ports[name], holds=stalls) as relay:
        yield ServerConnectivityInfo(
            server_location=ServerNetworkLocation(servers.pki.host, relay.port, HOST),
            network_configuration=network,
            tls_probing_result=probing,
        )


def _tls12_legacy_suites() -> list[Any]:
    legacy, suites = elimination._groups(TlsVersionEnum.TLS_1_2)[0]
    assert legacy
    return suites


def test_a_timeout_after_suites_were_found_fails_the_command_instead_of_shortening_the_list(
    servers: Servers,
) -> None:
    with (
        stalling_after(servers, "legacy_mix", relayed=1) as info,
        pytest.raises(TlsHandshakeTimedOut) as stalled,
    ):
        elimination.eliminate(info, TlsVersionEnum.TLS_1_2, True, _tls12_legacy_suites())
    assert isinstance(stalled.value, elimination.EliminationIncomplete)
    assert "after 1 suites found" in stalled.value.error_message


def test_a_timeout_on_the_first_offer_is_could_not_determine_not_unsupported(
    servers: Servers,
) -> None:
    suites = CipherSuitesRepository.get_all_cipher_suites(TlsVersionEnum.TLS_1_0)
    with stalling_after(servers, "tls10", relayed=0) as info:
        outcomes = elimination.eliminate(
            info, TlsVersionEnum.TLS_1_0, True, sorted(suites, key=attrgetter("name"))
        )
    assert outcomes
    assert all(isinstance(o, CipherSuiteRejectedByServer) for o in outcomes)
    assert {o.cipher_suite for o in outcomes} == suites
    result = CipherSuitesScanResult(TlsVersionEnum.TLS_1_0, [], outcomes)  # type: ignore[arg-type]
    support = protocol_support(TlsVersion.TLS_1_0, result)
    assert support.supported is None
    assert "timed out" in (support.error or "")


def test_a_refused_offer_means_not_supported_and_every_suite_is_listed_as_rejected(
    servers: Servers,
) -> None:
    suites = CipherSuitesRepository.get_all_cipher_suites(TlsVersionEnum.TLS_1_1)
    with stalling_after(servers, "good", relayed=10) as info:
        outcomes = elimination.eliminate(
            info, TlsVersionEnum.TLS_1_1, True, sorted(suites, key=attrgetter("name"))
        )
    assert not any(isinstance(o, CipherSuiteAcceptedByServer) for o in outcomes)
    assert {o.cipher_suite for o in outcomes} == suites


def test_curves_that_stop_answering_mid_elimination_fail_the_command_instead_of_reading_rejected(
    servers: Servers,
) -> None:
    nids = OpenSslEcNidEnum.get_supported_by_ssl_client()
    with (
        stalling_after(servers, "good", relayed=1) as info,
        pytest.raises(TlsHandshakeTimedOut) as stalled,
    ):
        elimination.eliminate_curves(info, nids)
    assert isinstance(stalled.value, elimination.EliminationIncomplete)
    assert "after 1 curves found" in stalled.value.error_message


def test_certificate_handshakes_with_sni_that_time_out_are_a_connectivity_issue_not_a_bug(
    servers: Servers,
) -> None:
    """sslyze raises ValueError (BUG_IN_SSLYZE, never retried) when every handshake that sends
    SNI failed but the one without SNI got the chain; a timeout among them is a timeout."""
    host = servers.pki.host.encode()
    with stalling(servers, "good", lambda _, hello: host in hello) as info:
        jobs = CertificateInfoImplementation.scan_jobs_for_scan_command(info)
        results = []
        for job in jobs:
            try:
                results.append(ScanJobResult(job.function_to_call(*job.function_arguments), None))
            except Exception as error:
                results.append(ScanJobResult(None, error))
    assert sum(result._exception is None for result in results) == 1  # the one without SNI
    with pytest.raises(ValueError, match="Should never happen"):
        CertificateInfoImplementation.result_for_completed_scan_jobs(info, results)
    with pytest.raises(TlsHandshakeTimedOut):
        CertificateInfoTimeoutIsConnectivity.result_for_completed_scan_jobs(info, results)


def test_every_replacement_is_in_sslyzes_registry_once_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for command in (*STOCK, ScanCommand.CERTIFICATE_INFO, ScanCommand.SESSION_RENEGOTIATION):
        monkeypatch.setitem(scan_commands._IMPLEMENTATION_CLASSES, command, object)
    registry.install()
    installed = scan_commands._IMPLEMENTATION_CLASSES
    assert {command: installed[command] for command in COMMANDS} == elimination.BY_ELIMINATION
    assert installed[ScanCommand.CERTIFICATE_INFO] is CertificateInfoTimeoutIsConnectivity
    assert installed[ScanCommand.SESSION_RENEGOTIATION] is ClientRenegotiationTimeoutIsConnectivity
