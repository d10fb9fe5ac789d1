"""A root and an intermediate CA made per test session, and leaves issued under them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.certmaker import Issued, issue
from monitor.tlsserver import HttpsServer


@dataclass(frozen=True)
class Chain:
    root: Issued
    intermediate: Issued

    def leaf(self, name: str, *, days_left: float = 90, days_old: float = 1) -> Issued:
        now = datetime.now(UTC)
        return issue(
            name,
            self.intermediate,
            not_before=now - timedelta(days=days_old),
            not_after=now + timedelta(days=days_left),
        )


def make_chain() -> Chain:
    now = datetime.now(UTC)
    root = issue("test root CA", ca=True, not_after=now + timedelta(days=3650))
    intermediate = issue(
        "test intermediate CA", root, ca=True, not_after=now + timedelta(days=1000)
    )
    return Chain(root=root, intermediate=intermediate)


# serve(leaf, host=..., port=...) -> a started HttpsServer sending leaf + intermediate
ServeFactory = Callable[..., HttpsServer]
