"""Configuration of the patch_level check: inventory sources, advisories, EOL data, deadlines."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from checks.interface import CheckParams
from monitor.durations import Duration
from monitor.model import Severity

if TYPE_CHECKING:  # validating a config imports parameter models only
    from checks.patch_level.sources.os_release import OsRelease

DEFAULT_ADVISORY_INDEX = Path("apivigil-advisories.db")
_KINDS = (
    "dpkg_status",
    "rpm_list",
    "rpm_query",
    "apk_installed",
    "site_packages",
    "requirements",
    "poetry_lock",
    "uv_lock",
    "sbom",
    "banner",
)
# inventories of an operating system's package database: their distribution must be known
_OS_DATABASES = ("dpkg_status", "rpm_list", "rpm_query", "apk_installed")


class InventorySource(BaseModel):
    """Exactly one inventory kind; `os_release` tells distributions' release apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, pattern=r"^[^|\s][^|]*$")
    dpkg_status: Path | None = None
    rpm_list: Path | None = Field(default=None, description="output of rpm -qa --queryformat")
    rpm_query: bool | None = Field(default=None, description="run rpm -qa on this machine")
    apk_installed: Path | None = None
    site_packages: Path | None = None
    requirements: Path | None = Field(default=None, description="pinned requirements file")
    poetry_lock: Path | None = None
    uv_lock: Path | None = None
    sbom: str | None = Field(default=None, description="CycloneDX/SPDX JSON: a path or a URL")
    banner: bool | str | None = Field(
        default=None, description="true: GET the target's URL; or a URL; read Server etc."
    )
    os_release: Path | None = Field(default=None, description="/etc/os-release of that system")
    distribution: str | None = Field(
        default=None,
        description="instead of os_release: the OSV distribution, e.g. 'Ubuntu:22.04', 'Debian:12'",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> InventorySource:
        given = [kind for kind in _KINDS if getattr(self, kind) not in (None, False)]
        if len(given) != 1:
            raise ValueError(
                f"an inventory source needs exactly one of {', '.join(_KINDS)}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.distribution is not None:
            if self.os_release is not None:
                raise ValueError("give os_release or distribution, not both")
            from checks.patch_level.sources.os_release import stated_distribution  # noqa: PLC0415

            stated_distribution(self.distribution)  # raises ValueError naming the choices
        if given[0] in _OS_DATABASES and self.os_release is None and self.distribution is None:
            raise ValueError(
                f"a {given[0]} source needs os_release (the /etc/os-release of that system) "
                "or distribution (e.g. 'Ubuntu:22.04'): without them the packages' "
                "distribution is unknown and their advisories cannot be chosen"
            )
        return self

    def operating_system(self) -> Path | OsRelease | None:
        """The os-release file, or the distribution stated, that the packages belong to."""
        if self.distribution is not None:
            from checks.patch_level.sources.os_release import stated_distribution  # noqa: PLC0415

            return stated_distribution(self.distribution)
        return self.os_release

    @property
    def kind(self) -> str:
        return next(kind for kind in _KINDS if getattr(self, kind) not in (None, False))

    @property
    def id(self) -> str:
        if self.name:
            return self.name
        value = getattr(self, self.kind)
        return self.kind if isinstance(value, bool) else f"{self.kind}:{value}"


class PatchDeadlines(BaseModel):
    """Days after a fix is published by which it must be deployed (NIST SP 800-40)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    critical: Duration = timedelta(days=15)
    high: Duration = timedelta(days=30)
    medium: Duration = timedelta(days=90)
    low: Duration = timedelta(days=180)

    def for_severity(self, severity: Severity) -> timedelta | None:
        return {
            Severity.CRITICAL: self.critical,
            Severity.HIGH: self.high,
            Severity.MEDIUM: self.medium,
            Severity.LOW: self.low,
        }.get(severity)


class OsvApi(BaseModel):
    """Ask the OSV API as well as the offline index (off unless configured)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(default="https://api.osv.dev", pattern=r"^https?://")
    timeout: Duration = timedelta(seconds=30)


class PatchLevelParams(CheckParams):
    sources: tuple[InventorySource, ...] = Field(min_length=1)
    advisories: Path = Field(
        default=DEFAULT_ADVISORY_INDEX, description="index built by `apivigil advisories update`"
    )
    osv_api: OsvApi | None = Field(
        default=None, description="also query the OSV API (needs network access to it)"
    )
    eol_data: Path | None = Field(
        default=None, description="directory of endoflife.date product files (<slug>.json)"
    )
    os_release: Path | None = Field(
        default=None, description="/etc/os-release of the host, for the OS end-of-life check"
    )
    deadlines: PatchDeadlines = PatchDeadlines()
    unknown_severity: Severity = Field(
        default=Severity.MEDIUM,
        description="severity of advisories that rate none, nor do their aliases",
    )
    overdue_severity: Severity | None = Field(
        default=None,
        description="severity of a vulnerability past its deadline (default: one step higher)",
    )
    max_advisory_age: Duration = Field(
        default=timedelta(days=7),
        description="an advisory index older than this raises PATCH-ADVISORIES-STALE",
    )
    verify_tls: bool = True
    network_timeout: Duration = timedelta(seconds=15)
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1, description="per file or download")

    @model_validator(mode="after")
    def _unique_ids(self) -> PatchLevelParams:
        ids = [source.id for source in self.sources]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"sources named twice: {', '.join(duplicates)}; give them names")
        return self
