"""Alerting configuration (the `alerts:` section), validated at the config edge.

Secrets come from `*_file` keys (read once when the config is loaded, so a reload picks up a
rotated secret) or inline; they are SecretStr and never logged.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from alerts.matchers import check_matchers
from monitor.durations import Duration, NonNegativeDuration
from monitor.model import CheckKind, Severity
from monitor.secret_files import read_secret_file

_STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _secret(model: BaseModel, key: str, required: bool) -> SecretStr | None:
    """`key` inline or from `key_file` (exactly one when required)."""
    inline: SecretStr | None = getattr(model, key)
    path: Path | None = getattr(model, f"{key}_file")
    if inline is not None and path is not None:
        raise ValueError(f"give {key} or {key}_file, not both")
    if path is not None:
        return read_secret_file(path, f"{key}_file")
    if inline is None and required:
        raise ValueError(f"{key} or {key}_file is required")
    return inline


def _http_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL (use https://host/path)")
    return url


HttpUrl = Annotated[str, AfterValidator(_http_url)]


class SlackConfig(BaseModel):
    """A Slack incoming webhook (Block Kit)."""

    model_config = _STRICT

    webhook_url: SecretStr | None = None
    webhook_url_file: Path | None = None
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        url = _secret(self, "webhook_url", required=True)
        assert url is not None
        _http_url(url.get_secret_value())
        object.__setattr__(self, "webhook_url", url)
        object.__setattr__(self, "webhook_url_file", None)
        return self


class SmtpSecurity(StrEnum):
    TLS = "tls"  # implicit TLS, port 465 (smtps://)
    STARTTLS = "starttls"  # port 587 (smtp://)


class EmailConfig(BaseModel):
    model_config = _STRICT

    smtp: str = Field(
        description="smtps://host[:465] (implicit TLS) or smtp://host[:587] (STARTTLS)"
    )
    sender: str = Field(alias="from")
    to: tuple[str, ...] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_file: Path | None = Field(default=None, description="CA bundle to verify the server")
    timeout: Duration = timedelta(seconds=20)

    @field_validator("smtp")
    @classmethod
    def _smtp_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("use smtps://host[:465] or smtp://host[:587]")
        return url

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        object.__setattr__(self, "password", _secret(self, "password", required=False))
        object.__setattr__(self, "password_file", None)
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.smtp).hostname or ""

    @property
    def security(self) -> SmtpSecurity:
        return SmtpSecurity.TLS if urlsplit(self.smtp).scheme == "smtps" else SmtpSecurity.STARTTLS

    @property
    def port(self) -> int:
        return urlsplit(self.smtp).port or (465 if self.security is SmtpSecurity.TLS else 587)


class WebhookConfig(BaseModel):
    """Any HTTP endpoint: a JSON body signed with HMAC-SHA256 of the body."""

    model_config = _STRICT

    url: HttpUrl
    secret: SecretStr | None = None
    secret_file: Path | None = None
    signature_header: str = "X-Apivigil-Signature"
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        object.__setattr__(self, "secret", _secret(self, "secret", required=True))
        object.__setattr__(self, "secret_file", None)
        return self


class AlertmanagerConfig(BaseModel):
    """POST /api/v2/alerts; firing alerts are re-sent every `resend_interval`."""

    model_config = _STRICT

    url: HttpUrl = Field(description="base URL, e.g. http://127.0.0.1:9093")
    resend_interval: Duration = timedelta(minutes=1)
    timeout: Duration = timedelta(seconds=10)


class GrafanaConfig(BaseModel):
    """Grafana annotations through its HTTP API (grafana-client)."""

    model_config = _STRICT

    url: HttpUrl
    token: SecretStr | None = None
    token_file: Path | None = None
    dashboard_uid: str | None = None
    tags: tuple[str, ...] = ("apivigil",)
    timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        object.__setattr__(self, "token", _secret(self, "token", required=True))
        object.__setattr__(self, "token_file", None)
        return self


class ReceiverConfig(BaseModel):
    model_config = _STRICT

    name: str = Field(pattern=_NAME)
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None
    alertmanager: AlertmanagerConfig | None = None
    grafana: GrafanaConfig | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        kinds = [
            k for k in ("slack", "email", "webhook", "alertmanager", "grafana") if getattr(self, k)
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a receiver needs exactly one of slack, email, webhook, alertmanager, grafana"
                + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(
            k for k in ("slack", "email", "webhook", "alertmanager", "grafana") if getattr(self, k)
        )


class RouteMatch(BaseModel):
    """All given conditions must hold. `labels` are the target's labels and the finding's own
    (e.g. `overdue: "true"` on a patch_level vulnerability past its deadline)."""

    model_config = _STRICT

    check: CheckKind | str | None = Field(
        default=None, description="check name, or 'check_failing'"
    )
    severity: Severity | None = Field(default=None, description="this severity or worse")
    rule: str | None = Field(default=None, description="rule id glob, e.g. TLS-PROTOCOL-*")
    target: str | None = Field(default=None, description="target name glob")
    labels: dict[str, str] = Field(default_factory=dict)


class RouteConfig(BaseModel):
    model_config = _STRICT

    name: str | None = Field(default=None, pattern=_NAME)
    match: RouteMatch = RouteMatch()
    receivers: tuple[str, ...] = Field(min_length=1)
    group_by: tuple[str, ...] = ("target",)
    group_wait: NonNegativeDuration = timedelta(seconds=30)
    group_interval: Duration = timedelta(minutes=5)
    repeat_interval: Duration = timedelta(hours=4)
    send_resolved: bool = True
    notify_after: int = Field(
        default=1,
        ge=1,
        description="consecutive sightings before this route notifies of an open finding (a "
        "delay; whether a finding is open or resolved is the global `hysteresis:` alone)",
    )
    # Deprecated: findings open and resolve by the global `hysteresis:` only (one state for
    # /metrics, findings and alerts). Accepted so old configs load; `config check` refuses a
    # value above the global one and warns about the others (monitor.settings); never read.
    open_after: int | None = Field(
        default=None, ge=1, description="deprecated and ignored: use notify_after"
    )
    resolve_after: int | None = Field(
        default=None, ge=1, description="deprecated and ignored: use hysteresis.resolve_after"
    )
    continue_matching: bool = Field(
        default=False, alias="continue", description="also try the routes after this one"
    )

    @field_validator("group_by")
    @classmethod
    def _group_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        for label in labels:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", label):
                raise ValueError(f"{label!r} is not a label name")
        return labels


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


class WeeklyWindow(BaseModel):
    model_config = _STRICT

    days: tuple[Weekday, ...] = Field(min_length=1)
    start: time
    end: time = Field(description="may be before start: the window then ends the next day")


class MaintenanceWindowConfig(BaseModel):
    """Alerts matching `matchers` are muted while the window is open (recurring)."""

    model_config = _STRICT

    name: str = Field(pattern=_NAME)
    matchers: dict[str, str] = Field(default_factory=dict, description="label -> value or ~regex")
    weekly: WeeklyWindow | None = None
    cron: str | None = Field(default=None, description="window starts, e.g. '0 2 * * sat'")
    duration: Duration | None = Field(default=None, description="length of a cron window")
    timezone: str = "UTC"

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, matchers: dict[str, str]) -> dict[str, str]:
        if matchers:  # none: the window mutes every alert
            check_matchers(matchers)
        return matchers

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}") from None
        return name

    @model_validator(mode="after")
    def _one_schedule(self) -> Self:
        if (self.weekly is None) == (self.cron is None):
            raise ValueError("a maintenance window needs exactly one of weekly or cron")
        if self.cron is not None:
            if self.duration is None:
                raise ValueError("a cron window needs a duration")
            _validate_cron(self.cron, self.timezone)
        return self


def _validate_cron(expression: str, zone: str) -> None:
    try:
        CronTrigger.from_crontab(expression, timezone=ZoneInfo(zone))
    except ValueError as error:
        raise ValueError(f"cron {expression!r}: {error}") from None


class DispatcherConfig(BaseModel):
    model_config = _STRICT

    initial_backoff: Duration = timedelta(seconds=10)
    max_backoff: Duration = timedelta(minutes=10)
    max_age: Duration = Field(
        default=timedelta(hours=24), description="undelivered notifications older than this fail"
    )
    batch_size: int = Field(default=50, ge=1, le=1000)
    workers: int = Field(default=4, ge=1, le=64)


class AlertsConfig(BaseModel):
    model_config = _STRICT

    receivers: tuple[ReceiverConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = ()
    maintenance_windows: tuple[MaintenanceWindowConfig, ...] = ()
    check_failing_after: int = Field(
        default=3, ge=1, description="consecutive errors of a check before a 'check failing' alert"
    )
    templates_dir: Path | None = Field(
        default=None, description="files here override the built-in message templates"
    )
    external_url: str | None = Field(default=None, description="base URL for links in messages")
    dispatcher: DispatcherConfig = DispatcherConfig()

    @model_validator(mode="after")
    def _references(self) -> Self:
        names = [receiver.name for receiver in self.receivers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"receivers named twice: {', '.join(duplicates)}")
        for index, route in enumerate(self.routes):
            unknown = [r for r in route.receivers if r not in names]
            if unknown:
                raise ValueError(f"routes[{index}] names unknown receiver(s): {', '.join(unknown)}")
        return self

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)

    def route_name(self, index: int) -> str:
        return self.routes[index].name or f"route-{index}"
