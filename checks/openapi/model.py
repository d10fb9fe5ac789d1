"""Turn an OpenAPI 2.0, 3.0 or 3.1 document into an `ApiInventory`.

Specs in use are often invalid; what is wrong is recorded in `ApiInventory.problems` and
reading goes on. Only a document that cannot be parsed (or is not a mapping at all, such as
an HTML error page read as a YAML string) fails.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from checks.openapi.inventory import (
    ApiInventory,
    Operation,
    Parameter,
    ParameterLocation,
    SecurityRequirement,
)
from checks.openapi.loading import (
    SpecUnparseable,
)
from checks.openapi.probe_urls import path_problem
from checks.openapi.refs import RefResolver
from checks.openapi.schemas import (
    MAX_ENUM_WALK,
    EnumLister,
    Enums,
    Variants,
    enum_of,
    media_schema,
    text,
    type_of,
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TOP_LEVEL = frozenset({"info", "paths", "security", "tags", "externalDocs"})
_TOP_LEVEL_2 = (
    _TOP_LEVEL
    | {"swagger", "host", "basePath", "schemes", "consumes", "produces"}
    | {"definitions", "parameters", "responses", "securityDefinitions"}
)
_TOP_LEVEL_3 = _TOP_LEVEL | {"openapi", "jsonSchemaDialect", "servers", "webhooks", "components"}
_LOCATIONS = frozenset(location.value for location in ParameterLocation)
_PATH_ITEM_KEYS = frozenset({*METHODS, "parameters", "servers", "summary", "description", "$ref"})
_TEMPLATE_PARAMETER = re.compile(r"\{[^{}]*\}")
_SERVER_VARIABLE = re.compile(r"\{([^{}]*)\}")


def build_inventory(
    document: Any, origin: str, *, resolver: RefResolver | None = None
) -> ApiInventory:
    """The inventory of `document`; `resolver` (made for this document) follows `$ref`s
    to other files, the default one only inside the document.

    Raises SpecUnparseable when `document` is not a mapping, BadInput from `$ref`s that
    may not or cannot be followed (see `RefResolver`).
    """
    if not isinstance(document, dict):
        raise SpecUnparseable(
            f"not an OpenAPI document: the top level is {type(document).__name__}, not a mapping",
            subject=origin,
        )
    return _Reader(document, resolver or RefResolver(document, origin)).inventory()


def template_of(path: str) -> str:
    """`/users/{id}` and `/users/{userId}` are both `/users/{}`; `?query` and trailing
    slashes are kept."""
    return _TEMPLATE_PARAMETER.sub("{}", path)


class _Reader:
    def __init__(self, document: dict[Any, Any], resolver: RefResolver) -> None:
        self.document = document
        self.resolver = resolver
        self.root = resolver.root_document
        self.problems: list[str] = []
        # id(view) -> (view, enums, variants, whole)
        self.enums: dict[int, tuple[Any, Enums, Variants, bool]] = {}
        self.lister = EnumLister(resolver.ref_name)
        self.swagger = "swagger" in document and "openapi" not in document

    def inventory(self) -> ApiInventory:
        document = self.document
        version = document.get("swagger" if self.swagger else "openapi")
        if version is None:
            self.problems.append("neither 'openapi' nor 'swagger' says which version this is")
        known = _TOP_LEVEL_2 if self.swagger else _TOP_LEVEL_3
        self.problems.extend(
            f"unknown top-level key '{key}'"
            for key in document
            if not str(key).startswith("x-") and key not in known
        )
        info = document.get("info")
        if not isinstance(info, dict):
            self.problems.append("info is missing" if info is None else "info is not a mapping")
            info = {}
        schemes = self._security_schemes()
        servers, base_path = self._servers_2() if self.swagger else self._servers_3()
        operations = self._operations(schemes)
        return ApiInventory(
            title=text(info.get("title")) or "",
            version=text(info.get("version")) or "",
            openapi_version=text(version) or "",
            servers=servers,
            base_path=base_path,
            operations=operations,
            security_schemes=schemes,
            problems=tuple(dict.fromkeys([*self.problems, *self.resolver.problems])),
        )

    def _servers_3(self) -> tuple[tuple[str, ...], str]:
        servers = self.document.get("servers")
        if servers is None:
            return (), ""
        urls: list[str] = []
        for index, server in enumerate(servers if isinstance(servers, list) else [servers]):
            if not isinstance(server, dict) or not isinstance(server.get("url"), str):
                self.problems.append(f"servers[{index}] has no url")
                continue
            variables = server.get("variables")
            defaults = variables if isinstance(variables, dict) else {}

            def default(match: re.Match[str], defaults: dict[Any, Any] = defaults) -> str:
                variable = defaults.get(match[1])
                value = variable.get("default") if isinstance(variable, dict) else None
                return match[0] if value is None else str(value)

            urls.append(_SERVER_VARIABLE.sub(default, server["url"]))
        if not urls:
            return (), ""
        try:
            path = urlsplit(urls[0]).path
        except ValueError:  # e.g. a bracketed host that is no IP address
            self.problems.append(f"servers[0] is not a URL: {urls[0]}")
            return tuple(urls), ""
        return tuple(urls), self._base_path(path, f"servers[0].url '{urls[0]}'")

    def _base_path(self, path: str, where: str) -> str:
        """`path` without trailing slashes, or "" (and a problem) when it is not a path."""
        problem = path_problem(path) if path else None
        if problem is not None:
            self.problems.append(f"{where}: its path {problem}")
            return ""
        return path.rstrip("/")

    def _servers_2(self) -> tuple[tuple[str, ...], str]:
        raw_base = text(self.document.get("basePath")) or ""
        base = self._base_path(raw_base, f"basePath '{raw_base}'")
        host = text(self.document.get("host"))
        schemes = self.document.get("schemes")
        names = [str(s) for s in schemes] if isinstance(schemes, list) and schemes else ["https"]
        shown = raw_base if base == raw_base.rstrip("/") else ""  # a rejected one is not shown
        if host:
            return tuple(f"{scheme}://{host}{shown}" for scheme in names), base
        return ((shown,) if shown else ()), base

    def _security_schemes(self) -> dict[str, str]:
        if self.swagger:
            raw = self.document.get("securityDefinitions")
        else:
            components = self.document.get("components")
            raw = components.get("securitySchemes") if isinstance(components, dict) else None
        schemes: dict[str, str] = {}
        for name, value in raw.items() if isinstance(raw, dict) else ():
            scheme, _ = self.resolver.deref(value, self.root)
            kind = scheme.get("type") if isinstance(scheme, dict) else None
            schemes[str(name)] = text(kind) or "unknown"
        return schemes

    def _operations(self, schemes: dict[str, str]) -> tuple[Operation, ...]:
        paths = self.document.get("paths")
        if not isinstance(paths, dict):
            if paths is not None:
                self.problems.append("paths is not a mapping")
            elif self.swagger or not {"webhooks", "components"} & self.document.keys():
                self.problems.append("paths is missing")
            return ()
        security = self.document.get("security")
        global_security = None if security is None else self._security(security, "", schemes)
        operations: list[Operation] = []
        seen: dict[str, str] = {}
        for key, raw_item in paths.items():
            path = str(key)
            if path.startswith("x-"):
                continue
            if not path.startswith("/"):
                self.problems.append(f"paths.{path} does not start with '/'")
            item, document = self._mapping(raw_item, self.root, f"paths.{path}")
            if item is None:
                continue
            self.problems.extend(
                f"paths.{path}: unknown key '{k}'"
                for k in item
                if k not in _PATH_ITEM_KEYS and not str(k).startswith("x-")
            )
            shared = self._parameters(item.get("parameters"), document, f"paths.{path}")
            for method in METHODS:
                if method not in item:
                    continue
                where = f"paths.{path}.{method}"
                raw, op_document = self._mapping(item[method], document, where)
                if raw is None:
                    continue
                operation = self._operation(
                    path, method, raw, op_document, shared, global_security, schemes
                )
                if seen.setdefault(operation.key, path) != path:
                    self.problems.append(
                        f"paths '{seen[operation.key]}' and '{path}' are the same template "
                        f"{operation.template}"
                    )
                operations.append(operation)
        order = {method: index for index, method in enumerate(METHODS)}
        return tuple(sorted(operations, key=lambda op: (op.template, op.path, order[op.method])))

    def _operation(
        self,
        path: str,
        method: str,
        raw: dict[Any, Any],
        document: str,
        shared: dict[tuple[str, str], tuple[dict[Any, Any], str]],
        global_security: tuple[SecurityRequirement, ...] | None,
        schemes: dict[str, str],
    ) -> Operation:
        where = f"paths.{path}.{method}"
        merged = {**shared, **self._parameters(raw.get("parameters"), document, where)}
        parameters: list[Parameter] = []
        body: tuple[dict[Any, Any], str] | None = None
        form: list[tuple[dict[Any, Any], str]] = []
        for (location, name), (param, param_document) in merged.items():
            if self.swagger and location == "body":
                body = (param, param_document)
            elif self.swagger and location == "formData":
                form.append((param, param_document))
            elif location in _LOCATIONS:
                parameters.append(self._parameter(name, location, param, param_document))
            else:
                self.problems.append(f"{where}: parameter '{name}' has unknown 'in': {location}")
        if self.swagger:
            request = self._request_2(raw, body, form, where)
        else:
            request = self._request_3(raw.get("requestBody"), document, where)
        security = (
            self._security(raw["security"], f"{where}.", schemes)
            if "security" in raw
            else global_security
        )
        sunset = raw.get("x-sunset")
        return Operation(
            method=method,
            path=path,
            template=template_of(path),
            operation_id=text(raw.get("operationId")),
            summary=text(raw.get("summary")),
            parameters=tuple(sorted(parameters, key=lambda p: (p.location, p.name))),
            request_body_required=request[0],
            request_media_types=request[1],
            request_schema=request[2],
            request_enums=request[3][0],
            request_variants=request[3][1],
            responses=self._responses(raw.get("responses"), document, where),
            security=security,
            deprecated=raw.get("deprecated") is True,
            sunset=None if sunset is None else str(sunset),
        )

    def _parameters(
        self, raw: Any, document: str, where: str
    ) -> dict[tuple[str, str], tuple[dict[Any, Any], str]]:
        """(in, name) -> (parameter, its document); header names compare case-blind."""
        if raw is None:
            return {}
        if not isinstance(raw, list):
            self.problems.append(f"{where}.parameters is not a list")
            return {}
        found: dict[tuple[str, str], tuple[dict[Any, Any], str]] = {}
        for index, item in enumerate(raw):
            param, param_document = self._mapping(item, document, f"{where}.parameters[{index}]")
            if param is None:
                continue
            name, location = param.get("name"), param.get("in")
            if not isinstance(name, str) or location is None:
                self.problems.append(f"{where}.parameters[{index}] has no 'name' and 'in'")
                continue
            key = str(location), name.lower() if location == "header" else name
            found[key] = (param, param_document)
        return found

    def _parameter(
        self, name: str, location: str, param: dict[Any, Any], document: str
    ) -> Parameter:
        schema: Any = param
        if not self.swagger:
            schema = param.get("schema")
            if schema is None:
                schema = media_schema(param.get("content"))
        view = self.resolver.schema_view(schema, document)
        return Parameter(
            name=str(param.get("name", name)),
            location=ParameterLocation(location),
            required=location == "path" or param.get("required") is True,
            type=type_of(view),
            enum=enum_of(view),
        )

    def _request_3(self, raw: Any, document: str, where: str) -> _Request:
        if raw is None:
            return False, (), None, ((), ())
        body, body_document = self._mapping(raw, document, f"{where}.requestBody")
        if body is None:
            return False, (), None, ((), ())
        content = body.get("content")
        if not isinstance(content, dict) or not content:
            self.problems.append(f"{where}.requestBody has no content")
            return body.get("required") is True, (), None, ((), ())
        digest, enums = self._schema(media_schema(content), body_document, where)
        types = tuple(sorted(str(key) for key in content))
        return body.get("required") is True, types, digest, enums

    def _request_2(
        self,
        operation: dict[Any, Any],
        body: tuple[dict[Any, Any], str] | None,
        form: list[tuple[dict[Any, Any], str]],
        where: str,
    ) -> _Request:
        consumes = operation.get("consumes", self.document.get("consumes"))
        types = tuple(sorted({str(t) for t in consumes})) if isinstance(consumes, list) else ()
        if body is not None:
            param, document = body
            digest, enums = self._schema(param.get("schema"), document, where)
            return param.get("required") is True, types, digest, enums
        if not form:
            return False, (), None, ((), ())
        properties = {
            str(param.get("name")): self.resolver.schema_view(
                {k: v for k, v in param.items() if k not in ("name", "in", "required")}, document
            )
            for param, document in form
        }
        required = sorted(str(param.get("name")) for param, _ in form if param.get("required"))
        schema = {"type": "object", "properties": properties, "required": required}
        return bool(required), types, self.resolver.digest(schema), self._enums(schema, where)

    def _schema(
        self, schema: Any, document: str, where: str
    ) -> tuple[str | None, tuple[Enums, Variants]]:
        if schema is None:
            return None, ((), ())
        view = self.resolver.schema_view(schema, document)
        return self.resolver.digest(view), self._enums(view, where)

    def _enums(self, view: Any, where: str) -> tuple[Enums, Variants]:
        known = self.enums.get(id(view))
        if known is None or known[0] is not view:
            known = self.enums[id(view)] = (view, *self.lister.list(view))
        if not known[3]:
            self.problems.append(
                f"{where}: request schema too large to list every enum "
                f"(more than {MAX_ENUM_WALK} entries)"
            )
        return known[1], known[2]

    def _responses(self, raw: Any, document: str, where: str) -> tuple[tuple[str, str | None], ...]:
        if raw is None:
            self.problems.append(f"{where}.responses is missing")
            return ()
        if not isinstance(raw, dict):
            self.problems.append(f"{where}.responses is not a mapping")
            return ()
        responses: list[tuple[str, str | None]] = []
        for key, value in raw.items():
            status = str(key)
            if status.startswith("x-"):
                continue
            response, response_document = self._mapping(
                value, document, f"{where}.responses.{status}"
            )
            schema = None
            if response is not None:
                schema = response.get("schema" if self.swagger else "content")
                schema = schema if self.swagger else media_schema(schema)
            digest = None
            if schema is not None:
                digest = self.resolver.digest(self.resolver.schema_view(schema, response_document))
            responses.append((status, digest))
        return tuple(sorted(responses))

    def _mapping(self, node: Any, document: str, where: str) -> tuple[dict[Any, Any] | None, str]:
        """`node`, `$ref`s followed, when it is a mapping; a problem recorded when not (a
        `$ref` leading nowhere is recorded by the resolver)."""
        value, value_document = self.resolver.deref(node, document)
        if isinstance(value, dict):
            return value, value_document
        if value is not None or not (isinstance(node, dict) and "$ref" in node):
            self.problems.append(f"{where} is not a mapping")
        return None, value_document

    def _security(
        self, raw: Any, where: str, schemes: dict[str, str]
    ) -> tuple[SecurityRequirement, ...] | None:
        if not isinstance(raw, list):
            self.problems.append(f"{where}security is not a list")
            return None
        requirements: set[SecurityRequirement] = set()
        for item in raw:
            if not isinstance(item, dict):
                self.problems.append(f"{where}security has an entry that is not a mapping")
                continue
            requirement = tuple(
                sorted(
                    (
                        str(name),
                        tuple(sorted(str(s) for s in scopes) if isinstance(scopes, list) else ()),
                    )
                    for name, scopes in item.items()
                )
            )
            self.problems.extend(
                f"{where}security names undefined scheme '{name}'"
                for name, _ in requirement
                if name not in schemes
            )
            requirements.add(SecurityRequirement(requirement))
        return tuple(sorted(requirements, key=lambda r: r.schemes))


_Request = tuple[bool, tuple[str, ...], str | None, tuple[Enums, Variants]]
