"""The target's OpenAPI document, read with the loader api_inventory uses (checks/openapi:
same limits, `$ref` rules and egress), plus what the inventory does not keep: parameter
examples and defaults, and the OpenID Connect discovery URLs of the security schemes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.egress import EgressPolicy
from checks.openapi.inventory import ApiInventory, Operation
from checks.openapi.loading import LoadLimits, fetch_spec, load_document, read_spec_file
from checks.openapi.model import build_inventory
from checks.openapi.refs import RefResolver

ParameterKey = tuple[str, str]  # (in, name); header names lower-cased


@dataclass(frozen=True, slots=True)
class SpecFacts:
    inventory: ApiInventory
    # operation key -> (in, name) -> example value as it goes on the wire
    examples: Mapping[str, Mapping[ParameterKey, str]]
    openid_connect_urls: tuple[str, ...]
    # operation key -> media types of its documented 2xx answers (lower case, no parameters)
    answer_media_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def read_spec_url(
    url: str,
    *,
    egress: EgressPolicy,
    timeout: float,
    max_bytes: int,
    auth_header: str | None,
    verify: bool | str,
    deadline: float,
) -> SpecFacts:
    """The spec at `url` (no remote `$ref`s). Raises as `fetch_spec` and `build_inventory`."""
    limits = LoadLimits(max_bytes=max_bytes)
    response = fetch_spec(
        url, timeout, max_bytes, auth_header, verify, egress=egress, deadline=deadline
    )
    document = load_document(response.body, response.url, limits)
    resolver = RefResolver(document, url, response.url, limits=limits)
    return _facts(document, url, resolver)


def read_spec_path(path: Path, max_bytes: int) -> SpecFacts:
    """The spec in the file `path` (no `$ref`s to other files' origins)."""
    limits = LoadLimits(max_bytes=max_bytes)
    location = path.resolve()
    data = read_spec_file(location, max_bytes)
    document = load_document(data, str(path), limits)
    resolver = RefResolver(document, str(path), str(location), limits=limits)
    return _facts(document, str(path), resolver)


def _facts(document: Any, origin: str, resolver: RefResolver) -> SpecFacts:
    inventory = build_inventory(document, origin, resolver=resolver)
    walker = _Walker(document, resolver)
    examples = {
        operation.key: walker.examples(operation)
        for operation in inventory.operations
        if not operation.public
    }
    media_types = {
        operation.key: walker.answer_media_types(operation)
        for operation in inventory.operations
        if not operation.public
    }
    return SpecFacts(inventory, examples, walker.openid_connect_urls(), media_types)


class _Walker:
    def __init__(self, document: Any, resolver: RefResolver) -> None:
        self.document = document
        self.resolver = resolver
        self.root = resolver.root_document
        self.swagger = isinstance(document, dict) and "openapi" not in document

    def _get(self, node: Any, key: str, where: str) -> tuple[Any, str]:
        if not isinstance(node, dict):
            return None, where
        return self.resolver.deref(node.get(key), where)

    def examples(self, operation: Operation) -> dict[ParameterKey, str]:
        paths, where = self._get(self.document, "paths", self.root)
        item, item_where = self._get(paths, operation.path, where)
        raw, raw_where = self._get(item, operation.method, item_where)
        found: dict[ParameterKey, str] = {}
        for parameters, at in (
            self._get(item, "parameters", item_where),
            self._get(raw, "parameters", raw_where),
        ):
            for entry in parameters if isinstance(parameters, list) else ():
                parameter, parameter_where = self.resolver.deref(entry, at)
                if not isinstance(parameter, dict):
                    continue
                name, location = parameter.get("name"), parameter.get("in")
                if not isinstance(name, str) or not isinstance(location, str):
                    continue
                key = (location, name.lower() if location == "header" else name)
                value = self._example(parameter, parameter_where)
                if value is not None:
                    found[key] = value
                else:
                    found.pop(key, None)  # the operation's own definition wins
        return found

    def answer_media_types(self, operation: Operation) -> tuple[str, ...]:
        paths, where = self._get(self.document, "paths", self.root)
        item, item_where = self._get(paths, operation.path, where)
        raw, raw_where = self._get(item, operation.method, item_where)
        found: list[Any] = []
        if self.swagger:
            produces = raw.get("produces") if isinstance(raw, dict) else None
            if produces is None and isinstance(self.document, dict):
                produces = self.document.get("produces")
            found.extend(produces if isinstance(produces, list) else ())
        else:
            responses, responses_where = self._get(raw, "responses", raw_where)
            for status in responses if isinstance(responses, dict) else ():
                if not str(status).startswith("2") and str(status).upper() != "2XX":
                    continue
                response, response_where = self._get(responses, status, responses_where)
                content, _ = self._get(response, "content", response_where)
                found.extend(content if isinstance(content, dict) else ())
        media_types = {
            str(media_type).split(";")[0].strip().lower()
            for media_type in found
            if isinstance(media_type, str)
        }
        return tuple(sorted(media_types))

    def _example(self, parameter: dict[Any, Any], where: str) -> str | None:
        candidates: list[Any] = [parameter.get("example"), parameter.get("x-example")]
        examples = parameter.get("examples")
        if isinstance(examples, dict):
            for entry in examples.values():
                resolved, _ = self.resolver.deref(entry, where)
                if isinstance(resolved, dict) and "value" in resolved:
                    candidates.append(resolved["value"])
        schema, _ = (
            (parameter, where)
            if self.swagger
            else self.resolver.deref(parameter.get("schema"), where)
        )
        if isinstance(schema, dict):
            candidates.append(schema.get("example"))
            listed = schema.get("examples")
            if isinstance(listed, list) and listed:
                candidates.append(listed[0])
            candidates.append(schema.get("default"))
        for candidate in candidates:
            if isinstance(candidate, bool):
                return "true" if candidate else "false"
            if isinstance(candidate, str | int | float):
                return str(candidate)
        return None

    def openid_connect_urls(self) -> tuple[str, ...]:
        if self.swagger:
            schemes, where = self._get(self.document, "securityDefinitions", self.root)
        else:
            components, where = self._get(self.document, "components", self.root)
            schemes, where = self._get(components, "securitySchemes", where)
        urls: list[str] = []
        for entry in schemes.values() if isinstance(schemes, dict) else ():
            scheme, _ = self.resolver.deref(entry, where)
            if isinstance(scheme, dict) and scheme.get("type") == "openIdConnect":
                url = scheme.get("openIdConnectUrl")
                if isinstance(url, str) and url not in urls:
                    urls.append(url)
        return tuple(urls)
