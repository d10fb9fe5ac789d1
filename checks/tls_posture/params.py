"""Configuration of the tls_posture check."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator

from checks.interface import CheckParams
from monitor.durations import Duration


class MozillaProfile(StrEnum):
    MODERN = "modern"
    INTERMEDIATE = "intermediate"
    OLD = "old"


class TlsPostureParams(CheckParams):
    profile: MozillaProfile = Field(
        default=MozillaProfile.INTERMEDIATE, description="Mozilla server-side TLS profile"
    )
    server_name: str | None = Field(default=None, description="SNI; defaults to the URL's host")
    address: str | None = Field(default=None, description="scan this IP instead of resolving")
    trust_store: Path | None = Field(
        default=None, description="extra PEM CA bundle (e.g. an internal CA) for chain validation"
    )
    per_server_connections: int = Field(
        default=5, ge=1, le=50, description="concurrent connections to one server"
    )
    servers_at_once: int = Field(
        default=10,
        ge=1,
        le=200,
        description="servers scanned at once in the process (each by its own sslyze Scanner)",
    )
    network_timeout: Duration = Field(
        default=timedelta(seconds=5), description="per connection and handshake"
    )
    scan_timeout: Duration = Field(
        default=timedelta(seconds=45),
        description="cap on one server's whole scan (then it is unreachable and its "
        "connections are closed); never beyond the run's timeout",
    )
    network_retries: int = Field(default=3, ge=0, le=10, description="TCP connection retries")
    hsts_min_age: Duration = Field(
        default=timedelta(days=180), description="HSTS max-age below this is a finding"
    )
    check_http_headers: bool = Field(default=True, description="read HSTS from an HTTP GET /")

    @field_validator("address")
    @classmethod
    def _ip_literal(cls, address: str | None) -> str | None:
        if address is not None:
            ipaddress.ip_address(address)
        return address
