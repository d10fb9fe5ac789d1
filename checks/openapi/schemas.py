"""Reading schemas of a resolved OpenAPI document: media types, JSON types, enums."""

from __future__ import annotations

import json
from typing import Any

from checks.openapi.variants import VARIANT_LISTS, NameOf, variant_keys

Enums = tuple[tuple[str, tuple[str, ...]], ...]
Variants = tuple[tuple[str, tuple[str, ...]], ...]  # (pointer of a oneOf/anyOf, variant keys)
MAX_ENUM_WALK = 200_000  # entries listed (summed over nodes) per request body, at most


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
    keys) of every `oneOf`/`anyOf`, and whether the listing is whole. A variant's segment
    of a pointer is its key (see `variants`), not its index, so inserting a variant moves
    no other. Views share the nodes of `$ref` targets (a DAG, acyclic: cycles are cut into
    markers), so each node is listed once and its list reused wherever it appears; the
    listing stops at MAX_ENUM_WALK entries (a DAG can be huge as a tree)."""
    return EnumLister(name_of).list(view)


class _TooMany(Exception):
    pass


_Listing = tuple[list[tuple[str, tuple[str, ...]]], list[tuple[str, tuple[str, ...]]]]
_EMPTY: _Listing = ([], [])


class EnumLister:
    """`list_enums` for the request bodies of one inventory: the listing of each shared
    node is kept across calls."""

    def __init__(self, name_of: NameOf = _no_name) -> None:
        self.name_of = name_of
        self.memo: dict[int, tuple[Any, _Listing]] = {}
        self.entries = 0

    def list(self, view: Any) -> tuple[Enums, Variants, bool]:
        self.entries = 0
        try:
            enums, lists = self.listing(view)
        except (RecursionError, _TooMany):
            return (), (), False
        return tuple(sorted(enums)), tuple(sorted(lists)), True

    def listing(self, node: Any) -> _Listing:
        """Pointers relative to `node` ("#" is `node` itself)."""
        if not isinstance(node, dict | list):
            return _EMPTY
        known = self.memo.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        enums: list[tuple[str, tuple[str, ...]]] = []
        lists: list[tuple[str, tuple[str, ...]]] = []
        children: list[tuple[str, Any]] = []
        if isinstance(node, dict):
            if isinstance(node.get("enum"), list):
                enums.append(("#", enum_of(node)))
            for key, child in node.items():
                if key in VARIANT_LISTS and isinstance(child, list):
                    keys = variant_keys(node, child, self.name_of)
                    lists.append((f"#/{key}", tuple(keys)))
                    children.extend(
                        (f"{key}/{escape(k)}", v) for k, v in zip(keys, child, strict=True)
                    )
                elif isinstance(child, dict | list):
                    children.append((escape(str(key)), child))
        else:
            children = [(str(index), child) for index, child in enumerate(node)]
        for segment, child in children:
            child_enums, child_lists = self.listing(child)
            enums.extend((f"#/{segment}{pointer[1:]}", values) for pointer, values in child_enums)
            lists.extend((f"#/{segment}{pointer[1:]}", keys) for pointer, keys in child_lists)
        self.entries += len(enums) + len(lists)
        if self.entries > MAX_ENUM_WALK:
            raise _TooMany
        result = (enums, lists) if enums or lists else _EMPTY
        self.memo[id(node)] = (node, result)
        return result


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
