"""The parts of the OSV schema (https://ossf.github.io/osv-schema/) that patch_level reads.

This is a file-format edge, so it is pydantic. Unknown fields are ignored (the schema grows);
wrong types, a missing `id` or `modified`, and an event with other than exactly one key are
errors, reported as `OsvFormatError`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_PROBLEMS_SHOWN = 3


_LEADING_ID = re.compile(rb'\A\s*\{\s*"id"\s*:\s*"([A-Za-z0-9._:-]{1,200})"')


class OsvFormatError(Exception):
    """An OSV record (one file, or one member of a zip) that does not follow the schema."""

    def __init__(self, origin: str, record_id: str | None, problem: str) -> None:
        super().__init__(origin, record_id, problem)
        self.origin = origin
        self.record_id = record_id
        self.problem = problem

    def __str__(self) -> str:
        record = f" (record {self.record_id})" if self.record_id else ""
        return f"{self.origin}{record}: {self.problem}"


def _as_utc(value: datetime) -> datetime:
    # The schema requires RFC 3339 with "Z"; a few feeds omit it and mean UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class RangeType(StrEnum):
    ECOSYSTEM = "ECOSYSTEM"
    SEMVER = "SEMVER"
    GIT = "GIT"


class EventKind(StrEnum):
    INTRODUCED = "introduced"
    FIXED = "fixed"
    LAST_AFFECTED = "last_affected"
    LIMIT = "limit"


class OsvEvent(_Model):
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None

    @model_validator(mode="after")
    def _exactly_one_key(self) -> Self:
        present = [kind.value for kind in EventKind if getattr(self, kind.value) is not None]
        if len(present) != 1:
            found = ", ".join(present) or "none"
            raise ValueError(f"an event has exactly one of {_EVENT_KEYS}; found {found}")
        return self

    @property
    def kind(self) -> EventKind:
        return next(kind for kind in EventKind if getattr(self, kind.value) is not None)

    @property
    def version(self) -> str:
        value: str = getattr(self, self.kind.value)
        return value


_EVENT_KEYS = ", ".join(kind.value for kind in EventKind)


class OsvRange(_Model):
    type: RangeType
    repo: str | None = None
    events: list[OsvEvent] = Field(min_length=1)

    @model_validator(mode="after")
    def _git_needs_repo(self) -> Self:
        if self.type is RangeType.GIT and not self.repo:
            raise ValueError("a GIT range needs a repo")
        return self


class OsvPackage(_Model):
    ecosystem: str
    name: str
    purl: str | None = None


class OsvSeverity(_Model):
    type: str  # CVSS_V2, CVSS_V3, CVSS_V4, Ubuntu, ... (new types appear; unknown ones are skipped)
    score: str


class OsvAffected(_Model):
    package: OsvPackage | None = None
    severity: list[OsvSeverity] = []
    ranges: list[OsvRange] = []
    versions: list[str] = []
    ecosystem_specific: dict[str, Any] | None = None
    database_specific: dict[str, Any] | None = None


class OsvReference(_Model):
    type: str
    url: str


class OsvRecord(_Model):
    schema_version: str | None = None
    id: str = Field(min_length=1)
    modified: UtcDatetime
    published: UtcDatetime | None = None
    withdrawn: UtcDatetime | None = None
    aliases: list[str] = []
    related: list[str] = []
    summary: str = ""
    details: str = ""
    severity: list[OsvSeverity] = []
    affected: list[OsvAffected] = []
    references: list[OsvReference] = []
    database_specific: dict[str, Any] | None = None


def parse_record(data: bytes, origin: str) -> OsvRecord:
    """Validate one OSV JSON document; `origin` names where it came from in errors.

    Raises OsvFormatError when the bytes are not JSON or do not follow the schema.
    """
    try:
        return OsvRecord.model_validate_json(data)
    except ValidationError as error:
        raise OsvFormatError(origin, _record_id(data), _describe(error)) from None
    except RecursionError:
        raise OsvFormatError(origin, _record_id(data), "JSON nested too deeply") from None


def _record_id(data: bytes) -> str | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    except RecursionError:  # nested too deeply to read: the id, when it comes first
        leading = _LEADING_ID.match(data)
        return leading.group(1).decode() if leading else None
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        return str(document["id"]) or None
    return None


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False)[:MAX_PROBLEMS_SHOWN]:
        where = ".".join(str(part) for part in detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    hidden = error.error_count() - len(problems)
    if hidden > 0:
        problems.append(f"and {hidden} more problem(s)")
    return "; ".join(problems)
