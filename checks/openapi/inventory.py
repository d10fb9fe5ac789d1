"""The API inventory: operations of an OpenAPI document, reduced to what diffs and log
matching need. Frozen values, no I/O; `to_json`/`from_json` for snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ParameterLocation(StrEnum):
    PATH = "path"
    QUERY = "query"
    HEADER = "header"
    COOKIE = "cookie"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str  # as written; header names compare case-insensitively
    location: ParameterLocation
    required: bool
    type: str | None  # JSON type ("string", "integer", "array", "object", "string|null" ...)
    enum: tuple[str, ...] = ()  # allowed values, as strings, when the schema lists them


@dataclass(frozen=True, slots=True)
class SecurityRequirement:
    """All schemes of one requirement must be satisfied (OpenAPI's AND)."""

    schemes: tuple[tuple[str, tuple[str, ...]], ...]  # (scheme name, sorted scopes)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # lower case: get, put, post, delete, options, head, patch, trace
    path: str  # the path template as written in the document, e.g. /users/{userId}
    template: str  # normalised: /users/{} (parameter names dropped; ?query kept)
    operation_id: str | None = None
    summary: str | None = None
    parameters: tuple[Parameter, ...] = ()
    request_body_required: bool = False
    request_media_types: tuple[str, ...] = ()
    request_schema: str | None = None  # digest of the resolved request schema
    request_enums: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (json path, values)
    # (json path of a oneOf/anyOf, its variants' keys): see `variants`
    request_variants: tuple[tuple[str, tuple[str, ...]], ...] = ()
    responses: tuple[tuple[str, str | None], ...] = ()  # (status code or "default", digest)
    security: tuple[SecurityRequirement, ...] | None = None  # effective; () means public
    deprecated: bool = False
    sunset: str | None = None  # x-sunset

    @property
    def key(self) -> str:
        """Identity across versions of the document: `GET /users/{}`."""
        return f"{self.method.upper()} {self.template}"

    @property
    def public(self) -> bool:
        """No security requirement applies (or one alternative is the empty requirement)."""
        return (
            self.security is None or any(not r.schemes for r in self.security) or not self.security
        )


@dataclass(frozen=True, slots=True)
class ApiInventory:
    title: str
    version: str
    openapi_version: str  # "2.0", "3.0.3", "3.1.0" ...
    servers: tuple[str, ...] = ()  # server URLs (2.0: scheme://host + basePath)
    base_path: str = ""  # the path prefix the servers add ("" or e.g. /v1)
    operations: tuple[Operation, ...] = ()
    security_schemes: Mapping[str, str] = field(default_factory=dict)  # name -> type
    problems: tuple[str, ...] = ()  # validation problems found while reading (not fatal)

    def by_key(self) -> dict[str, Operation]:
        return {operation.key: operation for operation in self.operations}


def to_json(inventory: ApiInventory) -> dict[str, Any]:
    return {
        "title": inventory.title,
        "version": inventory.version,
        "openapi_version": inventory.openapi_version,
        "servers": list(inventory.servers),
        "base_path": inventory.base_path,
        "security_schemes": dict(inventory.security_schemes),
        "problems": list(inventory.problems),
        "operations": [_operation_json(op) for op in inventory.operations],
    }


def from_json(document: Mapping[str, Any]) -> ApiInventory:
    return ApiInventory(
        title=document["title"],
        version=document["version"],
        openapi_version=document["openapi_version"],
        servers=tuple(document["servers"]),
        base_path=document["base_path"],
        security_schemes=dict(document["security_schemes"]),
        problems=tuple(document["problems"]),
        operations=tuple(_operation(op) for op in document["operations"]),
    )


def _operation_json(op: Operation) -> dict[str, Any]:
    return {
        "method": op.method,
        "path": op.path,
        "template": op.template,
        "operation_id": op.operation_id,
        "summary": op.summary,
        "parameters": [
            [p.name, p.location.value, p.required, p.type, list(p.enum)] for p in op.parameters
        ],
        "request_body_required": op.request_body_required,
        "request_media_types": list(op.request_media_types),
        "request_schema": op.request_schema,
        "request_enums": [[path, list(values)] for path, values in op.request_enums],
        "request_variants": [[path, list(keys)] for path, keys in op.request_variants],
        "responses": [list(r) for r in op.responses],
        "security": (
            None
            if op.security is None
            else [[[name, list(scopes)] for name, scopes in r.schemes] for r in op.security]
        ),
        "deprecated": op.deprecated,
        "sunset": op.sunset,
    }


def _operation(document: Mapping[str, Any]) -> Operation:
    security = document["security"]
    return Operation(
        method=document["method"],
        path=document["path"],
        template=document["template"],
        operation_id=document["operation_id"],
        summary=document["summary"],
        parameters=tuple(
            Parameter(name, ParameterLocation(location), required, kind, tuple(enum))
            for name, location, required, kind, enum in document["parameters"]
        ),
        request_body_required=document["request_body_required"],
        request_media_types=tuple(document["request_media_types"]),
        request_schema=document["request_schema"],
        request_enums=tuple((path, tuple(values)) for path, values in document["request_enums"]),
        request_variants=tuple(
            (path, tuple(keys)) for path, keys in document.get("request_variants", ())
        ),
        responses=tuple((status, digest) for status, digest in document["responses"]),
        security=(
            None
            if security is None
            else tuple(
                SecurityRequirement(tuple((name, tuple(scopes)) for name, scopes in requirement))
                for requirement in security
            )
        ),
        deprecated=document["deprecated"],
        sunset=document["sunset"],
    )
