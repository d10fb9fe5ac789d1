"""Position-independent names for the variants of a `oneOf`/`anyOf` list.

Providers insert and reorder variants; a JSON pointer with the variant's index
(`oneOf/2/...`) then names another variant, and every later enum looks removed. A variant
is named instead by what identifies it, in this order: its discriminator value, its own
`const`/`enum` or the `const` properties that tell it apart, the `$ref` target it was
resolved from, its title, and last its shape (`props=a,b,c`), which `pair_unmatched`
matches by similarity.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

VARIANT_LISTS = ("oneOf", "anyOf")
STRUCTURAL = "props="
NameOf = Callable[[Any], str | None]  # a resolved view -> the `$ref` it came from, if any


def variant_keys(parent: dict[Any, Any], variants: Sequence[Any], name_of: NameOf) -> list[str]:
    """One key per variant, unique within the list (a repeated key gets `~2`, `~3` ...)."""
    discriminator = parent.get("discriminator")
    property_name = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
    mapping = discriminator.get("mapping") if isinstance(discriminator, dict) else None
    by_target = (
        {str(target): str(value) for value, target in mapping.items()}
        if isinstance(mapping, dict)
        else {}
    )
    keys: list[str] = []
    seen: dict[str, int] = {}
    for variant in variants:
        key = _key(variant, property_name, by_target, name_of)
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}~{seen[key]}")
    return keys


def _key(variant: Any, property_name: Any, by_target: dict[str, str], name_of: NameOf) -> str:
    if not isinstance(variant, dict):
        return "value=" + _json(variant)
    name = name_of(variant)
    properties = variant.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    if isinstance(property_name, str):
        value = _single(properties.get(property_name))
        if value is None and name is not None:
            value = next((v for t, v in by_target.items() if _same_target(t, name)), None)
        if value is not None:
            return f"{property_name}={value}"
    if "const" in variant:
        return "const=" + _json(variant["const"])
    if isinstance(variant.get("enum"), list):
        return "enum=" + ",".join(sorted(_json(v) for v in variant["enum"]))
    fixed = sorted(  # 3.1's tagged unions: `kind: {const: card}`
        f"{key}={_json(schema['const'])}"
        for key, schema in properties.items()
        if isinstance(schema, dict) and "const" in schema
    )
    if fixed:
        return ";".join(fixed)
    if name is not None:
        return "ref=" + name
    if isinstance(variant.get("title"), str):
        return "title=" + str(variant["title"])
    if properties:
        return STRUCTURAL + ",".join(sorted(str(key) for key in properties))
    return "type=" + _json(variant.get("type"))


def _single(schema: Any) -> str | None:
    """The one value a property schema allows (`const`, or an enum of one), if so."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return _json(schema["const"])
    values = schema.get("enum")
    if isinstance(values, list) and len(values) == 1:
        return _json(values[0])
    return None


def _same_target(mapping_target: str, ref_name: str) -> bool:
    """A discriminator mapping's `#/components/schemas/Card` (or `Card`) names `ref_name`."""
    return ref_name == mapping_target or ref_name.rsplit("/", 1)[-1] == mapping_target.rsplit(
        "/", 1
    )[-1].removesuffix(".yaml")


def _json(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def pair_unmatched(old: Sequence[str], new: Sequence[str]) -> dict[str, str]:
    """Old structural keys paired with the new ones that name the same variant changed in
    shape: the only unmatched one on each side, or those whose properties overlap most (at
    least half of them). Other keys identify a variant; a changed one is another variant."""
    gone = [key for key in old if key not in new and key.startswith(STRUCTURAL)]
    came = [key for key in new if key not in old and key.startswith(STRUCTURAL)]
    if len(gone) == 1 and len(came) == 1:
        return {gone[0]: came[0]}
    pairs: dict[str, str] = {}
    candidates = sorted(((_similarity(a, b), a, b) for a in gone for b in came), reverse=True)
    used: set[str] = set()
    for score, a, b in candidates:
        if score >= 0.5 and a not in pairs and b not in used:
            pairs[a] = b
            used.add(b)
    return pairs


def _similarity(a: str, b: str) -> float:
    left = set(a.removeprefix(STRUCTURAL).split(","))
    right = set(b.removeprefix(STRUCTURAL).split(","))
    return len(left & right) / max(1, len(left | right))
