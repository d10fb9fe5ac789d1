"""The weak-TLS test servers serve what they claim, as sslyze 6.3 (Python API) sees it.

One nginx serves every standard block and one Scanner scans them all at once; the tlslite-ng
servers are scanned together too, so the file stays fast (about 6 s).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.ocsp import OCSPCertStatus, OCSPResponseStatus
from nassl.ephemeral_key_info import DhEphemeralKeyInfo
from sslyze import (
    CertificateDeploymentAnalysisResult,
    CertificateInfoExtraArgument,
    CipherSuitesScanResult,
    PathValidationResult,
    ScanCommand,
    ScanCommandAttempt,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanResult,
    ServerScanStatusEnum,
)

from tests.support.tls_certs import ServerCert, TestPki
from tests.support.tls_servers import (
    TLSLITE_3DES,
    TLSLITE_RC4,
    TLSLITE_SSL3,
    DhParams,
    NginxBlock,
    NginxTls,
    OpensslSServer,
    TlsliteServer,
    dh_numbers,
    dhe_prime_bits,
    make_dh_params,
    port_accepts,
    standard_nginx_blocks,
    tlslite_dh,
)

HOSTNAME = "localhost"
C = ScanCommand

# Which scan commands each standard nginx block needs to show its weakness.
NGINX_COMMANDS: dict[str, set[ScanCommand]] = {
    "good": {
        C.TLS_1_0_CIPHER_SUITES,
        C.TLS_1_1_CIPHER_SUITES,
        C.TLS_1_2_CIPHER_SUITES,
        C.TLS_1_3_CIPHER_SUITES,
        C.CERTIFICATE_INFO,
        C.HTTP_HEADERS,
        C.SESSION_RENEGOTIATION,
    },
    "no_hsts": {C.HTTP_HEADERS},
    "tls10": {C.TLS_1_0_CIPHER_SUITES, C.TLS_1_1_CIPHER_SUITES, C.TLS_1_2_CIPHER_SUITES},
    "tls11": {C.TLS_1_0_CIPHER_SUITES, C.TLS_1_1_CIPHER_SUITES, C.TLS_1_2_CIPHER_SUITES},
    "null": {C.TLS_1_2_CIPHER_SUITES},
    "dh1024": {C.TLS_1_2_CIPHER_SUITES},
    "dh2048": {C.TLS_1_2_CIPHER_SUITES},
    "static_rsa": {C.TLS_1_2_CIPHER_SUITES},
    "cbc": {C.TLS_1_2_CIPHER_SUITES},
    "rsa1024": {C.CERTIFICATE_INFO},
    "sha1_intermediate": {C.CERTIFICATE_INFO},
    "ocsp_revoked": {C.CERTIFICATE_INFO},
    "expired": {C.CERTIFICATE_INFO},
    "not_yet_valid": {C.CERTIFICATE_INFO},
    "wrong_host": {C.CERTIFICATE_INFO},
    "self_signed": {C.CERTIFICATE_INFO},
    "unknown_root": {C.CERTIFICATE_INFO},
    "missing_intermediate": {C.CERTIFICATE_INFO},
    "long_lifetime": {C.CERTIFICATE_INFO},
}


# -- sslyze helpers ----------------------------------------------------------------------------


def scan_all(
    targets: Mapping[str, tuple[int, set[ScanCommand]]], ca_file: Path
) -> dict[str, ServerScanResult]:
    """Scan every (port, commands) target at once; results by target name."""
    with_ca = ScanCommandsExtraArguments(
        certificate_info=CertificateInfoExtraArgument(custom_ca_file=ca_file)
    )
    requests = [
        ServerScanRequest(
            server_location=ServerNetworkLocation(
                hostname=HOSTNAME, port=port, ip_address="127.0.0.1"
            ),
            scan_commands=commands,
            # sslyze refuses an extra argument for a command that is not scheduled
            scan_commands_extra_arguments=with_ca
            if C.CERTIFICATE_INFO in commands
            else ScanCommandsExtraArguments(),
        )
        for port, commands in targets.values()
    ]
    names = {port: name for name, (port, _) in targets.items()}
    scanner = Scanner(concurrent_server_scans_limit=max(1, len(requests)))
    scanner.queue_scans(requests)
    return {names[result.server_location.port]: result for result in scanner.get_results()}


def completed(attempt: ScanCommandAttempt[Any]) -> Any:
    assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, attempt.error_trace
    return attempt.result


def suites(result: ServerScanResult, version: str) -> CipherSuitesScanResult:
    assert result.scan_status == ServerScanStatusEnum.COMPLETED, result.connectivity_error_trace
    assert result.scan_result is not None
    scan: CipherSuitesScanResult = completed(
        getattr(result.scan_result, f"{version}_cipher_suites")
    )
    return scan


def accepted(result: ServerScanResult, version: str) -> set[str]:
    return {item.cipher_suite.name for item in suites(result, version).accepted_cipher_suites}


def deployment(result: ServerScanResult) -> CertificateDeploymentAnalysisResult:
    assert result.scan_result is not None, result.connectivity_error_trace
    info = completed(result.scan_result.certificate_info)
    first: CertificateDeploymentAnalysisResult = info.certificate_deployments[0]
    return first


def custom_store(
    analysis: CertificateDeploymentAnalysisResult, ca_file: Path
) -> PathValidationResult:
    """The path validation against the test root (sslyze also tries its bundled stores)."""
    [validation] = [
        item for item in analysis.path_validation_results if item.trust_store.path == ca_file
    ]
    return validation


def s_client(port: int, *options: str) -> str:
    """`openssl s_client` output (stdout + stderr) for one handshake to 127.0.0.1:port."""
    completed_process = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", HOSTNAME, *options],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    return (completed_process.stdout + completed_process.stderr).decode(errors="replace")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"), host=HOSTNAME)


@pytest.fixture(scope="module")
def good_cert(pki: TestPki) -> ServerCert:
    return pki.good(stem="good-for-tests")


@pytest.fixture(scope="module")
def dh() -> DhParams:
    return make_dh_params()


@pytest.fixture(scope="module")
def nginx(
    pki: TestPki, dh: DhParams, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NginxTls]:
    with NginxTls(
        standard_nginx_blocks(pki, dh), directory=tmp_path_factory.mktemp("nginx")
    ) as server:
        yield server


@pytest.fixture(scope="module")
def nginx_results(nginx: NginxTls, pki: TestPki) -> dict[str, ServerScanResult]:
    targets = {name: (nginx.port(name), commands) for name, commands in NGINX_COMMANDS.items()}
    return scan_all(targets, pki.root_pem)


@pytest.fixture(scope="module")
def tlslite_servers(good_cert: ServerCert, dh: DhParams) -> Iterator[dict[str, TlsliteServer]]:
    configs = {
        "rc4": TLSLITE_RC4,
        "3des": TLSLITE_3DES,
        "ssl3": TLSLITE_SSL3,
        "dh768": tlslite_dh(dh_numbers(dh.dh768)),
        "dh512": tlslite_dh(dh_numbers(dh.dh512)),
    }
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(TlsliteServer(good_cert.chain, good_cert.key, config))
            for name, config in configs.items()
        }


@pytest.fixture(scope="module")
def tlslite_results(
    tlslite_servers: dict[str, TlsliteServer], pki: TestPki
) -> dict[str, ServerScanResult]:
    commands = {
        "rc4": {C.TLS_1_0_CIPHER_SUITES, C.TLS_1_2_CIPHER_SUITES},
        "3des": {C.TLS_1_2_CIPHER_SUITES},
        "ssl3": {C.SSL_3_0_CIPHER_SUITES, C.TLS_1_0_CIPHER_SUITES},
        "dh768": {C.TLS_1_2_CIPHER_SUITES},
        "dh512": {C.TLS_1_2_CIPHER_SUITES},
    }
    targets = {name: (tlslite_servers[name].port, commands[name]) for name in commands}
    return scan_all(targets, pki.root_pem)


# -- nginx: protocols and cipher suites -------------------------------------------------------


@pytest.mark.integration
def test_good_block_is_modern_with_hsts(
    nginx_results: dict[str, ServerScanResult], pki: TestPki
) -> None:
    result = nginx_results["good"]
    assert accepted(result, "tls_1_3")
    assert accepted(result, "tls_1_2") == {
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    }
    assert not suites(result, "tls_1_0").is_tls_version_supported
    assert not suites(result, "tls_1_1").is_tls_version_supported
    assert result.scan_result is not None
    headers = completed(result.scan_result.http_headers)
    assert headers.strict_transport_security_header.max_age == 31536000
    renegotiation = completed(result.scan_result.session_renegotiation)
    assert renegotiation.is_vulnerable_to_client_renegotiation_dos is False
    analysis = deployment(result)
    assert custom_store(analysis, pki.root_pem).was_validation_successful
    assert analysis.verified_chain_has_sha1_signature is False
    assert analysis.ocsp_response is None


@pytest.mark.integration
def test_no_hsts_block_sends_no_hsts(nginx_results: dict[str, ServerScanResult]) -> None:
    result = nginx_results["no_hsts"]
    assert result.scan_result is not None
    headers = completed(result.scan_result.http_headers)
    assert headers.http_error_trace is None
    assert headers.strict_transport_security_header is None


@pytest.mark.integration
@pytest.mark.parametrize(("name", "version"), [("tls10", "tls_1_0"), ("tls11", "tls_1_1")])
def test_old_protocol_blocks_accept_only_that_version(
    nginx_results: dict[str, ServerScanResult], name: str, version: str
) -> None:
    result = nginx_results[name]
    assert accepted(result, version) == {
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    }
    for other in {"tls_1_0", "tls_1_1", "tls_1_2"} - {version}:
        assert not suites(result, other).is_tls_version_supported, other


@pytest.mark.integration
def test_null_block_accepts_null_ciphers_but_sslyze_cannot_connect(
    nginx: NginxTls, nginx_results: dict[str, ServerScanResult]
) -> None:
    result = nginx_results["null"]
    assert result.scan_status == ServerScanStatusEnum.ERROR_NO_CONNECTIVITY
    port = nginx.port("null")
    output = s_client(port, "-tls1_2", "-cipher", "NULL-SHA256:@SECLEVEL=0")
    assert "Cipher is NULL-SHA256" in output
    refused = s_client(port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert "Cipher is (NONE)" in refused


@pytest.mark.integration
@pytest.mark.parametrize(("name", "bits"), [("dh1024", 1024), ("dh2048", 2048)])
def test_dhe_blocks_use_their_dh_group_size(
    nginx_results: dict[str, ServerScanResult], name: str, bits: int
) -> None:
    scan = suites(nginx_results[name], "tls_1_2")
    assert {item.cipher_suite.name for item in scan.accepted_cipher_suites} == {
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    }
    for item in scan.accepted_cipher_suites:
        assert isinstance(item.ephemeral_key, DhEphemeralKeyInfo)
        assert item.ephemeral_key.size == bits


@pytest.mark.integration
def test_static_rsa_block_has_no_forward_secrecy(
    nginx_results: dict[str, ServerScanResult],
) -> None:
    scan = suites(nginx_results["static_rsa"], "tls_1_2")
    assert {item.cipher_suite.name for item in scan.accepted_cipher_suites} == {
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
    }
    assert all(item.ephemeral_key is None for item in scan.accepted_cipher_suites)


@pytest.mark.integration
def test_cbc_block_accepts_only_cbc(nginx_results: dict[str, ServerScanResult]) -> None:
    names = accepted(nginx_results["cbc"], "tls_1_2")
    assert len(names) == 4
    assert all("_CBC_" in name for name in names)


# -- nginx: certificates -----------------------------------------------------------------------


@pytest.mark.integration
def test_rsa1024_block_sends_a_1024_bit_key(
    nginx_results: dict[str, ServerScanResult], pki: TestPki
) -> None:
    analysis = deployment(nginx_results["rsa1024"])
    leaf_key = analysis.received_certificate_chain[0].public_key()
    assert isinstance(leaf_key, rsa.RSAPublicKey)
    assert leaf_key.key_size == 1024
    # sslyze's validation (cryptography's verifier) does not reject the small key.
    assert custom_store(analysis, pki.root_pem).was_validation_successful


@pytest.mark.integration
def test_sha1_intermediate_block_sends_a_sha1_signed_intermediate(
    nginx_results: dict[str, ServerScanResult], pki: TestPki
) -> None:
    analysis = deployment(nginx_results["sha1_intermediate"])
    intermediate = analysis.received_certificate_chain[1]
    assert isinstance(intermediate.signature_hash_algorithm, hashes.SHA1)
    # cryptography's verifier forbids SHA-1, so no verified chain: the flag stays None.
    validation = custom_store(analysis, pki.root_pem)
    assert not validation.was_validation_successful
    assert "Forbidden signature algorithm" in (validation.validation_error or "")
    assert analysis.verified_chain_has_sha1_signature is None


@pytest.mark.integration
def test_ocsp_block_staples_a_revoked_response(
    nginx_results: dict[str, ServerScanResult], pki: TestPki
) -> None:
    analysis = deployment(nginx_results["ocsp_revoked"])
    assert custom_store(analysis, pki.root_pem).was_validation_successful
    response = analysis.ocsp_response
    assert response is not None
    assert response.response_status == OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == OCSPCertStatus.REVOKED
    assert response.serial_number == analysis.received_certificate_chain[0].serial_number
    assert analysis.ocsp_response_is_trusted is True


@pytest.mark.integration
@pytest.mark.parametrize(
    "name",
    [
        "expired",
        "not_yet_valid",
        "wrong_host",
        "self_signed",
        "unknown_root",
        "missing_intermediate",
    ],
)
def test_bad_certificate_blocks_fail_validation(
    nginx_results: dict[str, ServerScanResult], pki: TestPki, name: str
) -> None:
    analysis = deployment(nginx_results[name])
    validation = custom_store(analysis, pki.root_pem)
    assert not validation.was_validation_successful
    assert validation.validation_error
    assert analysis.verified_certificate_chain is None
    assert analysis.verified_chain_has_sha1_signature is None


@pytest.mark.integration
def test_long_lifetime_block_is_valid_for_825_days(
    nginx_results: dict[str, ServerScanResult], pki: TestPki
) -> None:
    analysis = deployment(nginx_results["long_lifetime"])
    leaf = analysis.received_certificate_chain[0]
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == 825
    assert custom_store(analysis, pki.root_pem).was_validation_successful


# -- nginx: lifecycle --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.integration
def test_nginx_stops_master_and_workers(good_cert: ServerCert) -> None:
    block = NginxBlock("only", good_cert.chain, good_cert.key)
    with NginxTls([block], workers=2) as nginx:
        port = nginx.port("only")
        master = nginx.pid
        assert master is not None
        assert "TLSv1.3" in s_client(port, "-CAfile", str(good_cert.root))
        children: list[str] = []
        for _ in range(100):  # the master forks its workers after it starts listening
            children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            if len(children) == 2:
                break
            time.sleep(0.02)
        assert len(children) == 2
    assert not port_accepts(port)
    assert not _alive(master)
    for child in children:
        assert not _alive(int(child))


# -- tlslite-ng ------------------------------------------------------------------------------


@pytest.mark.integration
def test_tlslite_rc4_server(tlslite_results: dict[str, ServerScanResult]) -> None:
    result = tlslite_results["rc4"]
    for version in ("tls_1_0", "tls_1_2"):
        names = accepted(result, version)
        assert "TLS_RSA_WITH_RC4_128_SHA" in names
        assert all("_RC4_" in name for name in names)


@pytest.mark.integration
def test_tlslite_3des_server(tlslite_results: dict[str, ServerScanResult]) -> None:
    names = accepted(tlslite_results["3des"], "tls_1_2")
    assert "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in names
    assert all("_3DES_" in name for name in names)


@pytest.mark.integration
def test_tlslite_ssl3_server(tlslite_results: dict[str, ServerScanResult]) -> None:
    result = tlslite_results["ssl3"]
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in accepted(result, "ssl_3_0")
    assert not suites(result, "tls_1_0").is_tls_version_supported


@pytest.mark.integration
def test_tlslite_dh768_server(tlslite_results: dict[str, ServerScanResult]) -> None:
    scan = suites(tlslite_results["dh768"], "tls_1_2")
    assert scan.accepted_cipher_suites
    for item in scan.accepted_cipher_suites:
        assert "_DHE_RSA_" in item.cipher_suite.name
        assert isinstance(item.ephemeral_key, DhEphemeralKeyInfo)
        assert item.ephemeral_key.size == 768


@pytest.mark.integration
def test_tlslite_dh512_server_serves_dh512_that_sslyze_cannot_connect_to(
    tlslite_servers: dict[str, TlsliteServer], tlslite_results: dict[str, ServerScanResult]
) -> None:
    assert tlslite_results["dh512"].scan_status == ServerScanStatusEnum.ERROR_NO_CONNECTIVITY
    assert dhe_prime_bits(tlslite_servers["dh512"].port) == 512
    assert dhe_prime_bits(tlslite_servers["dh768"].port) == 768
    # OpenSSL 3 refuses it even at security level 0 (DH below 80 bits of security).
    output = s_client(
        tlslite_servers["dh512"].port, "-tls1_2", "-cipher", "DHE-RSA-AES128-SHA:@SECLEVEL=0"
    )
    assert "dh key too small" in output


def _https_get(port: int, cafile: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOSTNAME) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        return tls.recv(4096)


@pytest.mark.integration
def test_tlslite_server_survives_odd_clients_and_parallel_connections(
    good_cert: ServerCert,
) -> None:
    with TlsliteServer(good_cert.chain, good_cert.key) as server:
        for payload in (
            b"",
            b"GET / HTTP/1.0\r\n\r\n",
            b"\x16\x03\x01\x00\x05hello",
            b"\x00" * 9000,
        ):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                raw.sendall(payload)
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
        answers: list[bytes] = []
        threads = [
            threading.Thread(target=lambda: answers.append(_https_get(server.port, good_cert.root)))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for connection in idle:
            connection.close()
        assert len(answers) == 8
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
        port = server.port
    assert not port_accepts(port)


# -- openssl s_server ------------------------------------------------------------------------


@pytest.mark.integration
def test_s_server_accepts_client_renegotiation(good_cert: ServerCert, pki: TestPki) -> None:
    with OpensslSServer(good_cert.chain, good_cert.key) as server:
        results = scan_all({"s_server": (server.port, {C.SESSION_RENEGOTIATION})}, pki.root_pem)
        port = server.port
    result = results["s_server"]
    assert result.scan_result is not None, result.connectivity_error_trace
    renegotiation = completed(result.scan_result.session_renegotiation)
    assert renegotiation.is_vulnerable_to_client_renegotiation_dos is True
    assert renegotiation.client_renegotiations_success_count > 0
    assert renegotiation.supports_secure_renegotiation is True
    assert not port_accepts(port)
