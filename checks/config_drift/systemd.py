"""systemd unit files (and networkd's .network/.netdev/.link) as nested mappings.

`[Section]` then `Key=Value` lines; `#` and `;` start comment lines only (a `;` or `#`
inside a value is part of it: `ExecStart=/bin/sh -c 'a; b'`); a trailing backslash
continues a line. A repeated key adds to a list, and an empty assignment (`ExecStart=`)
empties it, as systemd reads them. Keys whose values are sets (dependencies,
capabilities, address families, paths) compare as one sorted set, so reordering them is no
drift; the rest keep their order. A repeated section (networkd's `[Route]`) is a list.
"""

from __future__ import annotations

from typing import Any

from checks.interface import BadInput

UNIT_SUFFIXES = frozenset(
    {
        *(".service", ".socket", ".timer", ".mount", ".automount", ".path", ".target"),
        *(".slice", ".scope", ".swap", ".network", ".netdev", ".link"),
    }
)
_SETS = frozenset(
    {
        *("after", "before", "wants", "requires", "requisite", "bindsto", "partof", "upholds"),
        *("conflicts", "wantedby", "requiredby", "upheldby", "also", "alias", "onfailure"),
        *("capabilityboundingset", "ambientcapabilities", "restrictaddressfamilies"),
        *("readwritepaths", "readonlypaths", "inaccessiblepaths", "execpaths", "noexecpaths"),
        *("supplementarygroups", "systemcallarchitectures", "restrictnamespaces"),
        *("restrictfilesystems", "bindpaths", "bindreadonlypaths", "documentation"),
        *("readwritedirectories", "readonlydirectories", "inaccessibledirectories"),
    }
)


def parse_unit(text: str, origin: str) -> dict[str, Any]:
    sections: dict[str, list[dict[str, list[str]]]] = {}
    current: dict[str, list[str]] | None = None
    logical, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not logical:
            start = number
        line = raw.strip()
        if not logical and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        line, logical = (logical + line).strip(), ""
        if line.startswith("["):
            if not line.endswith("]"):
                raise BadInput(f"line {start}: section has no ']'", subject=origin)
            current = {}
            sections.setdefault(line[1:-1].strip(), []).append(current)
            continue
        key, separator, value = line.partition("=")
        if not separator or not key.strip():
            raise BadInput(f"line {start}: not `Key=Value`", subject=origin)
        if current is None:
            raise BadInput(f"line {start}: a setting before any [Section]", subject=origin)
        values = current.setdefault(key.strip(), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()  # an empty assignment resets the list
    return {
        name: _settings(copies[0]) if len(copies) == 1 else [_settings(c) for c in copies]
        for name, copies in sections.items()
    }


def _settings(section: dict[str, list[str]]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, values in section.items():
        if key.lower() in _SETS:
            settings[key] = " ".join(sorted({word for value in values for word in value.split()}))
        elif len(values) == 1:
            settings[key] = values[0]
        else:
            settings[key] = values  # [] when reset and never set again
    return settings
