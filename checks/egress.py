"""Where URLs taken from remote content may lead: redirects, `$ref`s, links in answers.

A target that answers with a redirect to `http://169.254.169.254/` would otherwise make the
monitor fetch cloud credentials on its behalf. The policy denies link-local and cloud
metadata addresses by default, plus configured CIDRs; an allow list overrides both.
Every address a name resolves to is checked, before any connection is made, and the
connection goes to a checked address: a name whose next answer differs (DNS rebinding) is
not looked up again.

There is no process-wide policy: each run carries the one built from its process's
settings on `CheckContext.egress` (`monitor.runner.Runner` puts it there, in the daemon, the
worker and `apivigil scan` alike, and replaces it on SIGHUP), and `checks.http.fetch`
requires it, so no check reaches the network without one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork

from checks.interface import BadInput
from checks.network import is_ip_literal, resolve_name

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int, float], Iterable[str]]  # (host, port, timeout) -> addresses

METADATA = "link-local/cloud metadata"
DEFAULT_DENIED: tuple[tuple[IpNetwork, str], ...] = (
    (ipaddress.ip_network("169.254.0.0/16"), METADATA),  # AWS, GCP, Azure: 169.254.169.254
    (ipaddress.ip_network("fe80::/10"), "IPv6 link-local"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "cloud metadata (AWS IPv6)"),
    (ipaddress.ip_network("100.100.100.200/32"), "cloud metadata (Alibaba)"),
    (ipaddress.ip_network("192.0.0.192/32"), "cloud metadata (Oracle)"),
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Denied networks (with why) and allowed networks; an allowed address is never denied."""

    denied: tuple[tuple[IpNetwork, str], ...] = DEFAULT_DENIED
    allowed: tuple[IpNetwork, ...] = ()

    @classmethod
    def with_lists(
        cls, deny_cidrs: Iterable[IpNetwork] = (), allow_cidrs: Iterable[IpNetwork] = ()
    ) -> EgressPolicy:
        """The default denials plus `deny_cidrs`, overridden by `allow_cidrs`."""
        extra = tuple((network, f"deny list {network}") for network in deny_cidrs)
        return cls(denied=DEFAULT_DENIED + extra, allowed=tuple(allow_cidrs))

    def denial(self, address: str) -> str | None:
        """Why `address` (an IP literal) is denied, or None when it may be reached."""
        ip = _normalised(ipaddress.ip_address(address))
        if any(ip in network for network in self.allowed):
            return None
        for network, why in self.denied:
            if ip in network:
                return why
        return None

    def check_url(
        self, url: str, resolve: Resolver | None = None, timeout: float = 10.0
    ) -> tuple[str, ...]:
        """The addresses `url`'s host resolves to (with `resolve`, by default
        `checks.network.resolve_name`), every one of which may be reached: connect to these,
        not to a second answer for the name.

        Raises BadInput naming `url` when one is denied or `url` has no host, and
        TargetUnreachable (from `resolve`) when the name does not resolve.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
        except ValueError as error:
            raise BadInput(f"not a URL: {error}", subject=url) from None
        if not host:
            raise BadInput("a URL without a host", subject=url)
        if is_ip_literal(host):
            addresses: tuple[str, ...] = (host,)
        else:
            addresses = tuple((resolve or resolve_name)(host, port, timeout))
        for address in addresses:
            why = self.denial(address)
            if why is not None:
                shown = address if address == host else f"{address} (from {host})"
                raise BadInput(f"egress to {shown} denied by policy: {why}", subject=url)
        return addresses


def _normalised(ip: IpAddress) -> IpAddress:
    """An IPv4-mapped IPv6 address (`::ffff:169.254.169.254`) as the IPv4 address it maps."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class EgressSettings(BaseModel):
    """The `egress` section of the settings: extra denied and allowed CIDRs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deny_cidrs: tuple[IPvAnyNetwork, ...] = Field(
        default=(), description="networks URLs from remote content must not reach"
    )
    allow_cidrs: tuple[IPvAnyNetwork, ...] = Field(
        default=(), description="networks allowed even when denied (overrides the defaults)"
    )

    def policy(self) -> EgressPolicy:
        return EgressPolicy.with_lists(self.deny_cidrs, self.allow_cidrs)
