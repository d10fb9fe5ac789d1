"""Configuration of the auth_posture check (validated at the config edge)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.interface import CheckParams
from monitor.durations import Duration

_STRICT = ConfigDict(extra="forbid", frozen=True)
MAX_BURST_REQUESTS = 30
BURST_MIN_INTERVAL = timedelta(days=1)
# signing (P-*, Ed25519, Ed448) and key-agreement (P-*, X25519, X448) curves of RFC 7518/8037
DEFAULT_CURVES = ("P-256", "P-384", "P-521", "Ed25519", "Ed448", "X25519", "X448")


class X5cThresholds(BaseModel):
    """Time left on a key's x5c certificate at which JWKS-X5C-EXPIRES-SOON starts, and at
    which it becomes high (as cert_expiry's thresholds: one finding whose severity rises)."""

    model_config = _STRICT

    medium: Duration = timedelta(days=30)
    high: Duration = timedelta(days=7)

    @model_validator(mode="after")
    def _ordered(self) -> X5cThresholds:
        if self.high > self.medium:
            raise ValueError("x5c thresholds must satisfy high <= medium")
        return self


class RateLimitBurst(BaseModel):
    """Opt-in: at most `requests` GETs to one documented GET operation, at most once a day,
    stopping at the first 429, to see whether the API ever throttles."""

    model_config = _STRICT

    path: str = Field(description="path of a documented GET operation without parameters")
    requests: int = Field(default=MAX_BURST_REQUESTS, ge=2, le=MAX_BURST_REQUESTS)

    @field_validator("path")
    @classmethod
    def _plain_path(cls, path: str) -> str:
        if not path.startswith("/") or "{" in path or "?" in path or "#" in path:
            raise ValueError(f"{path!r} must be a plain path starting with '/'")
        return path


class AuthPostureParams(CheckParams):
    spec: str | None = Field(default=None, description="URL (http/https) or file of the spec")
    spec_path: str | None = Field(
        default=None, description="path of the spec on the target's URL, e.g. /openapi.json"
    )
    auth_header_file: Path | None = Field(
        default=None,
        description="file holding a valid Authorization value: used to fetch the spec and to "
        "tell a public stub from a real answer",
    )
    probe_operations: bool = Field(
        default=True, description="request secured GET/HEAD operations without credentials"
    )
    max_requests: int = Field(
        default=200, ge=1, le=5000, description="auth probe requests per run, redirects included"
    )
    similarity: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="an anonymous 2xx this similar to the authenticated answer is the real one",
    )
    jwks_url: str | None = Field(default=None, description="JWK Set to audit")
    oidc_issuer: str | None = Field(
        default=None, description="issuer whose /.well-known/openid-configuration is audited"
    )
    min_rsa_bits: int = Field(default=2048, ge=1024)
    allowed_curves: tuple[str, ...] = DEFAULT_CURVES
    key_max_age: Duration = Field(
        default=timedelta(days=365), description="a signing key older than this is stale"
    )
    x5c_expiring: X5cThresholds = X5cThresholds()
    rate_limit_burst: RateLimitBurst | None = None
    verify_tls: bool = True
    ca_file: Path | None = Field(default=None, description="CA bundle to verify TLS with")
    network_timeout: Duration = timedelta(seconds=10)
    max_document_bytes: int = Field(default=1024 * 1024, ge=1024, description="JWKS, discovery")
    max_spec_bytes: int = Field(default=50 * 1024 * 1024, ge=1)

    @model_validator(mode="after")
    def _something_to_check(self) -> AuthPostureParams:
        if self.spec is not None and self.spec_path is not None:
            raise ValueError("give spec or spec_path, not both")
        if self.spec_path is not None and not self.spec_path.startswith("/"):
            raise ValueError("spec_path must start with '/'")
        if self.spec is None and self.spec_path is None and not (self.jwks_url or self.oidc_issuer):
            raise ValueError("give a spec (spec or spec_path), jwks_url or oidc_issuer")
        if self.rate_limit_burst is not None and self.spec is None and self.spec_path is None:
            raise ValueError("rate_limit_burst needs the spec that documents its operation")
        return self

    @property
    def verify(self) -> bool | str:
        return str(self.ca_file) if self.ca_file is not None else self.verify_tls
