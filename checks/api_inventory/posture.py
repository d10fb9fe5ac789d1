"""Standing risks of one inventory, for its first observation: diffs only see what changes,
so an API that was public from the start would never be reported.

Operations without authentication (writes high, reads medium), deprecated operations still
documented (so still served), and servers on plain HTTP. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from checks.api_inventory.diff import Axis, Change, ChangeKind, render_security, written
from checks.openapi.inventory import ApiInventory
from monitor.model import Severity

PLAINTEXT_SERVER = "INVENTORY-PLAINTEXT-SERVER"
_WRITES = frozenset({"post", "put", "patch", "delete"})


@dataclass(frozen=True, slots=True)
class PlaintextServer:
    url: str
    operations: int  # operations served there
    authenticated: int  # of them, those that need credentials (sent in clear text)

    @property
    def severity(self) -> Severity:
        return Severity.HIGH if self.authenticated else Severity.MEDIUM


def standing_risks(inventory: ApiInventory) -> tuple[Change, ...]:
    """Public operations and deprecated ones, as changes from nothing to `inventory`."""
    risks: list[Change] = []
    for operation in inventory.operations:
        if operation.public:
            write = operation.method in _WRITES
            risks.append(
                Change(
                    ChangeKind.UNAUTHENTICATED_OPERATION,
                    Axis.SECURITY,
                    Severity.HIGH if write else Severity.MEDIUM,
                    operation.key,
                    f"unauthenticated {'write' if write else 'read'}",
                    after=render_security(operation.security),
                    operation=written(operation),
                )
            )
        if operation.deprecated:
            sunset = f"sunset {operation.sunset}" if operation.sunset else "no sunset date"
            risks.append(
                Change(
                    ChangeKind.OPERATION_DEPRECATED,
                    Axis.INFO,
                    Severity.LOW,
                    operation.key,
                    f"deprecated but still documented ({sunset})",
                    after=operation.sunset,
                    operation=written(operation),
                )
            )
    return tuple(risks)


def plaintext_servers(inventory: ApiInventory) -> tuple[PlaintextServer, ...]:
    """Servers whose URL is `http://`: every request and credential crosses in clear."""
    authenticated = sum(1 for operation in inventory.operations if not operation.public)
    return tuple(
        PlaintextServer(url, len(inventory.operations), authenticated)
        for url in inventory.servers
        if urlsplit(url).scheme.lower() == "http"
    )
