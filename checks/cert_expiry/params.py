"""Configuration of the cert_expiry check (validated at the config edge)."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.interface import CheckParams
from monitor.durations import Duration
from monitor.model import Severity


class ExpiryThresholds(BaseModel):
    """Time left before not-after at which each severity starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    medium: Duration = timedelta(days=30)
    high: Duration = timedelta(days=14)
    critical: Duration = timedelta(days=7)

    @model_validator(mode="after")
    def _ordered(self) -> ExpiryThresholds:
        if not self.critical <= self.high <= self.medium:
            raise ValueError("thresholds must satisfy critical <= high <= medium")
        return self

    def severity_for(self, time_left: timedelta) -> Severity | None:
        """The severity for a certificate with `time_left`, or None when far enough away."""
        for severity, limit in (
            (Severity.CRITICAL, self.critical),
            (Severity.HIGH, self.high),
            (Severity.MEDIUM, self.medium),
        ):
            if time_left <= limit:
                return severity
        return None


class CertExpiryParams(CheckParams):
    server_name: str | None = Field(
        default=None, description="SNI name to send; defaults to the URL's host"
    )
    addresses: tuple[str, ...] = Field(
        default=(), description="connect to these IP addresses instead of resolving the host"
    )
    files: tuple[str, ...] = Field(
        default=(), description="PEM files or glob patterns on this machine to read as well"
    )
    thresholds: ExpiryThresholds = ExpiryThresholds()
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10), description="per connection and handshake"
    )

    @field_validator("addresses")
    @classmethod
    def _ip_literals(cls, addresses: tuple[str, ...]) -> tuple[str, ...]:
        for address in addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        return addresses
