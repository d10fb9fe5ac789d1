"""Configuration of the config_drift check: sources, ignore rules and severity rules."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from checks.baseline_diff import Change
from checks.interface import CheckParams
from monitor.durations import Duration
from monitor.model import CheckKind, Severity
from monitor.redact import mask_secrets

_STRICT = ConfigDict(extra="forbid", frozen=True)


class FileFormat(StrEnum):
    AUTO = "auto"
    TEXT = "text"
    INI = "ini"
    YAML = "yaml"
    JSON = "json"
    TOML = "toml"
    NGINX = "nginx"
    APACHE = "apache"
    SSH = "ssh"
    REDIS = "redis"
    HAPROXY = "haproxy"
    HTPASSWD = "htpasswd"
    SYSTEMD = "systemd"


class FileSource(BaseModel):
    model_config = _STRICT

    path: Path
    format: FileFormat = FileFormat.AUTO
    list_keys: dict[str, str] = Field(
        default_factory=dict,
        description="YAML/JSON: path glob of a list of mappings -> the field naming its items "
        "(default: name, job_name or id when every item has a distinct one)",
    )


class DirectorySource(BaseModel):
    model_config = _STRICT

    path: Path
    include: tuple[str, ...] = Field(default=("*",), description="file name globs to read")
    exclude: tuple[str, ...] = ()
    max_files: int = Field(default=20_000, ge=1)
    formats: dict[str, FileFormat] = Field(
        default_factory=dict,
        description="file name or relative path glob -> its format (first match wins); "
        "default: detected from the name and content. `text` says that text lines are meant",
    )
    list_keys: dict[str, str] = Field(
        default_factory=dict, description="as for a file source, for every YAML/JSON file"
    )


class HttpSource(BaseModel):
    model_config = _STRICT

    path: str = Field(default="/", description="path on the target's URL")
    url: str | None = Field(default=None, description="full URL instead of target URL + path")
    headers: tuple[str, ...] | None = Field(
        default=None, description="response headers to keep; default: security headers; ['*']: all"
    )
    json_keys: tuple[str, ...] | None = Field(
        default=None, description="read the body as JSON and keep these key paths (globs)"
    )
    auth_header_file: Path | None = Field(
        default=None, description="file holding an 'Authorization' header value to send"
    )
    verify_tls: bool = True
    timeout: Duration = timedelta(seconds=10)

    @field_validator("headers")
    @classmethod
    def _lower(cls, headers: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return tuple(h.strip().lower() for h in headers) if headers is not None else None

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError("the path must start with '/'")
        return path


class CommandSource(BaseModel):
    model_config = _STRICT

    argv: tuple[str, ...] = Field(min_length=1, description="program and arguments; no shell")
    timeout: Duration = timedelta(seconds=30)
    format: FileFormat = FileFormat.TEXT


class Source(BaseModel):
    """Exactly one of file, directory, http, command or snapshot; `name` labels it."""

    model_config = _STRICT

    name: str | None = Field(default=None, pattern=r"^[^|\s][^|]*$")
    file: Path | FileSource | None = None
    directory: Path | DirectorySource | None = None
    http: HttpSource | None = None
    command: CommandSource | None = None
    snapshot: CheckKind | None = Field(
        default=None, description="the latest snapshot of another check on this target"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        given = [
            key
            for key in ("file", "directory", "http", "command", "snapshot")
            if getattr(self, key) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "a source needs exactly one of file, directory, http, command, snapshot"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def id(self) -> str:
        """Stable name of the source in findings, baselines and metrics."""
        if self.name:
            return self.name
        if self.file is not None:
            path = self.file if isinstance(self.file, Path) else self.file.path
            return f"file:{path}"
        if self.directory is not None:
            path = self.directory if isinstance(self.directory, Path) else self.directory.path
            return f"directory:{path}"
        if self.http is not None:
            # a URL's credentials would reach every finding, baseline and metric label
            return f"http:{mask_secrets(self.http.url) if self.http.url else self.http.path}"
        if self.command is not None:
            return f"command:{shlex.join(self.command.argv)}"
        return f"snapshot:{self.snapshot}"


MAX_REGEX_LENGTH = 1000


def _compiles(value: str) -> str:
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as error:
        raise ValueError(f"not a valid regular expression: {error}") from None
    return value


Regex = Annotated[str, Field(max_length=MAX_REGEX_LENGTH), AfterValidator(_compiles)]


class IgnoreRule(BaseModel):
    """Drift matching this rule is not reported until `until` (then it resurfaces)."""

    model_config = _STRICT

    path: str = Field(description="glob on 'source|path' or on the path alone")
    value: Regex | None = Field(default=None, description="regex the observed value must match")
    reason: str = Field(min_length=1)
    until: datetime | date | None = None

    @property
    def expires_at(self) -> datetime | None:
        if self.until is None:
            return None
        if isinstance(self.until, datetime):
            if self.until.tzinfo is None:
                return self.until.replace(tzinfo=UTC)
            return self.until.astimezone(UTC)
        return datetime.combine(self.until, time.max, tzinfo=UTC)


class SeverityRule(BaseModel):
    """First matching rule wins; built-in rules come after the configured ones."""

    model_config = _STRICT

    path: str = Field(description="glob on 'source|path' or on the path alone")
    change: Change | None = Field(default=None, description="any change when omitted")
    value: Regex | None = Field(default=None, description="regex the new value must match")
    severity: Severity


class ConfigDriftParams(CheckParams):
    sources: tuple[Source, ...] = Field(min_length=1)
    ignore: tuple[IgnoreRule, ...] = ()
    severity: tuple[SeverityRule, ...] = ()
    default_severity: Severity = Severity.MEDIUM
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="per file or response")
    max_keys: int = Field(default=1_000_000, ge=1, description="per source, after flattening")

    @model_validator(mode="after")
    def _unique_ids(self) -> ConfigDriftParams:
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"two sources are both named {source.id!r}; give one a name")
            seen.add(source.id)
        return self
