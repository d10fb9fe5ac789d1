"""tls_posture against real weak TLS servers on loopback, all scanned in one sslyze batch."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.egress import EgressPolicy
from checks.tls_posture.grade import Grade
from checks.tls_posture.params import TlsPostureParams
from monitor.model import (
    CheckKind,
    CheckRun,
    ErrorReason,
    Finding,
    RunStatus,
    Severity,
    Target,
)
from monitor.runner import CheckJob, Runner
from monitor.scan import run_scan
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.finding_events import Event, record_transitions
from tests.support.hostile_servers import GarbageServer, Tarpit
from tests.support.ports import free_port
from tests.support.tls_certs import TestPki
from tests.support.tls_relays import TlsRelay
from tests.support.tls_servers import (
    MODERN_CIPHERS,
    TLSLITE_3DES,
    TLSLITE_RC4,
    TLSLITE_SSL3,
    WEAK_CERT_CIPHERS,
    NginxBlock,
    NginxTls,
    OpensslSServer,
    TlsliteServer,
    dh_numbers,
    make_dh_params,
    standard_nginx_blocks,
    tlslite_dh,
)


class StallOnTls10(TlsRelay):
    """A TCP relay to an upstream TLS server that stalls every TLS 1.0 ClientHello.

    Like servers that hang on a protocol version instead of refusing it: the scan gets
    answers for everything else and timeouts for TLS 1.0.
    """

    def __init__(self, upstream_port: int) -> None:
        self.stalling = True  # False: relay TLS 1.0 hellos too
        super().__init__(upstream_port)

    def holds(self, index: int, hello: bytes) -> bool:
        # record header (5 bytes), handshake header (4 bytes), then client_version
        tls10 = len(hello) > 10 and hello[0] == 0x16 and hello[5] == 0x01
        return self.stalling and tls10 and hello[9:11] == b"\x03\x01"


class Servers:
    def __init__(self, pki: TestPki, ports: dict[str, int]) -> None:
        self.pki = pki
        self.ports = ports


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("tls-posture")
    pki = TestPki(directory / "pki")
    dh = make_dh_params()
    good = pki.good()
    self_signed_wrong_host = pki.self_signed("wrong-host.invalid", stem="self-signed-wrong-host")
    no_aia = pki.missing_intermediate(aia=False)
    long_lived = pki.long_lifetime()
    rsa512 = pki.rsa512()
    blocks = [
        *standard_nginx_blocks(pki, dh),
        NginxBlock(  # the Mozilla intermediate server-side configuration, with HSTS
            "mozilla_intermediate",
            good.chain,
            good.key,
            protocols="TLSv1.2 TLSv1.3",
            ciphers=MODERN_CIPHERS,
            hsts_max_age=63072000,
            prefer_server_ciphers=False,
            extra=("ssl_ecdh_curve X25519:prime256v1:secp384r1;", "ssl_session_tickets off;"),
        ),
        NginxBlock(
            "self_signed_wrong_host",
            self_signed_wrong_host.chain,
            self_signed_wrong_host.key,
            protocols="TLSv1.2 TLSv1.3",
            ciphers=MODERN_CIPHERS,
        ),
        NginxBlock(
            "missing_intermediate_no_aia",
            no_aia.chain,
            no_aia.key,
            protocols="TLSv1.2 TLSv1.3",
            ciphers=MODERN_CIPHERS,
        ),
        NginxBlock(  # RSA below 1024 bits: F (TLS 1.3 needs RSA-PSS, which 512 bits cannot do)
            "rsa512",
            rsa512.chain,
            rsa512.key,
            protocols="TLSv1.2 TLSv1.3",
            ciphers=WEAK_CERT_CIPHERS,
        ),
        NginxBlock(  # A+ is about HSTS and warnings: a long lifetime stays a finding
            "long_lifetime_hsts",
            long_lived.chain,
            long_lived.key,
            protocols="TLSv1.2 TLSv1.3",
            ciphers=MODERN_CIPHERS,
            hsts_max_age=31536000,
        ),
        NginxBlock(
            "tls10_and_13",
            good.chain,
            good.key,
            protocols="TLSv1 TLSv1.2 TLSv1.3",
            ciphers="ECDHE-RSA-AES128-SHA:" + MODERN_CIPHERS + ":@SECLEVEL=0",
        ),
    ]
    weak_rsa = pki.good()
    with (
        NginxTls(blocks, directory / "nginx") as nginx,
        TlsliteServer(weak_rsa.chain, weak_rsa.key, TLSLITE_RC4) as rc4,
        TlsliteServer(weak_rsa.chain, weak_rsa.key, TLSLITE_3DES) as triple_des,
        TlsliteServer(weak_rsa.chain, weak_rsa.key, TLSLITE_SSL3) as ssl3,
        TlsliteServer(weak_rsa.chain, weak_rsa.key, tlslite_dh(dh_numbers(dh.dh512))) as dh512,
        OpensslSServer(good.chain, good.key) as renegotiation,
    ):
        ports = {block.name: nginx.port(block.name) for block in blocks}
        ports |= {
            "rc4": rc4.port,
            "3des": triple_des.port,
            "ssl3": ssl3.port,
            "dh512": dh512.port,
            "client_renegotiation": renegotiation.port,
        }
        stall = StallOnTls10(ports["tls10_and_13"])
        ports["stall_tls10"] = stall.port
        try:
            yield Servers(pki, ports)
        finally:
            stall.close()


@pytest.fixture(scope="module")
def runs(servers: Servers) -> dict[str, CheckRun]:
    """Every server scanned by one run_scan: the jobs share one sslyze Scanner."""
    params = TlsPostureParams(
        server_name=servers.pki.host,
        trust_store=servers.pki.root_pem,
        network_timeout=timedelta(seconds=2),
        network_retries=1,
    )
    # openssl s_server answers one connection at a time: give it a Scanner of its own
    single_threaded = params.model_copy(
        update={"per_server_connections": 1, "network_timeout": timedelta(seconds=5)}
    )
    jobs = [
        CheckJob(
            CheckKind.TLS_POSTURE,
            Target(name, f"127.0.0.1:{port}"),
            single_threaded if name == "client_renegotiation" else params,
            timedelta(seconds=150),
        )
        for name, port in servers.ports.items()
    ]
    return {run.target: run for run in run_scan(jobs, concurrency=len(jobs), egress=EgressPolicy())}


def rules(run: CheckRun) -> set[str]:
    assert run.status is RunStatus.OK, f"{run.target}: {run.error_reason} {run.error_message}"
    assert run.output is not None
    return {finding.rule_id for finding in run.output.findings}


def grade(run: CheckRun) -> str:
    assert run.output is not None
    return next(o.labels["grade"] for o in run.output.observations if o.name == "tls_grade_info")


@pytest.mark.integration
def test_clean_intermediate_server_with_hsts_is_a_plus_without_findings_above_info(
    runs: dict[str, CheckRun],
) -> None:
    run = runs["mozilla_intermediate"]
    assert run.output is not None
    above_info = [
        (f.rule_id, f.evidence) for f in run.output.findings if f.severity is not Severity.INFO
    ]
    assert above_info == []
    assert grade(run) == "A+"


NO13 = ("A-", "no TLS 1.3")
NO_AEAD = ("A-", "no AEAD cipher suite")


@pytest.mark.integration
@pytest.mark.parametrize(
    ("server", "expected", "letter", "caps"),
    [
        ("no_hsts", {"TLS-HSTS-MISSING"}, "A", set()),
        (
            "tls10",
            {"TLS-PROTOCOL-TLS10", "TLS-PROTOCOL-NO-TLS12"},
            "C",
            {("C", "no TLS 1.2 or 1.3"), ("B", "TLSv1.0 offered"), NO_AEAD, NO13},
        ),
        (
            "tls11",
            {"TLS-PROTOCOL-TLS11", "TLS-PROTOCOL-NO-TLS12"},
            "C",
            {("C", "no TLS 1.2 or 1.3"), ("B", "TLSv1.1 offered"), NO_AEAD, NO13},
        ),
        (
            "null",
            {"TLS-CIPHER-NULL", "TLS-SCAN-INCOMPLETE"},
            "F",
            {("F", "NULL or anonymous cipher suites"), NO_AEAD},
        ),
        ("dh1024", {"TLS-DH-WEAK"}, "B", {("B", "DH parameters of 1024 bits (below 2048)"), NO13}),
        ("static_rsa", {"TLS-CIPHER-NO-FORWARD-SECRECY"}, "B", {("B", "no forward secrecy"), NO13}),
        ("cbc", {"TLS-CIPHER-NO-AEAD", "TLS-CIPHER-CBC"}, "A-", {NO_AEAD, NO13}),
        (
            "rsa1024",
            {"TLS-KEY-WEAK-RSA"},
            "B",
            {("B", "RSA certificate key of 1024 bits (below 2048)")},
        ),
        ("rsa512", {"TLS-KEY-WEAK-RSA"}, "F", {("F", "RSA certificate key of 512 bits"), NO13}),
        (
            "sha1_intermediate",
            {"TLS-CERT-SHA1", "TLS-CERT-UNTRUSTED"},
            "T",
            {("T", "certificate not trusted (forbidden signature algorithm (SHA-1))")},
        ),
        ("ocsp_revoked", {"TLS-CERT-REVOKED"}, "T", {("T", "certificate revoked")}),
        ("expired", {"TLS-CERT-UNTRUSTED"}, "T", None),
        ("not_yet_valid", {"TLS-CERT-UNTRUSTED"}, "T", None),
        (
            "wrong_host",
            {"TLS-CERT-HOSTNAME-MISMATCH"},
            "M",
            {("M", "certificate does not match localhost")},
        ),
        (
            "self_signed",
            {"TLS-CERT-UNTRUSTED"},
            "T",
            {("T", "certificate not trusted (self-signed)")},
        ),
        (
            "self_signed_wrong_host",
            {"TLS-CERT-UNTRUSTED", "TLS-CERT-HOSTNAME-MISMATCH"},
            "T",
            {
                ("T", "certificate not trusted (self-signed)"),
                ("M", "certificate does not match localhost"),
            },
        ),
        (
            "unknown_root",
            {"TLS-CERT-UNTRUSTED"},
            "T",
            {("T", "certificate not trusted (unknown root)")},
        ),
        (
            "missing_intermediate",
            {"TLS-CERT-INCOMPLETE-CHAIN"},
            "B",
            {("B", "incomplete chain (the server does not send its intermediate)")},
        ),
        (
            "missing_intermediate_no_aia",
            {"TLS-CERT-UNTRUSTED"},
            "T",
            {("T", "certificate not trusted (incomplete chain)")},
        ),
        ("long_lifetime", {"TLS-CERT-LIFETIME"}, "A", set()),
        # findings that do not withhold A+: a long lifetime, a Mozilla-profile deviation
        # (nginx's default curves include secp521r1 and X448, which the profile rejects)
        ("long_lifetime_hsts", {"TLS-CERT-LIFETIME", "TLS-MOZILLA-PROFILE"}, "A+", set()),
        ("good", {"TLS-MOZILLA-PROFILE"}, "A+", set()),
        (
            "rc4",
            {"TLS-CIPHER-RC4"},
            "C",
            {
                ("B", "TLSv1.0 offered"),
                ("B", "TLSv1.1 offered"),
                ("C", "RC4 with TLS 1.1 or newer"),
                NO_AEAD,
                NO13,
            },
        ),
        (
            "3des",
            {"TLS-CIPHER-3DES"},
            "C",
            {
                ("B", "TLSv1.0 offered"),
                ("B", "TLSv1.1 offered"),
                ("C", "3DES (64-bit block, Sweet32) with TLS 1.1 or newer"),
                NO_AEAD,
                NO13,
            },
        ),
        (
            "ssl3",
            {"TLS-PROTOCOL-SSL3"},
            "F",
            {
                ("F", "SSL 3.0 is the best protocol offered (POODLE)"),
                ("C", "no TLS 1.2 or 1.3"),
                NO_AEAD,
                NO13,
            },
        ),
        (
            "dh512",
            {"TLS-DH-INSECURE", "TLS-SCAN-INCOMPLETE"},
            "F",
            {("F", "no cipher suite could be negotiated")},
        ),
        (
            "client_renegotiation",
            {"TLS-RENEGOTIATION-CLIENT"},
            "A-",
            {("A-", "client-initiated renegotiation accepted"), NO13},
        ),
    ],
)
def test_each_weak_server_gets_its_finding_and_its_exact_grade_and_caps(
    runs: dict[str, CheckRun],
    server: str,
    expected: set[str],
    letter: str,
    caps: set[tuple[str, str]] | None,
) -> None:
    found = rules(runs[server])
    assert expected <= found, f"{server}: {sorted(found)}"
    result = scan_grade(runs[server])
    assert result.letter == letter, result.explain()
    assert grade(runs[server]) == letter
    if caps is not None:
        assert {(cap.letter, cap.reason) for cap in result.caps} == caps, result.explain()


@pytest.mark.integration
def test_untrusted_chains_are_named_with_their_dates(runs: dict[str, CheckRun]) -> None:
    def untrusted(server: str) -> Finding:
        (finding,) = [f for f in runs[server].output.findings if f.rule_id == "TLS-CERT-UNTRUSTED"]  # type: ignore[union-attr]
        return finding

    assert untrusted("self_signed").subject == "self-signed"
    assert untrusted("self_signed_wrong_host").subject == "self-signed"
    assert untrusted("unknown_root").subject == "unknown root"
    assert untrusted("missing_intermediate_no_aia").subject == "incomplete chain"
    assert untrusted("sha1_intermediate").subject == "forbidden signature algorithm (SHA-1)"
    expired = untrusted("expired")
    assert expired.subject == "expired"
    assert "certificate not valid after " in expired.title
    not_yet = untrusted("not_yet_valid")
    assert not_yet.subject == "not yet valid"
    assert "certificate not valid before " in not_yet.title


def scan_grade(run: CheckRun) -> Grade:
    assert run.output is not None
    assert run.output.snapshot is not None
    return Grade.from_json(run.output.snapshot["scan_grade"])


@pytest.mark.integration
def test_a_server_that_stalls_mid_scan_is_undetermined_and_its_grade_provisional(
    runs: dict[str, CheckRun],
) -> None:
    stalled, complete = runs["stall_tls10"], runs["tls10_and_13"]
    assert "TLS-PROTOCOL-TLS10" in rules(complete)
    found = rules(stalled)
    assert "TLS-SCAN-INCOMPLETE" in found
    assert "TLS-PROTOCOL-TLS10" not in found  # not claimed: it could not be determined
    enabled = {
        o.labels["protocol"]: o.value
        for o in stalled.output.observations
        if o.name == "tls_protocol_enabled"  # type: ignore[union-attr]
    }
    assert "TLSv1.0" not in enabled
    assert enabled["TLSv1.2"] == 1.0
    provisional = scan_grade(stalled)
    assert provisional.provisional
    assert "TLSv1.0" in provisional.undetermined
    assert ("B", "TLSv1.0 offered") not in {(c.letter, c.reason) for c in provisional.caps}
    assert scan_grade(complete).letter == "B"
    assert not scan_grade(complete).provisional


@pytest.mark.integration
def test_a_provisional_scan_keeps_the_complete_grade_and_findings_and_alerts_nobody(
    servers: Servers, store: SqlStore
) -> None:
    relay = StallOnTls10(servers.ports["tls10_and_13"])
    params = TlsPostureParams(
        server_name=servers.pki.host,
        trust_store=servers.pki.root_pem,
        network_timeout=timedelta(seconds=1),
        network_retries=0,
        scan_timeout=timedelta(seconds=20),
        check_http_headers=False,
    )
    job = CheckJob(
        CheckKind.TLS_POSTURE, Target("flaky", f"127.0.0.1:{relay.port}"), params,
        timedelta(seconds=40),
    )  # fmt: skip
    policy = HysteresisPolicy(open_after=1, resolve_after=1)
    store.sync_targets([job.target], datetime.now(UTC))

    def scan(stalling: bool) -> tuple[CheckRun, list[Event]]:
        relay.stalling = stalling
        run = Runner(history=store, egress=EgressPolicy()).run(job)
        assert run.status is RunStatus.OK, run.error_message
        return run, record_transitions(store, run, policy)

    def open_rules() -> set[str]:
        found = store.findings(FindingQuery(target="flaky"))
        return {f.rule_id for f in found}

    try:
        complete, opened = scan(stalling=False)
        assert (scan_grade(complete).letter, scan_grade(complete).provisional) == ("B", False)
        assert "TLS-PROTOCOL-TLS10" in {t.rule_id for t in opened}
        # `apivigil findings` (and the HTML report) say why it is B
        (why,) = [f for f in store.findings(FindingQuery("flaky")) if f.rule_id == "TLS-GRADE"]
        assert why.title.startswith("TLS grade B: ")
        assert "caps: B TLSv1.0 offered" in why.evidence
        assert "(protocol " in why.evidence
        before = open_rules()
        partial, transitions = scan(stalling=True)
        assert scan_grade(partial).provisional
        assert grade(partial) == "B"  # the reported grade is still the complete one
        assert partial.output is not None
        assert partial.output.snapshot is not None
        assert partial.output.snapshot["last_complete_grade"]["letter"] == "B"
        assert [t for t in transitions if t.rule_id != "TLS-SCAN-INCOMPLETE"] == []
        assert open_rules() - {"TLS-SCAN-INCOMPLETE"} == before
        state = store.metrics_state(())
        grades = {
            s.labels["grade"]
            for s in state.latest_samples
            if s.target == "flaky" and s.name == "tls_grade_info"
        }
        assert grades == {"B"}
        again, transitions = scan(stalling=False)
        assert not scan_grade(again).provisional
        assert {(t.rule_id, t.kind.value) for t in transitions} <= {
            ("TLS-SCAN-INCOMPLETE", "resolved")
        }
    finally:
        relay.close()


@pytest.mark.integration
def test_bad_endpoints_are_clear_errors_in_bounded_time_and_others_still_judged(
    tarpit: Tarpit, garbage_server: GarbageServer, servers: Servers
) -> None:
    closed = free_port()
    params = TlsPostureParams(
        server_name=servers.pki.host,
        trust_store=servers.pki.root_pem,
        network_timeout=timedelta(seconds=1),
        network_retries=0,
    )
    endpoints = {
        "pit": tarpit.port,
        "plain": garbage_server.port,
        "closed": closed,
        "good": servers.ports["mozilla_intermediate"],
    }
    jobs = [
        CheckJob(
            CheckKind.TLS_POSTURE, Target(name, f"127.0.0.1:{port}"), params, timedelta(seconds=60)
        )
        for name, port in endpoints.items()
    ]
    started = time.monotonic()
    by_target = {
        run.target: run for run in run_scan(jobs, concurrency=len(jobs), egress=EgressPolicy())
    }
    assert time.monotonic() - started < 60
    assert by_target["closed"].error_reason is ErrorReason.UNREACHABLE
    assert "rejected" in (by_target["closed"].error_message or "")
    assert by_target["pit"].error_reason is ErrorReason.UNREACHABLE
    assert f"127.0.0.1:{tarpit.port}" in (by_target["pit"].error_message or "")
    plain = by_target["plain"]
    assert plain.error_reason is ErrorReason.BAD_INPUT, plain
    assert f"127.0.0.1:{garbage_server.port}" in (plain.error_message or "")
    assert grade(by_target["good"]) == "A+"


@pytest.mark.unit
def test_a_name_that_is_not_a_url_is_misconfigured(tmp_path: Path) -> None:
    job = CheckJob(
        CheckKind.TLS_POSTURE, Target("nothing"), TlsPostureParams(), timedelta(seconds=5)
    )
    (run,) = run_scan([job], concurrency=1, egress=EgressPolicy())
    assert run.error_reason is ErrorReason.MISCONFIGURED


@pytest.mark.integration
def test_a_real_mozilla_profile_deviation_names_protocols_and_suites_as_words(
    runs: dict[str, CheckRun],
) -> None:
    run = runs["tls10_and_13"]
    assert run.output is not None
    (finding,) = [f for f in run.output.findings if f.rule_id == "TLS-MOZILLA-PROFILE"]
    # sslyze says "TLS versions {'TLSv1'} are supported"; people read the words
    assert "TLS versions TLSv1 are supported" in finding.evidence, finding.evidence
    assert "{'" not in finding.evidence, finding.evidence
    assert "['" not in finding.evidence, finding.evidence


@pytest.mark.integration
def test_a_self_signed_certificate_for_another_name_is_untrusted_as_well_as_mismatched(
    runs: dict[str, CheckRun],
) -> None:
    run = runs["self_signed_wrong_host"]
    found = rules(run)
    assert {"TLS-CERT-UNTRUSTED", "TLS-CERT-HOSTNAME-MISMATCH"} <= found, sorted(found)
    assert grade(run) == "T"
