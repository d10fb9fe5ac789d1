"""Configuration of the http_posture check (validated at the config edge)."""

from __future__ import annotations

from datetime import timedelta
from enum import IntEnum
from pathlib import Path

from pydantic import Field, field_validator

from checks.interface import CheckParams
from monitor.durations import Duration


class ObservatoryAlgorithm(IntEnum):
    """Versions of the MDN HTTP Observatory's scoring this check can emulate.

    4: npm @mdn/mdn-http-observatory 1.4.x (X-Frame-Options DENY/SAMEORIGIN scores 0);
    5: 1.6.x (DENY/SAMEORIGIN +5); 6: unreleased HEAD (adds COOP and COEP)."""

    V4 = 4
    V5 = 5
    V6 = 6


class HttpPostureParams(CheckParams):
    paths: tuple[str, ...] = Field(
        default=(),
        description="more paths of the target to judge (GET), besides the target URL itself",
    )
    http_url: str | None = Field(
        default=None,
        description="where plain HTTP is probed; default: the target URL with http:// "
        "(same host, same explicit port), as the Observatory does",
    )
    plain_http_dropped: bool = Field(
        default=False,
        description="plain HTTP is dropped by a firewall on purpose (no answer to the SYN): "
        "count a connection that times out there as refused, not undetermined (a server that "
        "accepts and then hangs or resets is still undetermined)",
    )
    request_budget: int = Field(
        default=20, ge=4, le=200, description="most requests one run sends, redirects included"
    )
    inventory_sample: int = Field(
        default=0,
        ge=0,
        le=20,
        description="also GET up to this many documented GET operations without path or "
        "required query parameters, from api_inventory's latest snapshot of the target",
    )
    trace: bool = Field(
        default=False,
        description="opt in to one TRACE request (with a marker header) to see whether it is "
        "echoed; WAFs may alert on it",
    )
    auth_header_file: Path | None = Field(
        default=None,
        description="file holding one `Name: value` header sent with GETs of the configured "
        "paths and sampled documented operations, only over HTTPS, only to the target's origin",
    )
    session_cookie_names: tuple[str, ...] = Field(
        default=("sess", "login", "token", "auth", "sid"),
        description="a cookie whose lower-cased name contains one of these is session-like",
    )
    observatory_algorithm: ObservatoryAlgorithm = Field(
        default=ObservatoryAlgorithm.V5,
        description="which published Observatory scoring version to emulate",
    )
    security_txt: bool = Field(default=True, description="judge /.well-known/security.txt")
    security_txt_warning: Duration = Field(
        default=timedelta(days=30), description="security.txt Expires closer than this: finding"
    )
    trust_store: Path | None = Field(
        default=None, description="extra PEM CA bundle (e.g. an internal CA) for HTTPS"
    )
    request_timeout: Duration = Field(
        default=timedelta(seconds=10), description="per request; never beyond the run's"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="bodies larger than this are not read whole"
    )

    @field_validator("paths")
    @classmethod
    def _absolute_paths(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        for path in paths:
            if not path.startswith("/"):
                raise ValueError(f"path {path!r} must start with /")
        return paths

    @field_validator("http_url")
    @classmethod
    def _plain_http(cls, url: str | None) -> str | None:
        if url is not None and not url.lower().startswith("http://"):
            raise ValueError(f"http_url {url!r} must be an http:// URL")
        return url
