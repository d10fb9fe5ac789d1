"""Free ports on 127.0.0.1 for servers a test starts."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

HOST = "127.0.0.1"
# below the kernel's ephemeral range, so that outgoing connections made meanwhile cannot take it
PORT_RANGE = (20000, 32000)


def free_port(exclude: Iterable[int] = ()) -> int:
    """A random port in PORT_RANGE that 127.0.0.1 can bind now (and not in `exclude`)."""
    taken = set(exclude)
    for _ in range(500):
        port = random.randint(*PORT_RANGE)
        if port in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def free_ports(count: int) -> list[int]:
    """`count` different free ports."""
    ports: list[int] = []
    for _ in range(count):
        ports.append(free_port(exclude=ports))
    return ports
