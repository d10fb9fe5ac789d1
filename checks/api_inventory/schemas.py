"""Reading schemas of a resolved OpenAPI document: media types, JSON types, enums."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from checks.api_inventory.variants import VARIANT_LISTS, NameOf, variant_keys

Enums = tuple[tuple[str, tuple[str, ...]], ...]
Variants = tuple[tuple[str, tuple[str, ...]], ...]  # (pointer of a oneOf/anyOf, variant keys)
MAX_ENUM_WALK = 50_000  # schema nodes looked at per request body when listing enums


def _no_name(_view: Any) -> str | None:
    return None


def primary_media_type(content: dict[Any, Any]) -> Any:
    """The media type whose schema stands for the body: JSON first, else the first name."""
    keys = sorted(content, key=str)
    for key in keys:
        if str(key).split(";")[0].strip().lower() == "application/json":
            return key
    return next((key for key in keys if str(key).split(";")[0].endswith("+json")), keys[0])


def list_enums(view: Any, name_of: NameOf = _no_name) -> tuple[Enums, Variants, bool]:
    """(JSON pointer into the schema, allowed values) of every `enum`, (pointer, variant
    keys) of every `oneOf`/`anyOf`, and whether the walk saw the whole schema (shared views
    make a DAG that can be huge as a tree). A variant's segment of a pointer is its key
    (see `variants`), not its index, so inserting a variant moves no other."""
    found: dict[str, tuple[str, ...]] = {}
    lists: dict[str, tuple[str, ...]] = {}
    stack: list[tuple[Any, str]] = [(view, "#")]
    for _ in range(MAX_ENUM_WALK):
        if not stack:
            return tuple(sorted(found.items())), tuple(sorted(lists.items())), True
        node, pointer = stack.pop()
        children: Iterable[tuple[Any, Any]] = ()
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                found[pointer] = enum_of(node)
            for name in VARIANT_LISTS:
                variants = node.get(name)
                if isinstance(variants, list):
                    keys = variant_keys(node, variants, name_of)
                    lists[f"{pointer}/{name}"] = tuple(keys)
                    stack.extend(
                        (child, f"{pointer}/{name}/{escape(key)}")
                        for key, child in zip(keys, variants, strict=True)
                        if isinstance(child, dict | list)
                    )
            children = ((k, v) for k, v in node.items() if k not in VARIANT_LISTS)
        elif isinstance(node, list):
            children = enumerate(node)
        stack.extend(
            (child, f"{pointer}/{escape(str(key))}")
            for key, child in children
            if isinstance(child, dict | list)
        )
    return tuple(sorted(found.items())), tuple(sorted(lists.items())), False


def media_schema(content: Any) -> Any:
    if not isinstance(content, dict) or not content:
        return None
    media = content[primary_media_type(content)]
    return media.get("schema") if isinstance(media, dict) else None


def type_of(view: Any) -> str | None:
    if not isinstance(view, dict):
        return None
    kind = view.get("type")
    if isinstance(kind, list):
        names = sorted({str(k) for k in kind} - {"null"})
        return "|".join([*names, "null"] if "null" in kind else names) or None
    if kind is None:
        return None
    return f"{kind}|null" if view.get("nullable") is True else str(kind)


def enum_of(view: Any) -> tuple[str, ...]:
    if not isinstance(view, dict):
        return ()
    values = view.get("enum")
    if not isinstance(values, list) and isinstance(view.get("items"), dict):
        values = view["items"].get("enum")
    if not isinstance(values, list):
        return ()
    return tuple(v if isinstance(v, str) else json.dumps(v, default=str) for v in values)


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def text(value: Any) -> str | None:
    return None if value is None else str(value)
