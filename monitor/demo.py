"""`apivigil demo`: local HTTPS targets with certificates made on the spot, and a daemon on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from monitor.certmaker import issue, write_server_files
from monitor.tlsserver import HttpsServer


@dataclass(frozen=True, slots=True)
class DemoTarget:
    name: str
    description: str
    server: HttpsServer
    server_name: str


def start_demo_targets(directory: Path) -> list[DemoTarget]:
    """A CA, an intermediate and three leaves (healthy, expiring in 5 days, expired), served."""
    now = datetime.now(UTC)
    root = issue("apivigil demo root CA", ca=True, not_after=now + timedelta(days=3650))
    intermediate = issue(
        "apivigil demo intermediate CA", root, ca=True, not_after=now + timedelta(days=1825)
    )
    plans = [
        (
            "demo-healthy",
            "valid for 90 more days",
            now - timedelta(days=1),
            now + timedelta(days=90),
        ),
        ("demo-expiring", "expires in 5 days", now - timedelta(days=85), now + timedelta(days=5)),
        ("demo-expired", "expired 3 days ago", now - timedelta(days=93), now - timedelta(days=3)),
    ]
    targets = []
    for name, description, not_before, not_after in plans:
        server_name = f"{name}.apivigil.test"
        leaf = issue(server_name, intermediate, not_before=not_before, not_after=not_after)
        cert, key = write_server_files(directory / "certs", name, leaf, intermediate)
        server = HttpsServer(cert, key).start()
        targets.append(DemoTarget(name, description, server, server_name))
    (directory / "certs" / "root-ca.crt").write_bytes(root.pem)
    return targets


def write_demo_config(directory: Path, targets: list[DemoTarget], store: str, listen: str) -> Path:
    config = {
        "store": store,
        "listen": listen,
        "log_format": "console",
        "defaults": {"interval": "30s", "timeout": "10s"},
        "scheduler": {"initial_spread": "5s"},
        "targets": [
            {
                "name": target.name,
                "url": target.server.url,
                "labels": {"env": "demo"},
                "checks": {
                    "cert_expiry": {"server_name": target.server_name},
                    "tls_posture": {
                        "server_name": target.server_name,
                        "trust_store": str(directory / "certs" / "root-ca.crt"),
                        "interval": "5m",
                        "timeout": "60s",
                    },
                },
            }
            for target in targets
        ],
    }
    path = directory / "apivigil.yaml"
    path.write_text(
        "# Written by `apivigil demo`; the ports change on every start.\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    return path
