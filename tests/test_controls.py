"""Every rule id a check can emit names the requirements it gives evidence for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from alerts.check_failing import CHECK_FAILING_RULE
from checks.controls import CHECK_OF_RULE_PREFIX, controls_document, controls_for

pytestmark = pytest.mark.unit

CHECKS = Path(__file__).resolve().parent.parent / "checks"
RULE_ID = re.compile(
    r"^(CERT|TLS|PATCH|DRIFT|INVENTORY|AUTH|JWKS|OIDC|RATELIMIT|HTTP|CORS|COOKIE|SECTXT)(-[A-Z0-9]+)+$"
)


def emitted_rule_ids() -> set[str]:
    """UPPER-KEBAB string literals with a check's rule prefix, anywhere in a check's code:
    `rule_id="..."` arguments, rule tables and enum values alike."""
    found: set[str] = set()
    for path in CHECKS.rglob("*.py"):
        if path.name == "controls.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and RULE_ID.match(node.value)
            ):
                found.add(node.value)
    return found


RULE_IDS = sorted(emitted_rule_ids() | {CHECK_FAILING_RULE})


def test_the_rule_collector_finds_every_check_and_the_documented_rules() -> None:
    prefixes = {rule.split("-", 1)[0] + "-" for rule in RULE_IDS}

    assert set(CHECK_OF_RULE_PREFIX) <= prefixes
    assert {
        "CERT-EXPIRES-SOON",
        "TLS-PROTOCOL-TLS10",
        "TLS-CIPHER-RC4",
        "DRIFT-CHANGED",
        "PATCH-ADVISORIES-STALE",
        "INVENTORY-SECURITY-REMOVED",
        "INVENTORY-SHADOW-ENDPOINT",
    } <= set(RULE_IDS)
    assert len(RULE_IDS) >= 60


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_id_maps_to_at_least_one_requirement(rule_id: str) -> None:
    controls = controls_for(rule_id)

    assert controls, f"{rule_id} has no control mapping in checks/controls.py"
    for control in controls:
        assert control.framework
        assert control.control
        assert control.title


def test_an_unknown_rule_has_no_controls_so_the_test_above_can_fail() -> None:
    assert controls_for("NOPE-UNKNOWN") == ()


def test_check_failing_is_evidence_of_continuous_monitoring() -> None:
    assert {"framework": "NIST SP 800-53", "control": "CA-7", "title": "continuous monitoring"} in (
        controls_document(CHECK_FAILING_RULE)
    )


def test_a_source_that_cannot_be_read_is_a_monitoring_gap_not_a_vulnerability() -> None:
    frameworks = {(c.framework, c.control) for c in controls_for("PATCH-SOURCE-UNAVAILABLE")}

    assert ("NIST SP 800-137", "5.3") in frameworks
    assert ("SANS CWE", "CWE-937") not in frameworks
