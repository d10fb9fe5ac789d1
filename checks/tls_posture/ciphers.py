"""What a cipher suite's name says about it (IANA names; OpenSSL names from the probe)."""

from __future__ import annotations

from enum import StrEnum

from checks.tls_posture.facts import Suite, TlsVersion


class Weakness(StrEnum):
    NULL = "NULL"
    EXPORT = "EXPORT"
    ANONYMOUS = "anonymous"
    RC4 = "RC4"
    DES = "DES"
    TRIPLE_DES = "3DES"
    CBC = "CBC"


class Strength(StrEnum):
    INSECURE = "insecure"  # NULL, EXPORT, anonymous, RC4, DES
    WEAK = "weak"  # 3DES, no forward secrecy, CBC
    SECURE = "secure"  # forward secret AEAD


def weaknesses(suite: Suite) -> set[Weakness]:
    name = suite.name.upper()
    found = set()
    if "NULL" in name or suite.key_size == 0:
        found.add(Weakness.NULL)
    if "EXPORT" in name or "EXP-" in name:
        found.add(Weakness.EXPORT)
    if suite.anonymous or "_ANON_" in name or name.startswith(("ADH-", "AECDH-")):
        found.add(Weakness.ANONYMOUS)
    if "RC4" in name:
        found.add(Weakness.RC4)
    if "3DES" in name or "DES-CBC3" in name:
        found.add(Weakness.TRIPLE_DES)
    elif "_DES_" in name or "DES40" in name or name.startswith(("DES-", "EDH-RSA-DES-CBC-")):
        found.add(Weakness.DES)
    if "_CBC_" in name or (not is_aead(suite) and "NULL" not in name and "RC4" not in name):
        found.add(Weakness.CBC)
    return found


def is_aead(suite: Suite) -> bool:
    name = suite.name.upper()
    return any(mode in name for mode in ("GCM", "CHACHA20", "CCM"))


def forward_secret(protocol: TlsVersion, suite: Suite) -> bool:
    if protocol is TlsVersion.TLS_1_3:
        return True
    name = suite.name.upper()
    return suite.ephemeral_kind is not None or any(
        marker in name for marker in ("_ECDHE_", "_DHE_", "ECDHE-", "DHE-", "EDH-")
    )


def strength(protocol: TlsVersion, suite: Suite) -> Strength:
    found = weaknesses(suite)
    if found & {Weakness.NULL, Weakness.EXPORT, Weakness.ANONYMOUS, Weakness.RC4, Weakness.DES}:
        return Strength.INSECURE
    if found or not forward_secret(protocol, suite):
        return Strength.WEAK
    return Strength.SECURE
