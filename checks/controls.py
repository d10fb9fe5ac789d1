"""Which requirements each rule gives evidence for (see shared CONTROLS.md). Data only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Control:
    framework: str
    control: str
    title: str

    def __str__(self) -> str:
        return f"{self.framework} {self.control}"


_CERTIFICATE_LIFECYCLE = (
    Control("RFC 7525", "6.2", "certificates must be valid"),
    Control("NIST SP 800-53", "SC-17", "public key infrastructure certificates"),
    Control("NIST SP 800-53", "SC-12", "cryptographic key establishment and management"),
    Control("ISO/IEC 27017", "9.2", "key management"),
    Control("NIST SP 800-63B", "6", "authenticator lifecycle management"),
)

_LEGACY_PROTOCOLS = (
    Control("RFC 7525", "3.1.1", "SSL/TLS protocol versions"),
    Control("NIST SP 800-53", "SC-8", "transmission confidentiality and integrity"),
    Control("NIST SP 800-53", "SC-13", "cryptographic protection"),
    Control("PCI DSS", "4.2.1", "strong cryptography for PAN in transit"),
    Control("HIPAA", "45 CFR 164.312(e)(1)", "transmission security"),
    Control("ISO/IEC 27017", "10.1", "cryptographic controls"),
    Control("OWASP", "Transport Layer Protection Cheat Sheet", "protocols"),
)
_WEAK_CIPHERS = (
    Control("RFC 7525", "4.1-4.2", "cipher suite recommendations"),
    Control("NIST SP 800-53", "SC-13", "cryptographic protection"),
    Control("PCI DSS", "4.2.1", "strong cryptography for PAN in transit"),
    Control("OWASP", "TLS Cipher String Cheat Sheet", "cipher suites"),
)
_WEAK_KEYS = (
    Control("RFC 7525", "4.3, 6", "public key lengths"),
    Control("NIST SP 800-53", "SC-12", "cryptographic key establishment and management"),
    Control("NIST SP 800-53", "SC-17", "public key infrastructure certificates"),
)
_UNTRUSTED = (
    Control("RFC 7525", "6.2", "certificate validation"),
    Control("NIST SP 800-53", "SC-17", "public key infrastructure certificates"),
    Control("NIST SP 800-53", "IA-5(2)", "public key-based authentication"),
)
_PROTOCOL_FEATURES = (
    Control("RFC 7525", "3.3, 3.5, 3.6", "compression, renegotiation, fallback, 0-RTT"),
    Control("OWASP", "Transport Layer Protection Cheat Sheet", "server configuration"),
)
_IMPLEMENTATION_FLAWS = (
    Control("RFC 7525", "12", "keep TLS implementations patched"),
    Control("NIST SP 800-53", "SI-2", "flaw remediation"),
)
_HSTS = (
    Control("RFC 9110", "12", "use HTTPS"),
    Control("OWASP", "HTTP Strict Transport Security Cheat Sheet", "HSTS"),
    Control("OWASP", "HTTP Security Response Headers Cheat Sheet", "security headers"),
)
_POSTURE_SCAN = (
    Control("RFC 7525", "7", "use scanning tools"),
    Control("NIST SP 800-137", "5.3", "automated monitoring"),
    Control("NIST SP 800-53", "CA-7", "continuous monitoring"),
    Control("NIST SP 800-53", "RA-5", "vulnerability monitoring and scanning"),
)

_DRIFT = (
    Control("NIST SP 800-128", "3.1.2", "configuration baselines"),
    Control("NIST SP 800-128", "3.4.1", "configuration monitoring"),
    Control("NIST SP 800-128", "3.8.2", "configuration audits"),
    Control("NIST SP 800-53", "CM-2", "baseline configuration"),
    Control("NIST SP 800-53", "CM-3", "configuration change control"),
    Control("NIST SP 800-53", "CM-6", "configuration settings"),
    Control("PCI DSS", "11.5.2", "change-detection mechanism"),
    Control("OWASP API Top 10", "API7", "security misconfiguration"),
)
_DRIFT_MONITORING = (
    Control("NIST SP 800-128", "3.4.1", "configuration monitoring"),
    Control("NIST SP 800-137", "5.3", "automated monitoring"),
    Control("NIST SP 800-53", "CA-7", "continuous monitoring"),
)
_PATCH_VULNERABLE = (
    Control("NIST SP 800-40", "3.2", "identify vulnerable software"),
    Control("NIST SP 800-40", "3.8", "prioritise by severity"),
    Control("NIST SP 800-53", "SI-2", "flaw remediation"),
    Control("NIST SP 800-53", "RA-5", "vulnerability monitoring and scanning"),
    Control("OWASP Top 10", "A06", "vulnerable and outdated components"),
    Control("SANS CWE", "CWE-937", "using components with known vulnerabilities"),
    Control("PCI DSS", "6.3.3", "known vulnerabilities patched"),
)
_PATCH_OVERDUE = (
    Control("NIST SP 800-40", "3.5", "timely deployment"),
    Control("NIST SP 800-40", "3.6", "verification and reporting"),
    Control("PCI DSS", "6.3.3", "critical patches within one month"),
    Control("NIST SP 800-53", "SI-2", "flaw remediation"),
)
_PATCH_UNSUPPORTED = (
    Control("NIST SP 800-53", "SA-22", "unsupported system components"),
    Control("NIST SP 800-53", "SI-2", "flaw remediation"),
    Control("OWASP API Top 10", "API7", "security misconfiguration"),
)

_INVENTORY = (
    Control("FISMA", "44 U.S.C. 3554", "inventory of information systems, APIs included"),
    Control("NIST SP 800-53", "CM-8", "system component inventory"),
    Control("NIST SP 800-53", "PM-5", "system inventory"),
    Control("NIST CSF", "ID.AM", "asset management"),
    Control("ISO/IEC 27017", "8.1", "responsibility for assets"),
)
_SHADOW_ZOMBIE = (
    Control("OWASP API Top 10", "API9", "improper inventory management"),
    Control("OWASP", "Attack Surface Analysis Cheat Sheet", "minimise endpoints"),
    Control("NIST SP 800-53", "CM-8", "system component inventory"),
)
_INVENTORY_AUTH = (
    Control("OWASP API Top 10", "API2", "broken authentication"),
    Control("OWASP API Top 10", "API5", "broken function level authorization"),
    Control("NIST SP 800-53", "AC-3", "access enforcement"),
    Control("NIST SP 800-53", "IA-2", "identification and authentication"),
)
_MONITORING_GAP = (
    Control("NIST SP 800-137", "5.3", "automated monitoring"),
    Control("NIST SP 800-53", "CA-7", "continuous monitoring"),
    Control("NIST SP 800-53", "SI-4", "system monitoring"),
)
# auth_posture (issue 23): authentication enforced, token signing keys, rate limits
_AUTH_ENFORCED = (
    Control("NIST SP 800-53", "AC-3", "access enforcement"),
    Control("NIST SP 800-53", "IA-2", "identification and authentication"),
    Control("OWASP API Top 10", "API2", "broken authentication"),
    Control("OWASP API Top 10", "API5", "broken function level authorization"),
)
_AUTH_ERRORS = (
    Control("RFC 9110", "11.6.1", "WWW-Authenticate on 401"),
    Control("RFC 6750", "3", "bearer token error responses"),
    Control("NIST SP 800-53", "IA-2", "identification and authentication"),
    Control("NIST SP 800-53", "SI-11", "error handling"),
)
_TOKEN_KEYS = (
    Control("NIST SP 800-53", "SC-12", "cryptographic key establishment and management"),
    Control("NIST SP 800-53", "IA-5", "authenticator management"),
    Control("RFC 7517", "4-5", "JSON Web Key and JWK Set"),
    Control("RFC 8725", "3.2, 3.5", "JWT best current practices: algorithms, key strength"),
    Control("OWASP API Top 10", "API2", "broken authentication"),
)
_TOKEN_CRYPTO = (
    Control("NIST SP 800-53", "SC-13", "cryptographic protection"),
    *_TOKEN_KEYS,
)
_OIDC_PROVIDER = (
    Control("OpenID Connect Discovery 1.0", "3, 4.3", "provider metadata and issuer"),
    Control("NIST SP 800-53", "IA-2", "identification and authentication"),
    Control("NIST SP 800-53", "IA-5", "authenticator management"),
    Control("NIST SP 800-53", "SC-13", "cryptographic protection"),
)
_RATE_LIMITS = (
    Control("OWASP API Top 10", "API4", "unrestricted resource consumption"),
    Control("NIST SP 800-53", "SC-5", "denial-of-service protection"),
    Control("RFC 6585", "4", "429 Too Many Requests"),
)
_CHECK_FAILING = (
    *_MONITORING_GAP,
    Control("NIST SP 800-137", "5.4", "respond to findings"),
    Control("NIST CSF", "DE.CM", "security continuous monitoring"),
    Control("NIST SP 800-53", "IR-6", "incident reporting"),
)
_INVENTORY_BREAKING = (
    Control("NIST SP 800-128", "3.3.4", "change control with impact analysis"),
    Control("RFC 9110", "9, 15", "method and status code semantics"),
)

_HTTP_MISCONFIGURATION = (
    Control("OWASP API Top 10", "API8", "security misconfiguration"),
    Control("NIST SP 800-53", "CM-6", "configuration settings"),
    Control("OWASP", "REST Security Cheat Sheet", "security headers"),
)
_HTTP_TRANSPORT = (
    Control("NIST SP 800-53", "SC-8", "transmission confidentiality and integrity"),
    Control("RFC 9110", "4.2.2, 17", "https URIs; security considerations"),
    Control("RFC 6797", "6.1, 8.1", "HTTP Strict Transport Security"),
    Control("OWASP API Top 10", "API8", "security misconfiguration"),
)
_HTTP_ERRORS = (
    Control("NIST SP 800-53", "SI-11", "error handling"),
    Control("OWASP API Top 10", "API8", "security misconfiguration"),
    Control("SANS CWE", "CWE-209", "information exposure through an error message"),
)
_HTTP_FUNCTIONS = (
    Control("NIST SP 800-53", "CM-7", "least functionality"),
    Control("RFC 9110", "9.3.8", "TRACE"),
    Control("OWASP API Top 10", "API8", "security misconfiguration"),
)
_HTTP_SESSIONS = (
    Control("NIST SP 800-53", "SC-23", "session authenticity"),
    Control("NIST SP 800-53", "SC-8", "transmission confidentiality and integrity"),
    Control("RFC 6265bis", "4.1.2, 4.1.3", "cookie attributes and name prefixes"),
    Control("OWASP API Top 10", "API8", "security misconfiguration"),
)
_HTTP_CORS = (
    Control("Fetch Standard", "CORS protocol", "cross-origin resource sharing"),
    Control("NIST SP 800-53", "AC-4", "information flow enforcement"),
    Control("NIST SP 800-53", "CM-6", "configuration settings"),
    Control("OWASP API Top 10", "API8", "security misconfiguration"),
)
_HTTP_DISCLOSURE_POLICY = (
    Control("RFC 9116", "2.5", "security.txt fields"),
    Control("NIST SP 800-53", "RA-5(11)", "public disclosure program"),
)

# Longest matching rule-id prefix wins.
CONTROLS_BY_RULE_PREFIX: Mapping[str, tuple[Control, ...]] = {
    "CERT-": _CERTIFICATE_LIFECYCLE,
    "TLS-PROTOCOL-": _LEGACY_PROTOCOLS,
    "TLS-NOT-OFFERED": _LEGACY_PROTOCOLS,  # no TLS at all: the transport controls, failed
    "TLS-CIPHER-": _WEAK_CIPHERS,
    "TLS-DH-": _WEAK_KEYS,
    "TLS-KEY-": _WEAK_KEYS,
    "TLS-CERT-SHA1": _WEAK_KEYS,
    "TLS-CERT-UNTRUSTED": _UNTRUSTED,
    "TLS-CERT-HOSTNAME-MISMATCH": _UNTRUSTED,
    "TLS-CERT-REVOKED": _UNTRUSTED,
    "TLS-CERT-INCOMPLETE-CHAIN": _UNTRUSTED,
    "TLS-CERT-": _CERTIFICATE_LIFECYCLE,
    "TLS-COMPRESSION": _PROTOCOL_FEATURES,
    "TLS-RENEGOTIATION-": _PROTOCOL_FEATURES,
    "TLS-FALLBACK-SCSV-": _PROTOCOL_FEATURES,
    "TLS-EARLY-DATA": _PROTOCOL_FEATURES,
    "TLS-EMS-": _PROTOCOL_FEATURES,
    "TLS-HEARTBLEED": _IMPLEMENTATION_FLAWS,
    "TLS-ROBOT": _IMPLEMENTATION_FLAWS,
    "TLS-CCS-INJECTION": _IMPLEMENTATION_FLAWS,
    "TLS-HSTS-": _HSTS,
    "TLS-MOZILLA-PROFILE": _POSTURE_SCAN + _WEAK_CIPHERS,
    "TLS-SCAN-": _POSTURE_SCAN,
    "TLS-GRADE": _POSTURE_SCAN,
    "DRIFT-": _DRIFT,
    "DRIFT-SOURCE-UNAVAILABLE": _DRIFT_MONITORING,
    "PATCH-VULNERABLE": _PATCH_VULNERABLE + _PATCH_OVERDUE[:2],  # overdue is a state of it
    "PATCH-EOL": _PATCH_UNSUPPORTED,
    "PATCH-OUTDATED": _PATCH_UNSUPPORTED,
    "PATCH-VERSION-DISCLOSED": _PATCH_UNSUPPORTED,
    "PATCH-": _PATCH_VULNERABLE,
    "PATCH-SOURCE-UNAVAILABLE": (*_MONITORING_GAP, _PATCH_OVERDUE[1]),
    "PATCH-ADVISORIES-STALE": (*_MONITORING_GAP, _PATCH_VULNERABLE[0], _PATCH_VULNERABLE[3]),
    "PATCH-UNDETERMINED": (*_MONITORING_GAP, _PATCH_VULNERABLE[0], _PATCH_VULNERABLE[3]),
    "INVENTORY-": _INVENTORY,
    "INVENTORY-SHADOW-ENDPOINT": _SHADOW_ZOMBIE,
    "INVENTORY-ZOMBIE-ENDPOINT": _SHADOW_ZOMBIE,
    "INVENTORY-SECURITY-": _INVENTORY_AUTH,
    "INVENTORY-UNAUTHENTICATED-OPERATION": _INVENTORY_AUTH,
    "INVENTORY-BREAKING-CHANGE": _INVENTORY_BREAKING,
    "INVENTORY-OPERATION-REMOVED": _INVENTORY_BREAKING + _INVENTORY,
    "INVENTORY-LOG-UNAVAILABLE": _MONITORING_GAP + _SHADOW_ZOMBIE[:1],
    "INVENTORY-TRAFFIC-UNRELIABLE": _MONITORING_GAP + _SHADOW_ZOMBIE[:1],
    "AUTH-": _AUTH_ENFORCED,
    "AUTH-CHALLENGE-MISSING": _AUTH_ERRORS,
    "AUTH-ERROR-LEAKS": _AUTH_ERRORS,
    "AUTH-OPERATIONS-UNVERIFIED": _MONITORING_GAP + _AUTH_ENFORCED[:2],
    "AUTH-NO-SECURED-OPERATIONS": _MONITORING_GAP + _AUTH_ENFORCED[:2],
    "AUTH-ALL-NOT-FOUND": _MONITORING_GAP + _AUTH_ENFORCED[:2],
    "AUTH-SPEC-SECURITY-INVALID": _MONITORING_GAP + _AUTH_ENFORCED[:2],
    "AUTH-CREDENTIALS-REJECTED": (*_MONITORING_GAP, _TOKEN_KEYS[1]),
    "JWKS-": _TOKEN_KEYS,
    "JWKS-WEAK-KEY": _TOKEN_CRYPTO,
    "JWKS-CURVE-NOT-ALLOWED": _TOKEN_CRYPTO,
    "JWKS-ALG-": _TOKEN_CRYPTO,
    "JWKS-X5C-": (*_TOKEN_KEYS, Control("NIST SP 800-53", "SC-17", "PKI certificates")),
    "OIDC-": _OIDC_PROVIDER,
    "RATELIMIT-": _RATE_LIMITS,
    "RATELIMIT-BURST-NOT-SENT": _MONITORING_GAP + _RATE_LIMITS[:1],
    "RATELIMIT-BURST-INCOMPLETE": _MONITORING_GAP + _RATE_LIMITS[:1],
    "HTTP-": _HTTP_MISCONFIGURATION,
    "HTTP-PLAINTEXT-": _HTTP_TRANSPORT,
    "HTTP-HTTPS-UNAVAILABLE": _HTTP_TRANSPORT,
    "HTTP-HSTS-": _HTTP_TRANSPORT,
    "HTTP-ERROR-": _HTTP_ERRORS,
    "HTTP-TRACE-": _HTTP_FUNCTIONS,
    "HTTP-SOFTWARE-DISCLOSED": _HTTP_FUNCTIONS[:1] + _PATCH_UNSUPPORTED[2:],
    "HTTP-POSTURE-GRADE": _HTTP_MISCONFIGURATION + _POSTURE_SCAN[1:3],
    "HTTP-PROBE-BUDGET-EXHAUSTED": _MONITORING_GAP,
    "HTTP-PROBE-FAILED": _MONITORING_GAP,
    "HTTP-INVENTORY-UNAVAILABLE": _MONITORING_GAP,
    "CORS-": _HTTP_CORS,
    "COOKIE-": _HTTP_SESSIONS,
    "SECTXT-": _HTTP_DISCLOSURE_POLICY,
    # the alerting "check failing" rule: the monitoring itself could not evaluate a target
    "CHECK-FAILING": _CHECK_FAILING,
}


def controls_for(rule_id: str) -> tuple[Control, ...]:
    """The controls a rule gives evidence for; empty for a rule with no mapping."""
    matches = [prefix for prefix in CONTROLS_BY_RULE_PREFIX if rule_id.startswith(prefix)]
    if not matches:
        return ()
    return CONTROLS_BY_RULE_PREFIX[max(matches, key=len)]


def controls_document(rule_id: str) -> list[dict[str, str]]:
    """The controls of `rule_id` as JSON objects (framework, control, title)."""
    return [
        {"framework": c.framework, "control": c.control, "title": c.title}
        for c in controls_for(rule_id)
    ]


# Which check's rules start with each prefix (CHECK-FAILING is the monitoring itself).
CHECK_OF_RULE_PREFIX: Mapping[str, str] = {
    "CERT-": "cert_expiry",
    "TLS-": "tls_posture",
    "PATCH-": "patch_level",
    "DRIFT-": "config_drift",
    "INVENTORY-": "api_inventory",
    "AUTH-": "auth_posture",
    "JWKS-": "auth_posture",
    "OIDC-": "auth_posture",
    "RATELIMIT-": "auth_posture",
    "HTTP-": "http_posture",
    "CORS-": "http_posture",
    "COOKIE-": "http_posture",
    "SECTXT-": "http_posture",
}


def controls_of_check(check: str) -> tuple[Control, ...]:
    """Every control some rule of `check` gives evidence for (what a run of it covers)."""
    seen: dict[tuple[str, str], Control] = {}
    for prefix, controls in CONTROLS_BY_RULE_PREFIX.items():
        owner = next((c for p, c in CHECK_OF_RULE_PREFIX.items() if prefix.startswith(p)), None)
        if owner == check:
            for control in controls:
                seen.setdefault((control.framework, control.control), control)
    return tuple(seen.values())
