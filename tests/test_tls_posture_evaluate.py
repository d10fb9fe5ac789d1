"""tls_posture's pure judgement: rules, grade caps, A+, and unknown-is-never-no."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from checks.controls import controls_for
from checks.tls_posture.evaluate import evaluate
from checks.tls_posture.facts import (
    ChainFacts,
    ProtocolSupport,
    Suite,
    TlsPostureRaw,
    TlsVersion,
)
from checks.tls_posture.grade import Grade
from checks.tls_posture.params import TlsPostureParams
from tests.support.tls_facts import GCM, LEAF, NOW, clean

pytestmark = pytest.mark.unit

PARAMS = TlsPostureParams()


def with_protocol(
    facts: TlsPostureRaw, protocol: TlsVersion, supported: bool | None, *suites: Suite
) -> TlsPostureRaw:
    protocols = tuple(
        ProtocolSupport(protocol, supported, suites=suites) if p.protocol is protocol else p
        for p in facts.protocols
    )
    return replace(facts, protocols=protocols)


def judge(facts: TlsPostureRaw) -> tuple[set[str], str]:
    """Rules found (the TLS-GRADE explanation aside) and this scan's letter."""
    output = evaluate(facts, PARAMS, NOW)
    return {f.rule_id for f in output.findings} - {"TLS-GRADE"}, graded(facts).letter


def graded(facts: TlsPostureRaw) -> Grade:
    output = evaluate(facts, PARAMS, NOW)
    assert output.snapshot is not None
    return Grade.from_json(output.snapshot["scan_grade"])


def caps(facts: TlsPostureRaw) -> set[tuple[str, str]]:
    return {(cap.letter, cap.reason) for cap in graded(facts).caps}


def test_clean_intermediate_server_with_hsts_has_no_findings_and_grade_a_plus() -> None:
    rules, grade = judge(clean())
    assert rules == set()
    assert grade == "A+"


def test_without_hsts_the_grade_stays_a() -> None:
    rules, grade = judge(clean(hsts_max_age=None))
    assert rules == {"TLS-HSTS-MISSING"}
    assert grade == "A"


def test_short_hsts_is_low_and_blocks_a_plus() -> None:
    rules, grade = judge(clean(hsts_max_age=3600))
    assert (rules, grade) == ({"TLS-HSTS-SHORT"}, "A")


@pytest.mark.parametrize(
    ("protocol", "rule", "grade"),
    [
        (TlsVersion.SSL_2_0, "TLS-PROTOCOL-SSL2", "F"),
        (TlsVersion.SSL_3_0, "TLS-PROTOCOL-SSL3", "C"),  # with a CBC suite: POODLE
        (TlsVersion.TLS_1_0, "TLS-PROTOCOL-TLS10", "B"),
        (TlsVersion.TLS_1_1, "TLS-PROTOCOL-TLS11", "B"),
    ],
)
def test_legacy_protocols_are_findings_and_cap_the_grade(
    protocol: TlsVersion, rule: str, grade: str
) -> None:
    cbc = Suite(
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 128, ephemeral_kind="ECDH", ephemeral_size=256
    )
    rules, got = judge(with_protocol(clean(), protocol, True, cbc))
    assert rule in rules
    assert got == grade


def test_no_tls12_or_13_caps_at_c() -> None:
    facts = with_protocol(clean(), TlsVersion.TLS_1_2, False)
    facts = with_protocol(facts, TlsVersion.TLS_1_3, False)
    facts = with_protocol(
        facts,
        TlsVersion.TLS_1_0,
        True,
        Suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 128, ephemeral_kind="ECDH", ephemeral_size=256),
    )
    rules, grade = judge(facts)
    assert {"TLS-PROTOCOL-NO-TLS12", "TLS-PROTOCOL-NO-TLS13", "TLS-PROTOCOL-TLS10"} <= rules
    assert grade == "C"


@pytest.mark.parametrize(
    ("suite", "rule", "grade"),
    [
        (Suite("TLS_RSA_WITH_NULL_SHA256", 0), "TLS-CIPHER-NULL", "F"),
        (Suite("TLS_RSA_EXPORT_WITH_RC4_40_MD5", 40), "TLS-CIPHER-EXPORT", "F"),
        (Suite("TLS_DH_anon_WITH_AES_128_CBC_SHA", 128, anonymous=True), "TLS-CIPHER-ANON", "F"),
        (Suite("TLS_RSA_WITH_RC4_128_SHA", 128), "TLS-CIPHER-RC4", "C"),
        (Suite("TLS_RSA_WITH_DES_CBC_SHA", 56), "TLS-CIPHER-DES", "F"),
        (Suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 112), "TLS-CIPHER-3DES", "C"),
    ],
)
def test_weak_ciphers_are_findings(suite: Suite, rule: str, grade: str) -> None:
    rules, got = judge(with_protocol(clean(), TlsVersion.TLS_1_2, True, GCM, suite))
    assert rule in rules
    assert got == grade


def test_static_rsa_only_means_no_forward_secrecy_and_caps_b() -> None:
    static = Suite("TLS_RSA_WITH_AES_128_GCM_SHA256", 128)
    facts = with_protocol(clean(), TlsVersion.TLS_1_3, False)
    rules, grade = judge(with_protocol(facts, TlsVersion.TLS_1_2, True, static))
    assert "TLS-CIPHER-NO-FORWARD-SECRECY" in rules
    assert grade == "B"


def test_static_rsa_beside_ecdhe_is_a_low_finding() -> None:
    static = Suite("TLS_RSA_WITH_AES_128_GCM_SHA256", 128)
    rules, _ = judge(with_protocol(clean(), TlsVersion.TLS_1_2, True, GCM, static))
    assert "TLS-CIPHER-STATIC-RSA" in rules
    assert "TLS-CIPHER-NO-FORWARD-SECRECY" not in rules


def test_cbc_only_means_no_aead_a_warning_that_makes_a_an_a_minus() -> None:
    cbc = Suite(
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 128, ephemeral_kind="ECDH", ephemeral_size=256
    )
    facts = with_protocol(
        with_protocol(clean(), TlsVersion.TLS_1_3, False), TlsVersion.TLS_1_2, True, cbc
    )
    rules, grade = judge(facts)
    assert {"TLS-CIPHER-NO-AEAD", "TLS-CIPHER-CBC"} <= rules
    assert grade == "A-"
    assert caps(facts) == {("A-", "no AEAD cipher suite"), ("A-", "no TLS 1.3")}


@pytest.mark.parametrize(
    ("bits", "rule", "grade"), [(1024, "TLS-DH-WEAK", "B"), (512, "TLS-DH-INSECURE", "F")]
)
def test_small_dh_groups(bits: int, rule: str, grade: str) -> None:
    dhe = Suite(
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 128, ephemeral_kind="DH", ephemeral_size=bits
    )
    rules, got = judge(with_protocol(clean(), TlsVersion.TLS_1_2, True, GCM, dhe))
    assert rule in rules
    assert got == grade


@pytest.mark.parametrize(
    ("key_type", "bits", "grade", "cap"),
    [
        ("RSA", 1024, "B", ("B", "RSA certificate key of 1024 bits (below 2048)")),
        ("RSA", 768, "F", ("F", "RSA certificate key of 768 bits")),
        ("DSA", 512, "F", ("F", "DSA certificate key of 512 bits")),
        ("EC", 112, "F", ("F", "EC certificate key of 112 bits")),
        ("EC", 192, "A+", None),
    ],
)
def test_certificate_key_sizes_follow_the_guide(
    key_type: str, bits: int, grade: str, cap: tuple[str, str] | None
) -> None:
    leaf = replace(LEAF, key_type=key_type, key_size=bits)
    facts = clean(certificate=replace(clean().certificate, chain=(leaf,)))
    assert judge(facts)[1] == grade
    assert caps(facts) == ({cap} if cap else set())


def test_revoked_certificate_grades_t() -> None:
    certificate = replace(clean().certificate, ocsp_status="revoked")
    rules, grade = judge(clean(certificate=certificate))
    assert "TLS-CERT-REVOKED" in rules
    assert grade == "T"


def test_untrusted_chain_grades_t_and_mismatch_grades_m() -> None:
    untrusted = replace(
        clean().certificate,
        trusted=False,
        validation_error="unable to get local issuer certificate",
    )
    rules, grade = judge(clean(certificate=untrusted))
    assert ("TLS-CERT-UNTRUSTED" in rules, grade) == (True, "T")
    assert graded(clean(certificate=untrusted)).trust_letter == "A+"
    mismatch = replace(clean().certificate, hostname_matches=False)
    rules, grade = judge(clean(certificate=mismatch))
    assert ("TLS-CERT-HOSTNAME-MISMATCH" in rules, grade) == (True, "M")


def test_self_signed_is_named_as_such() -> None:
    self_signed = replace(
        clean().certificate, trusted=False, chain=(replace(LEAF, self_signed=True),)
    )
    output = evaluate(clean(certificate=self_signed), PARAMS, NOW)
    (untrusted,) = [f for f in output.findings if f.rule_id == "TLS-CERT-UNTRUSTED"]
    assert untrusted.subject == "self-signed"


def test_certificate_rules() -> None:
    long_lived = replace(
        LEAF, not_before=NOW - timedelta(days=10), not_after=NOW + timedelta(days=800)
    )
    certificate = replace(
        clean().certificate, chain=(long_lived,), sha1_in_chain=True, ocsp_status="revoked"
    )
    rules, _ = judge(clean(certificate=certificate))
    assert {"TLS-CERT-LIFETIME", "TLS-CERT-SHA1", "TLS-CERT-REVOKED"} <= rules


@pytest.mark.parametrize(
    ("change", "rule", "grade"),
    [
        ({"compression": True}, "TLS-COMPRESSION", "C"),
        ({"secure_renegotiation": False}, "TLS-RENEGOTIATION-INSECURE", "F"),
        ({"client_renegotiation": True}, "TLS-RENEGOTIATION-CLIENT", "A-"),
        ({"heartbleed": True}, "TLS-HEARTBLEED", "F"),
        ({"robot": "vulnerable_strong"}, "TLS-ROBOT", "F"),
        ({"ccs_injection": True}, "TLS-CCS-INJECTION", "F"),
        # findings, not reasons to withhold A+ (the guide's A+ is about HSTS and warnings)
        ({"extended_master_secret": False}, "TLS-EMS-MISSING", "A+"),
        ({"early_data": True}, "TLS-EARLY-DATA", "A+"),
        ({"mozilla_deviations": ("ciphers: too many",)}, "TLS-MOZILLA-PROFILE", "A+"),
    ],
)
def test_protocol_features_and_implementation_flaws(change: dict, rule: str, grade: str) -> None:  # type: ignore[type-arg]
    rules, got = judge(clean(**change))
    assert rule in rules
    assert got == grade


def test_missing_fallback_scsv_only_matters_with_legacy_protocols() -> None:
    assert "TLS-FALLBACK-SCSV-MISSING" not in judge(clean(fallback_scsv=False))[0]
    cbc = Suite(
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 128, ephemeral_kind="ECDH", ephemeral_size=256
    )
    legacy = with_protocol(clean(fallback_scsv=False), TlsVersion.TLS_1_0, True, cbc)
    assert "TLS-FALLBACK-SCSV-MISSING" in judge(legacy)[0]


def test_unknown_protocol_support_is_never_treated_as_no_and_makes_the_grade_provisional() -> None:
    unknown_tls10 = with_protocol(
        clean(incomplete=("TLSv1.0: 3 handshake(s) timed out",)), TlsVersion.TLS_1_0, None
    )
    rules, _grade = judge(unknown_tls10)
    assert "TLS-SCAN-INCOMPLETE" in rules
    assert "TLS-PROTOCOL-TLS10" not in rules  # not claimed either way
    result = graded(unknown_tls10)
    assert (result.letter, result.provisional, result.undetermined) == ("A", True, ("TLSv1.0",))


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"heartbleed": None}, "Heartbleed"),
        ({"robot": None}, "ROBOT"),
        ({"ccs_injection": None}, "CCS injection"),
        ({"compression": None}, "compression"),
        ({"secure_renegotiation": None}, "secure renegotiation"),
        # a cap (A-) left out as unknown: without the mark the grade would read better
        ({"client_renegotiation": None}, "client renegotiation"),
    ],
)
def test_an_untested_flaw_makes_the_grade_provisional_not_f_and_not_clean(
    change: dict,
    what: str,  # type: ignore[type-arg]
) -> None:
    facts = clean(**change, incomplete=(f"{what}: CONNECTIVITY_ISSUE",))
    result = graded(facts)
    assert (result.letter, result.provisional, result.undetermined) == ("A", True, (what,))


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        (None, "certificate could not be read: trust not determined"),
        (replace(clean().certificate, trusted=None), "certificate trust not determined"),  # type: ignore[type-var]
    ],
)
def test_a_certificate_that_could_not_be_judged_caps_the_provisional_grade_at_t(
    certificate: ChainFacts | None, reason: str
) -> None:
    facts = clean(certificate=certificate, incomplete=("certificate: CONNECTIVITY_ISSUE",))
    result = graded(facts)
    assert (result.letter, result.provisional) == ("T", True)
    assert ("T", reason) in {(cap.letter, cap.reason) for cap in result.caps}


def test_a_provisional_grade_never_replaces_the_last_complete_one_in_metrics() -> None:
    complete = graded(
        with_protocol(
            clean(), TlsVersion.TLS_1_2, True, GCM, Suite("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 112)
        )
    )
    assert complete.letter == "C"
    unknown = with_protocol(
        clean(incomplete=("TLSv1.2: timed out",), last_complete_grade=complete.to_json()),
        TlsVersion.TLS_1_2,
        None,
    )
    output = evaluate(unknown, PARAMS, NOW)
    assert output.snapshot is not None
    assert output.snapshot["grade"]["letter"] == "C"  # the reported one
    assert output.snapshot["scan_grade"]["provisional"] is True
    assert output.snapshot["last_complete_grade"]["letter"] == "C"
    values = {(o.name, tuple(o.labels.items())): o.value for o in output.observations}
    assert values[("tls_grade_info", (("grade", "C"),))] == 1.0
    assert values[("tls_grade_provisional", ())] == 1.0
    (explained,) = [f for f in output.findings if f.rule_id == "TLS-GRADE"]
    assert explained.title.startswith("TLS grade C: ")
    # a complete scan replaces it at once
    fixed = evaluate(clean(last_complete_grade=complete.to_json()), PARAMS, NOW)
    assert fixed.snapshot is not None
    assert fixed.snapshot["grade"]["letter"] == "A+"


def test_profile_compliance_is_its_own_verdict() -> None:
    def compliant(facts: TlsPostureRaw) -> float | None:
        output = evaluate(facts, PARAMS, NOW)
        assert output.snapshot is not None
        values = [o.value for o in output.observations if o.name == "tls_profile_compliant"]
        assert output.snapshot["profile_compliant"] == (bool(values[0]) if values else None)
        return values[0] if values else None

    assert compliant(clean()) == 1.0
    assert compliant(clean(mozilla_deviations=("ciphers: x",))) == 0.0
    assert compliant(clean(mozilla_deviations=None)) is None


def test_ssl3_as_the_best_protocol_fails_and_beside_tls12_without_cbc_caps_b() -> None:
    cbc = Suite("TLS_RSA_WITH_AES_128_CBC_SHA", 128)
    rc4 = Suite("TLS_RSA_WITH_RC4_128_SHA", 128)
    only_ssl3 = clean(
        protocols=tuple(
            ProtocolSupport(
                p, p is TlsVersion.SSL_3_0, suites=(cbc,) if p is TlsVersion.SSL_3_0 else ()
            )
            for p in TlsVersion
        )
    )
    assert judge(only_ssl3)[1] == "F"
    assert ("F", "SSL 3.0 is the best protocol offered (POODLE)") in caps(only_ssl3)
    beside = with_protocol(clean(), TlsVersion.SSL_3_0, True, rc4)
    assert ("B", "SSL 3.0 offered") in caps(beside)
    assert ("B", "RC4 offered") in caps(beside)
    assert judge(beside)[1] == "B"


def test_an_incomplete_chain_is_a_finding_and_caps_b_not_t() -> None:
    certificate = replace(clean().certificate, chain_incomplete=True)
    facts = clean(certificate=certificate)
    rules, grade = judge(facts)
    assert "TLS-CERT-INCOMPLETE-CHAIN" in rules
    assert "TLS-CERT-UNTRUSTED" not in rules
    assert grade == "B"
    assert caps(facts) == {("B", "incomplete chain (the server does not send its intermediate)")}


def test_no_tls13_alone_makes_a_an_a_minus() -> None:
    facts = with_protocol(clean(), TlsVersion.TLS_1_3, False)
    assert judge(facts)[1] == "A-"
    assert caps(facts) == {("A-", "no TLS 1.3")}


def test_observations_report_protocols_grade_and_suites() -> None:
    output = evaluate(with_protocol(clean(), TlsVersion.TLS_1_0, None), PARAMS, NOW)
    by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
    for o in output.observations:
        by_name.setdefault(o.name, []).append((dict(o.labels), o.value))
    enabled = {labels["protocol"]: value for labels, value in by_name["tls_protocol_enabled"]}
    assert enabled["TLSv1.3"] == 1.0
    assert enabled["SSLv2"] == 0.0
    assert "TLSv1.0" not in enabled  # unknown is not exported as 0
    assert by_name["tls_grade_score"][0][1] > 80
    suites = {labels["strength"]: value for labels, value in by_name["tls_cipher_suites"]}
    assert suites == {"insecure": 0, "weak": 0, "secure": 3}


def test_the_caps_and_score_parts_are_label_free_metrics() -> None:
    facts = with_protocol(
        with_protocol(clean(), TlsVersion.TLS_1_3, False), TlsVersion.TLS_1_0, True
    )
    result = graded(facts)
    values = {o.name: o.value for o in evaluate(facts, PARAMS, NOW).observations if not o.labels}
    assert {(c.letter, c.reason) for c in result.caps} == {
        ("B", "TLSv1.0 offered"),
        ("A-", "no TLS 1.3"),
    }
    assert values["tls_grade_caps"] == 2.0
    assert values["tls_grade_score"] == float(result.score)
    assert values["tls_grade_protocol_score"] == float(result.protocol_score)
    assert values["tls_grade_key_exchange_score"] == float(result.key_exchange_score)
    assert values["tls_grade_cipher_score"] == float(result.cipher_score)
    assert values["tls_grade_provisional"] == 0.0


def test_every_tls_rule_names_its_controls() -> None:
    facts = clean(
        compression=True,
        heartbleed=True,
        hsts_max_age=None,
        early_data=True,
        mozilla_deviations=("x",),
        incomplete=("y",),
    )
    for finding in evaluate(facts, PARAMS, NOW).findings:
        assert controls_for(finding.rule_id), finding.rule_id


def test_facts_round_trip_through_json() -> None:
    facts = with_protocol(clean(), TlsVersion.TLS_1_0, None)
    assert TlsPostureRaw.from_json(facts.to_json()) == facts


def test_a_trust_verdict_that_could_not_be_made_is_unknown_neither_trusted_nor_untrusted() -> None:
    # e.g. a trust store that could not be read, or a validator that stopped early
    unknown = replace(clean().certificate, trusted=None)
    facts = clean(certificate=unknown)

    output = evaluate(facts, PARAMS, NOW)
    grade = graded(facts)

    assert "TLS-CERT-UNTRUSTED" not in {f.rule_id for f in output.findings}
    # an untrusted finding from an earlier scan is neither resolved nor reopened by this one
    assert {"self-signed", "unknown root", "expired"} <= set(output.undetermined)
    assert grade.provisional
    assert "certificate trust" in grade.undetermined
