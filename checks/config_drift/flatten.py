"""Nested documents -> a flat, stably ordered `path -> value` mapping, with a size budget.

Paths join keys with dots and list positions with `[i]`; a key that contains a dot,
bracket or quote is written `["key"]`. A list of scalars is one value (`[a, b]`), so a
reordered allow-list reads as one change rather than a cascade. A list of mappings whose
items all carry a distinct identity (`name`, `job_name`, `id`, or the field configured for
its path) is keyed by it (`scrape_configs[job_name=node]`): reordering jobs is no drift and
inserting one is one added job.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from checks.interface import BadInput

_PLAIN_KEY = re.compile(r"^[^.\[\]\"\s|][^.\[\]\"|]*$")
IDENTITY_FIELDS = ("name", "job_name", "id")


class TooManyKeys(BadInput):
    """A document flattens to more keys than the budget allows (an alias bomb, or too big)."""


def join(prefix: str, key: str) -> str:
    segment = key if _PLAIN_KEY.match(key) else "[" + json.dumps(key) + "]"
    if not prefix:
        return segment
    return prefix + segment if segment.startswith("[") else f"{prefix}.{segment}"


def scalar_text(value: Any) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "true" if value else "false"
        case datetime() | date() | time():
            return value.isoformat()
        case bytes():
            return value.hex()
        case _:
            return str(value)


def _identity(
    path: str, items: list[Any] | tuple[Any, ...], list_keys: Mapping[str, str]
) -> str | None:
    """The field that names every item of a list of mappings distinctly, if any."""
    if not items or not all(isinstance(item, Mapping) for item in items):
        return None
    configured = [f for glob, f in list_keys.items() if fnmatch.fnmatchcase(path, glob)]
    for candidate in configured or IDENTITY_FIELDS:
        values = [item.get(candidate) for item in items]
        if all(isinstance(v, str | int) and not isinstance(v, bool) for v in values) and len(
            {str(v) for v in values}
        ) == len(values):
            return candidate
    return None


def flatten(
    document: Any,
    max_keys: int,
    origin: str,
    prefix: str = "",
    list_keys: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Flatten `document`; raise TooManyKeys (naming `origin`) past `max_keys` entries."""
    keys = list_keys or {}
    flat: dict[str, str] = {}
    # Iterative walk: deep documents must not exhaust Python's recursion limit.
    pending: list[tuple[str, Any]] = [(prefix, document)]
    visited = 0
    while pending:
        path, node = pending.pop()
        visited += 1
        if visited > max_keys * 4 or len(flat) > max_keys:
            raise TooManyKeys(
                f"flattens to more than {max_keys} keys (raise max_keys, or an alias bomb?)",
                subject=origin,
            )
        if isinstance(node, Mapping):
            if not node and path:  # an empty file (all commented out) is no keys at all
                flat[path] = "{}"
            pending.extend((join(path, str(key)), child) for key, child in node.items())
        elif isinstance(node, list | tuple):
            if all(not isinstance(item, Mapping | list | tuple) for item in node):
                flat[path or "."] = "[" + ", ".join(scalar_text(item) for item in node) + "]"
            elif (field := _identity(path, node, keys)) is not None:
                pending.extend((f"{path}[{field}={child[field]}]", child) for child in node)
            else:
                pending.extend((f"{path}[{index}]", child) for index, child in enumerate(node))
        else:
            flat[path or "."] = scalar_text(node)
    return dict(sorted(flat.items()))
