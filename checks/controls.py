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

# Longest matching rule-id prefix wins.
CONTROLS_BY_RULE_PREFIX: Mapping[str, tuple[Control, ...]] = {
    "CERT-": _CERTIFICATE_LIFECYCLE,
}


def controls_for(rule_id: str) -> tuple[Control, ...]:
    """The controls a rule gives evidence for; empty for a rule with no mapping."""
    matches = [prefix for prefix in CONTROLS_BY_RULE_PREFIX if rule_id.startswith(prefix)]
    if not matches:
        return ()
    return CONTROLS_BY_RULE_PREFIX[max(matches, key=len)]
