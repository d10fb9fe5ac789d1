"""The parts of the OSV schema (https://ossf.github.io/osv-schema/) that patch_level reads.

This is a file-format edge, so it is pydantic. Unknown fields are ignored (the schema grows);
wrong types, a missing `id` or `modified`, and an event with other than exactly one key are
errors, reported as `OsvFormatError`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_PROBLEMS_SHOWN = 3
MAX_YAML_NODES = 200_000  # YAML aliases can make a small file a huge tree ("billion laughs")
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is outside the years 1-9999 in UTC") from None


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


def parse_record(data: bytes, origin: str, *, is_yaml: bool = False) -> OsvRecord:
    """Validate one OSV document, JSON or (`is_yaml`) YAML; `origin` names it in errors.

    Raises OsvFormatError, and nothing else, whatever the bytes: not UTF-8, not JSON or YAML,
    nested too deeply to read, or not following the schema.
    """
    try:
        text = _yaml_as_json(data, origin) if is_yaml else data
        return OsvRecord.model_validate_json(text)
    except ValidationError as error:
        raise OsvFormatError(origin, _record_id(data, is_yaml), _describe(error)) from None
    except RecursionError:
        raise OsvFormatError(
            origin,
            _leading_id(data),
            "is nested too deeply to read (no OSV record nests like this)",
        ) from None


def _yaml_as_json(data: bytes, origin: str) -> str:
    """The YAML document as JSON text, so that both formats are validated alike."""
    try:
        document = yaml.load(data, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())
        raise OsvFormatError(origin, None, f"is not valid YAML: {problem}") from None
    if _node_count(document) > MAX_YAML_NODES:
        raise OsvFormatError(
            origin, None, f"expands to more than {MAX_YAML_NODES} values (YAML aliases?)"
        )
    try:
        return json.dumps(document, default=_yaml_scalar)
    except (TypeError, ValueError) as error:
        raise OsvFormatError(origin, None, f"holds a value OSV has no place for: {error}") from None


def _node_count(document: object) -> int:
    count, stack = 0, [document]
    while stack and count <= MAX_YAML_NODES:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _yaml_scalar(value: object) -> str:
    # YAML reads unquoted timestamps as dates and datetimes; the schema wants RFC 3339 text.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"
    raise TypeError(f"a YAML value of type {type(value).__name__} has no JSON form")


def _leading_id(data: bytes) -> str | None:
    """The id of a JSON record too deeply nested to read, when it comes first."""
    leading = _LEADING_ID.match(data)
    return leading.group(1).decode() if leading else None


def _record_id(data: bytes, is_yaml: bool) -> str | None:
    try:
        document = yaml.load(data, Loader=_YAML_LOADER) if is_yaml else json.loads(data)  # noqa: S506
    except RecursionError:
        return _leading_id(data)
    except (ValueError, yaml.YAMLError):
        return None
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
