"""Configuration of the api_inventory check."""

from __future__ import annotations

import fnmatch
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from checks.api_inventory.access_log import LogFormat, LogKind
from checks.interface import CheckParams
from monitor.durations import Duration

if TYPE_CHECKING:  # validating a config imports parameter models only
    from checks.openapi.loading import LoadLimits

_STRICT = ConfigDict(extra="forbid", frozen=True)


class AccessLogConfig(BaseModel):
    model_config = _STRICT

    path: Path
    format: LogKind = LogKind.COMBINED
    method_field: str = "method"
    path_field: str = "path"
    request_field: str | None = None
    status_field: str = "status"
    time_field: str | None = "time"
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1, description="read per run, at most")
    stale_after: Duration | None = Field(
        default=None, description="a log that has not grown for this long is reported"
    )
    max_unparsed_share: float = Field(
        default=0.5, ge=0, le=1, description="lines not in the format, beyond this share of a read"
    )

    def log_format(self) -> LogFormat:
        return LogFormat(
            kind=self.format,
            method_field=self.method_field,
            path_field=self.path_field,
            request_field=self.request_field,
            status_field=self.status_field,
            time_field=self.time_field,
        )


class ProbeConfig(BaseModel):
    """Ask the API itself, with safe methods only, whether retired operations still answer."""

    model_config = _STRICT

    removed: bool = Field(default=True, description="GET/HEAD operations gone from the spec")
    older_versions: bool = Field(default=True, description="/v1/... when /v2/... is documented")
    max_requests: int = Field(default=20, ge=1, le=500)
    timeout: Duration = timedelta(seconds=5)


class TrafficIgnoreRule(BaseModel):
    """Traffic to matching paths makes no shadow or zombie finding until `until`."""

    model_config = _STRICT

    path: str = Field(min_length=1, description="glob on the request path, e.g. /static/*")
    methods: tuple[str, ...] = Field(default=(), description="only these methods; all if empty")
    reason: str = Field(min_length=1)
    until: datetime | date | None = None

    def hides(self, method: str, paths: tuple[str, ...], now: datetime) -> bool:
        """Whether the rule, unexpired at `now`, covers `method` on any of `paths`."""
        if self.until is not None and now > _end_of(self.until):
            return False
        if self.methods and method.upper() not in {m.upper() for m in self.methods}:
            return False
        return any(fnmatch.fnmatchcase(path, self.path) for path in paths)


def _end_of(until: datetime | date) -> datetime:
    if isinstance(until, datetime):
        return until.replace(tzinfo=UTC) if until.tzinfo is None else until
    return datetime.combine(until, time.max, tzinfo=UTC)


class SpecLimits(BaseModel):
    """How much of a spec is read; the defaults fit multi-file specs of a few thousand
    files. An error names the setting it crossed."""

    model_config = _STRICT

    max_files: int = Field(default=5_000, ge=0, description="files or URLs besides the root")
    max_total_bytes: int = Field(default=256 * 1024 * 1024, ge=1, description="all files")
    max_ref_depth: int = Field(default=64, ge=1, description="$ref -> $ref chains")
    max_yaml_nodes: int = Field(
        default=10_000_000, ge=1, description="YAML nodes of one file, aliases expanded"
    )
    max_resolved_nodes: int = Field(
        default=5_000_000, ge=1, description="nodes walked while resolving $refs"
    )
    time_budget: Duration = Field(
        default=timedelta(seconds=60), description="for resolving every $ref of the spec"
    )

    def load_limits(self, max_spec_bytes: int) -> LoadLimits:
        from checks.openapi.loading import LoadLimits  # noqa: PLC0415

        return LoadLimits(
            max_bytes=max_spec_bytes,
            max_total_bytes=self.max_total_bytes,
            max_files=self.max_files,
            max_yaml_nodes=self.max_yaml_nodes,
            max_ref_depth=self.max_ref_depth,
            max_resolved_nodes=self.max_resolved_nodes,
            time_budget=self.time_budget.total_seconds(),
        )


class ApiInventoryParams(CheckParams):
    spec: str | None = Field(default=None, description="URL (http/https) or file of the spec")
    spec_path: str | None = Field(
        default=None, description="path of the spec on the target's URL, e.g. /openapi.json"
    )
    auth_header_file: Path | None = Field(
        default=None, description="file holding the Authorization value for fetching the spec"
    )
    allow_remote_refs: bool = Field(
        default=False, description="follow $refs to other URLs of the spec's own origin"
    )
    max_spec_bytes: int = Field(default=50 * 1024 * 1024, ge=1, description="per file")
    limits: SpecLimits = SpecLimits()
    access_logs: tuple[AccessLogConfig, ...] = ()
    traffic_window: Duration = Field(
        default=timedelta(days=7), description="shadow/zombie traffic older than this is dropped"
    )
    ignore: tuple[TrafficIgnoreRule, ...] = ()
    max_templates: int = Field(
        default=5000, ge=10, description="endpoint templates tallied per read, at most"
    )
    probe: ProbeConfig | None = None
    verify_tls: bool = True
    network_timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _one_spec(self) -> ApiInventoryParams:
        if (self.spec is None) == (self.spec_path is None):
            raise ValueError("give spec (URL or file) or spec_path (on the target's URL)")
        if self.spec_path is not None and not self.spec_path.startswith("/"):
            raise ValueError("spec_path must start with '/'")
        return self
