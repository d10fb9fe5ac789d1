"""Free ports on 127.0.0.1 for servers a test starts."""

from __future__ import annotations

import random
import socket


def free_port() -> int:
    """A port that is free now, below the kernel's ephemeral range so that outgoing
    connections made meanwhile cannot take it."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found")
