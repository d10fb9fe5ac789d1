"""Pure audit of a JWK Set (RFC 7517/7518/8037, RFC 8725 §3.2/§3.5, OIDC Core §10.1): the
keys' types, sizes, curves, algorithms, private members, ids, uses, x5c certificates and
ages. Keys are read with joserfc; key facts come from `cryptography`."""

from __future__ import annotations

import base64
import binascii
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from checks.auth_posture.params import AuthPostureParams
from monitor.model import Finding, Observation, Severity

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth")
_ALGS_BY_KTY = {
    "RSA": ("RS", "PS", "RSA"),
    "EC": ("ES", "ECDH-ES"),
    "OKP": ("EdDSA", "Ed25519", "Ed448", "ECDH-ES"),
}
# JOSE-registered curves of 128-bit security or more (RFC 7518, 8037, 8812)
STRONG_CURVES = frozenset(
    {"P-256", "P-384", "P-521", "Ed25519", "Ed448", "X25519", "X448", "secp256k1"}
)
MAX_KID_SERIES = 20  # jwks_key_age_seconds series per target (kid is server-controlled)
MAX_KID_LABEL = 64  # characters of a kid kept in its label
# the JWS/JWE algorithm names registered by RFC 7518, 8037, 8812 and 9864: the alg label's values
JOSE_ALGS = frozenset(
    {
        *(f"{family}{bits}" for family in ("HS", "RS", "PS", "ES") for bits in (256, 384, 512)),
        "ES256K",
        "EdDSA",
        "Ed25519",
        "Ed448",
        "none",
        "RSA1_5",
        "RSA-OAEP",
        "RSA-OAEP-256",
        "RSA-OAEP-384",
        "RSA-OAEP-512",
        "A128KW",
        "A192KW",
        "A256KW",
        "dir",
        "ECDH-ES",
        "ECDH-ES+A128KW",
        "ECDH-ES+A192KW",
        "ECDH-ES+A256KW",
        "A128GCMKW",
        "A192GCMKW",
        "A256GCMKW",
        "PBES2-HS256+A128KW",
        "PBES2-HS384+A192KW",
        "PBES2-HS512+A256KW",
    }
)
_CURVE_OF_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}
_NOT_MATERIAL = frozenset({"use", "key_ops", "alg", "kid", "x5c", "x5t", "x5t#S256", "x5u"})
_SIGN_OPS = frozenset({"sign", "verify"})
_ENCRYPT_OPS = frozenset({"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"})


@dataclass(slots=True)
class KeyAudit:
    findings: list[Finding] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    first_seen: dict[str, datetime] = field(default_factory=dict)
    keys: list[dict[str, Any]] = field(default_factory=list)  # the snapshot's key facts
    ages: dict[str, float] = field(default_factory=dict)  # kid label -> oldest key's age
    algs: Counter[str] = field(default_factory=Counter)  # alg label -> keys
    age_series_dropped: int = 0  # kids past MAX_KID_SERIES: no jwks_key_age_seconds series

    def add(self, other: KeyAudit) -> None:
        """Fold the audit of another JWK Set into this one (observations come after)."""
        self.findings.extend(other.findings)
        self.first_seen.update(other.first_seen)
        self.keys.extend(other.keys)
        for kid, age in other.ages.items():
            self.ages[kid] = max(self.ages.get(kid, 0.0), age)
        self.algs.update(other.algs)

    def observe(self) -> None:
        """The key metrics, from every set folded in. kid and alg come from the server: the
        age series are capped (the oldest keys kept; keys sharing a kid are one series, the
        older's age), and algs outside the JOSE registry count as "other"."""
        by_age = sorted(self.ages.items(), key=lambda item: (-item[1], item[0]))
        self.observations = [
            Observation("jwks_key_age_seconds", age, {"kid": kid})
            for kid, age in by_age[:MAX_KID_SERIES]
        ]
        self.observations.extend(
            Observation("jwks_keys", float(count), {"alg": alg})
            for alg, count in sorted(self.algs.items())
        )
        self.age_series_dropped = max(0, len(by_age) - MAX_KID_SERIES)


def _finding(
    rule: str, severity: Severity, title: str, subject: str, evidence: str, fix: str
) -> Finding:
    return Finding(rule, severity, title, subject, evidence, fix)


def audit_key_set(
    url: str,
    document: Any,
    params: AuthPostureParams,
    now: datetime,
    first_seen: dict[str, datetime],
) -> KeyAudit:
    result = KeyAudit()
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        result.findings.append(
            _finding(
                "JWKS-INVALID",
                Severity.HIGH,
                "The JWK Set is not a JSON object with a 'keys' array",
                url,
                f"{url} answered {type(document).__name__}, not {{'keys': [...]}} (RFC 7517 §5)",
                "Publish the signing keys as a JWK Set document.",
            )
        )
        return result
    if not keys:
        result.findings.append(
            _finding(
                "JWKS-EMPTY",
                Severity.HIGH,
                "The JWK Set publishes no keys",
                url,
                f"{url} answered a JWK Set with an empty 'keys' array: verifiers cannot check "
                "any token's signature",
                "Publish the current signing keys (and their successors during a rotation).",
            )
        )
        return result
    labels = [_label(key, index) for index, key in enumerate(keys)]
    for index, key in enumerate(keys):
        _audit_key(key, labels[index], url, params, now, first_seen, result)
    _set_rules(keys, labels, url, result)
    result.algs.update(_alg_label(key.get("alg")) for key in keys if isinstance(key, dict))
    result.observe()
    return result


def _alg_label(alg: Any) -> str:
    if alg is None or alg == "":
        return "unspecified"
    return alg if isinstance(alg, str) and alg in JOSE_ALGS else "other"


def _label(key: Any, index: int) -> str:
    """How a key is named in subjects, evidence and metric labels: its kid (server-chosen,
    so cut to MAX_KID_LABEL characters), else its position."""
    if isinstance(key, dict) and isinstance(key.get("kid"), str) and key["kid"]:
        return str(key["kid"])[:MAX_KID_LABEL]
    return f"#{index}"


def _audit_key(
    key: Any,
    label: str,
    url: str,
    params: AuthPostureParams,
    now: datetime,
    first_seen: dict[str, datetime],
    result: KeyAudit,
) -> None:
    subject = f"kid={label}"
    add = result.findings.append
    if not isinstance(key, dict):
        add(_unreadable(subject, "an entry of 'keys' is not a JSON object"))
        return
    kty = str(key.get("kty"))
    alg = key.get("alg")
    private = [member for member in PRIVATE_MEMBERS if member in key]
    if private:
        add(
            _finding(
                "JWKS-PRIVATE-KEY-EXPOSED",
                Severity.CRITICAL,
                "The public JWK Set publishes private key material",
                subject,
                f"{kty} key {label} at {url} carries the private member(s) "
                f"{', '.join(private)} (RFC 7518 §6.2.2, §6.3.2): anyone can sign tokens",
                "Remove the key from the set, revoke it, and rotate to a new key pair whose "
                "private part never leaves the signer.",
            )
        )
    if kty == "oct" or "k" in key:
        add(
            _finding(
                "JWKS-SYMMETRIC-KEY",
                Severity.CRITICAL,
                "The public JWK Set publishes a symmetric (shared secret) key",
                subject,
                f"key {label} at {url} is kty={kty} with member 'k' (RFC 7518 §6.4): the "
                "secret that signs HS* tokens is public",
                "Remove the key and rotate the secret; sign tokens with an asymmetric key.",
            )
        )
    if isinstance(alg, str):
        _alg_rules(alg, kty, key.get("crv"), subject, label, result)
    _strength_rules(key, kty, subject, label, params, result)
    _use_rules(key, subject, label, result)
    thumbprint, public = _import(key, subject, result)
    not_before = _x5c_rules(key, public, subject, label, params, now, result)
    identity = thumbprint or f"{label}:{kty}"
    seen = first_seen.get(identity, now)
    if not_before is not None and not_before < seen:
        seen = not_before
    result.first_seen[identity] = seen
    age = now - seen
    result.ages[label] = max(result.ages.get(label, 0.0), age.total_seconds())
    if age > params.key_max_age:
        add(
            _finding(
                "JWKS-ROTATION-STALE",
                Severity.LOW,
                "A signing key has not been rotated within the key's maximum age",
                subject,
                f"key {label} has been in the set for {_days(age)} (since "
                f"{seen.date().isoformat()}); the maximum is {_days(params.key_max_age)}",
                "Rotate the signing key: publish the successor, sign with it, then drop the old "
                "key once tokens signed with it have expired.",
            )
        )
    result.keys.append(
        {
            "kid": label,
            "kty": kty,
            "alg": alg,
            "thumbprint": thumbprint,
            "first_seen": seen.isoformat(),
        }
    )


def _alg_rules(alg: str, kty: str, crv: Any, subject: str, label: str, result: KeyAudit) -> None:
    if alg.lower() == "none" or alg.upper().startswith("HS"):
        result.findings.append(
            _finding(
                "JWKS-ALG-NOT-ALLOWED",
                Severity.HIGH,
                "The JWK Set advertises an algorithm a public key set must not",
                subject,
                f"key {label} has alg={alg}: "
                + ("unsigned tokens" if alg.lower() == "none" else "a shared-secret MAC")
                + " cannot be verified with a public key (RFC 8725 §3.2)",
                "Publish only asymmetric signature algorithms (RS256, PS256, ES256, Ed25519 ...).",
            )
        )
        return
    prefixes = _ALGS_BY_KTY.get(kty, ())
    expected_curve = _CURVE_OF_ALG.get(alg)
    if not alg.startswith(prefixes) or (expected_curve is not None and crv != expected_curve):
        result.findings.append(
            _finding(
                "JWKS-ALG-MISMATCH",
                Severity.MEDIUM,
                "A key's algorithm does not fit its type or curve",
                subject,
                f"key {label} is kty={kty}" + (f" crv={crv}" if crv else "") + f" with alg={alg}",
                "Give each key the algorithm its type and curve are for (RFC 7518 §3.1).",
            )
        )


def _strength_rules(
    key: dict[str, Any],
    kty: str,
    subject: str,
    label: str,
    params: AuthPostureParams,
    result: KeyAudit,
) -> None:
    weak: str | None = None
    if kty in ("EC", "OKP"):
        crv = key.get("crv")
        if crv in STRONG_CURVES and crv not in params.allowed_curves:
            # registered and not weak (secp256k1 for ES256K, say): a policy finding only
            result.findings.append(
                _finding(
                    "JWKS-CURVE-NOT-ALLOWED",
                    Severity.LOW,
                    "A key's curve is not one of the allowed curves",
                    subject,
                    f"key {label}: curve {crv} (registered for JOSE, about 128 bits of "
                    f"security or more) is not one of {', '.join(params.allowed_curves)}",
                    "Use an allowed curve, or add this one to allowed_curves if your verifiers "
                    "support it.",
                )
            )
        elif crv not in params.allowed_curves:
            weak = f"curve {crv} is not one of {', '.join(params.allowed_curves)}"
    elif kty == "RSA" and isinstance(key.get("n"), str):
        bits = _modulus_bits(key["n"])
        if bits is not None and bits < params.min_rsa_bits:
            weak = f"RSA modulus of {bits} bits, under {params.min_rsa_bits} (RFC 7518 §3.3)"
    if weak is not None:
        result.findings.append(
            _finding(
                "JWKS-WEAK-KEY",
                Severity.HIGH,
                "A signing key is too weak",
                subject,
                f"key {label}: {weak}",
                "Replace the key with RSA of 2048 bits or more, or EC on P-256/P-384/P-521 "
                "or Ed25519, and rotate.",
            )
        )


def _modulus_bits(n: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big").bit_length()


def _use_rules(key: dict[str, Any], subject: str, label: str, result: KeyAudit) -> None:
    use, ops = key.get("use"), key.get("key_ops")
    problem: str | None = None
    if use is not None and use not in ("sig", "enc"):
        problem = f"use={use!r} is neither 'sig' nor 'enc' (RFC 7517 §4.2)"
    elif use is not None and isinstance(ops, list):
        wrong = _ENCRYPT_OPS if use == "sig" else _SIGN_OPS
        clash = sorted(str(op) for op in ops if op in wrong)
        if clash:
            problem = f"use={use} but key_ops has {', '.join(clash)} (RFC 7517 §4.3)"
    elif ops is not None and not isinstance(ops, list):
        problem = "key_ops is not an array (RFC 7517 §4.3)"
    if problem is not None:
        result.findings.append(_use_finding(subject, f"key {label}: {problem}"))


def _use_finding(subject: str, evidence: str) -> Finding:
    return _finding(
        "JWKS-USE-INCONSISTENT",
        Severity.LOW,
        "A key's intended use is missing, unknown or contradictory",
        subject,
        evidence,
        "Give each key one 'use' (sig or enc), or key_ops that agree with it.",
    )


def _import(key: dict[str, Any], subject: str, result: KeyAudit) -> tuple[str | None, Any]:
    """(RFC 7638 thumbprint, public key object) or (None, None) with a finding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns about short keys: a finding here
            # only the key material: use, key_ops, alg and x5c have their own rules here,
            # and joserfc refuses a key whose use and key_ops disagree
            imported = import_key({k: v for k, v in key.items() if k not in _NOT_MATERIAL})
            thumbprint = imported.thumbprint()
    except (JoseError, ValueError, KeyError, TypeError, binascii.Error) as error:
        if key.get("kty") != "oct":
            result.findings.append(_unreadable(subject, f"joserfc cannot read the key: {error!r}"))
        return None, None
    raw = imported.raw_value
    public = raw.public_key() if hasattr(raw, "public_key") else raw
    return thumbprint, public


def _unreadable(subject: str, evidence: str) -> Finding:
    return _finding(
        "JWKS-KEY-UNREADABLE",
        Severity.MEDIUM,
        "A key in the JWK Set cannot be read",
        subject,
        evidence,
        "Publish each key as a valid JWK (RFC 7517/7518); verifiers skip or reject broken keys.",
    )


def _x5c_rules(
    key: dict[str, Any],
    public: Any,
    subject: str,
    label: str,
    params: AuthPostureParams,
    now: datetime,
    result: KeyAudit,
) -> datetime | None:
    """Rules on the key's first x5c certificate; its not-before, or None without one."""
    chain = key.get("x5c")
    if not isinstance(chain, list) or not chain:
        return None
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
    except (ValueError, TypeError, binascii.Error) as error:
        result.findings.append(_unreadable(subject, f"x5c[0] is not a DER certificate: {error}"))
        return None
    add = result.findings.append
    not_after = certificate.not_valid_after_utc
    left = not_after - now
    fix = "Issue a new certificate for the key (or rotate the key) and publish it in x5c."
    if left <= timedelta(0):
        add(
            _finding(
                "JWKS-X5C-EXPIRED",
                Severity.HIGH,
                "A key's x5c certificate has expired",
                subject,
                f"key {label}: x5c[0] ({certificate.subject.rfc4514_string()}) expired "
                f"{not_after.isoformat()}",
                fix,
            )
        )
    elif left <= params.x5c_expiring.medium:
        add(
            _finding(
                "JWKS-X5C-EXPIRES-SOON",
                Severity.HIGH if left <= params.x5c_expiring.high else Severity.MEDIUM,
                "A key's x5c certificate expires soon",
                subject,
                f"key {label}: x5c[0] expires {not_after.isoformat()}, in {_days(left)}",
                fix,
            )
        )
    if public is not None and _spki(certificate.public_key()) != _spki(public):
        add(
            _finding(
                "JWKS-X5C-KEY-MISMATCH",
                Severity.HIGH,
                "A key's x5c certificate is for another key",
                subject,
                f"key {label}: the public key in x5c[0] differs from the JWK (RFC 7517 §4.7)",
                "Publish the certificate issued for this very key, or drop x5c.",
            )
        )
    return certificate.not_valid_before_utc


def _spki(public: Any) -> bytes | None:
    try:
        return bytes(public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
    except (AttributeError, ValueError, TypeError):
        return None


def _set_rules(keys: list[Any], labels: list[str], url: str, result: KeyAudit) -> None:
    kids = Counter(
        (str(key.get("kty")), key["kid"])
        for key in keys
        if isinstance(key, dict) and isinstance(key.get("kid"), str)
    )
    for (kty, kid), count in sorted(kids.items()):
        if count > 1:
            result.findings.append(
                _finding(
                    "JWKS-DUPLICATE-KID",
                    Severity.MEDIUM,
                    "Several keys of the JWK Set share one kid",
                    f"kid={kid[:MAX_KID_LABEL]}",
                    f"{count} {kty} keys at {url} have kid={kid} (RFC 7517 §4.5): a verifier "
                    "may pick the wrong one",
                    "Give every key its own kid (e.g. its RFC 7638 thumbprint).",
                )
            )
    unnamed = [label for label, key in zip(labels, keys, strict=True) if label.startswith("#")]
    if len(keys) > 1 and unnamed:
        result.findings.append(
            _finding(
                "JWKS-MISSING-KID",
                Severity.LOW,
                "Keys of a multi-key JWK Set have no kid",
                "kid",
                f"{len(unnamed)} of {len(keys)} keys at {url} have no kid ({', '.join(unnamed)}); "
                "tokens cannot name their key (OIDC Core §10.1)",
                "Give every key a kid and put it in the tokens' JOSE header.",
            )
        )
    uses = {key.get("use") for key in keys if isinstance(key, dict)}
    if "sig" in uses and "enc" in uses and None in uses:
        result.findings.append(
            _use_finding(
                "use",
                f"{url} mixes signing and encryption keys, and some keys have no 'use' "
                "(OIDC Discovery §3 requires it on every key then)",
            )
        )


def _days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.0f} days"
