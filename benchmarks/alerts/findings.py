"""The benchmark's input, shared by run.py (Alertmanager) and worker.py (apivigil).

A mass certificate expiry: FINDINGS leaf certificates, spread as evenly as possible over
TARGETS targets (`t0000`, `t0001`, ...; the first FINDINGS % TARGETS targets get one more),
each a `CERT-EXPIRES-SOON` finding of severity critical with its own subject. Standard library
only, so run.py does not import apivigil.
"""

from __future__ import annotations

from dataclasses import dataclass

RULE_ID = "CERT-EXPIRES-SOON"
SEVERITY = "critical"
TITLE = "Certificate expires in 1.5 days"
REMEDIATION = (
    "Renew the certificate and deploy it with its chain before it expires; automate renewal "
    "(ACME) so it happens at two thirds of the lifetime."
)


@dataclass(frozen=True, slots=True)
class Item:
    target: str
    subject: str
    evidence: str


def target_name(index: int) -> str:
    return f"t{index:04d}"


def plan(findings: int, targets: int) -> dict[str, list[Item]]:
    """Target name -> its findings, in target order; every subject is distinct."""
    per_target, extra = divmod(findings, targets)
    result: dict[str, list[Item]] = {}
    number = 0
    for index in range(targets):
        name = target_name(index)
        items = []
        for _ in range(per_target + (1 if index < extra else 0)):
            host = f"svc-{number:05d}.{name}.bench.apivigil.test"
            items.append(
                Item(
                    target=name,
                    subject=f"{host}:443 leaf CN={host}",
                    evidence=(
                        f"leaf CN={host}, serial {number:08x}, seen at 127.0.0.1:443; "
                        "not before 2026-09-01T08:00:00Z, not after 2026-12-01T20:00:00Z"
                    ),
                )
            )
            number += 1
        result[name] = items
    return result
