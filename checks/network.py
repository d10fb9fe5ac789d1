"""Name resolution shared by the checks: every address a name has, with a deadline."""

from __future__ import annotations

import ipaddress
import socket
import threading

from checks.interface import CheckContext, TargetUnreachable
from monitor.model import Endpoint


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve(endpoint: Endpoint, context: CheckContext) -> tuple[str, ...]:
    """Every distinct address `endpoint.host` resolves to (IPv4 and IPv6), in resolver order."""
    if is_ip_literal(endpoint.host):
        return (endpoint.host,)
    return resolve_name(endpoint.host, endpoint.port, context.io_timeout(10.0))


def resolve_name(host: str, port: int, timeout: float) -> tuple[str, ...]:
    """Every distinct address `host` resolves to, within `timeout` seconds.

    Raises TargetUnreachable naming `host`: the lookup failed, gave no answer in time or
    returned no addresses.
    """
    answers: list[tuple[str, ...]] = []
    failure: list[OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            failure.append(error)
            return
        answers.append(tuple(dict.fromkeys(str(info[4][0]) for info in infos)))

    # getaddrinfo has no timeout of its own: wait in a daemon thread we can walk away from
    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if failure:
        message = getattr(failure[0], "strerror", None) or str(failure[0])
        raise TargetUnreachable(f"DNS lookup failed: {message}", subject=host)
    if not answers:
        raise TargetUnreachable(f"DNS lookup gave no answer within {timeout:.0f}s", subject=host)
    if not answers[0]:
        raise TargetUnreachable("DNS lookup returned no addresses", subject=host)
    return answers[0]
