"""Parse configuration text into flat `path -> value` mappings, one function per format."""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from pathlib import PurePath
from typing import Any

import yaml

from checks.config_drift.directives import parse_apache, parse_nginx
from checks.config_drift.flatten import flatten
from checks.config_drift.params import FileFormat
from checks.interface import BadInput

# `key = value`, `key: value`, and a shell's `export KEY=value`
_KEY_VALUE = re.compile(
    r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][\w.\-]*)\s*(?:=|:)\s*(?P<value>.*?)\s*$"
)
_COMMENT = ("#", ";", "//")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def detect_format(path: PurePath) -> FileFormat:
    name = path.name.lower()
    suffix = path.suffix.lower()
    by_suffix = {
        ".json": FileFormat.JSON,
        ".yaml": FileFormat.YAML,
        ".yml": FileFormat.YAML,
        ".toml": FileFormat.TOML,
        ".ini": FileFormat.INI,
        ".cfg": FileFormat.INI,
    }
    if suffix in by_suffix:
        return by_suffix[suffix]
    parts = {part.lower() for part in path.parts}
    if "nginx" in name or "nginx" in parts:
        return FileFormat.NGINX
    if name in ("httpd.conf", "apache2.conf", ".htaccess") or parts & {"apache2", "httpd"}:
        return FileFormat.APACHE
    return FileFormat.TEXT


def decode_text(data: bytes, origin: str) -> str:
    """UTF-8 text, or BadInput naming `origin` for binary content."""
    if b"\0" in data[:8192]:
        raise BadInput("binary content where text was expected", subject=origin)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadInput(
            f"not UTF-8 text (byte {error.start}): binary content where text was expected",
            subject=origin,
        ) from None


def parse(data: bytes, file_format: FileFormat, origin: str, max_keys: int) -> dict[str, str]:
    """`data` in `file_format` as a flat mapping; BadInput naming `origin` when unreadable."""
    text = decode_text(data, origin)
    match file_format:
        case FileFormat.JSON:
            return flatten(_json(text, origin), max_keys, origin)
        case FileFormat.YAML:
            return flatten(_yaml(text, origin), max_keys, origin)
        case FileFormat.TOML:
            return flatten(_toml(text, origin), max_keys, origin)
        case FileFormat.INI:
            return flatten(_ini(text, origin), max_keys, origin)
        case FileFormat.NGINX:
            return flatten(parse_nginx(text, origin), max_keys, origin)
        case FileFormat.APACHE:
            return flatten(parse_apache(text, origin), max_keys, origin)
        case FileFormat.TEXT | FileFormat.AUTO:
            return text_lines(text, origin, max_keys)


def text_lines(text: str, origin: str, max_keys: int) -> dict[str, str]:
    """`key = value` / `key: value` lines by key; any other line keyed by its own text."""
    flat: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(_COMMENT):
            continue
        match = _KEY_VALUE.match(stripped)
        key, value = (match["key"], match["value"]) if match else (f"line[{stripped}]", "present")
        unique, count = key, 1
        while unique in flat:
            count += 1
            unique = f"{key}#{count}"
        flat[unique] = value
        if len(flat) > max_keys:
            raise BadInput(f"more than {max_keys} lines", subject=origin)
    return dict(sorted(flat.items()))


def _json(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadInput(
            f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}",
            subject=origin,
        ) from None
    except RecursionError:
        raise BadInput("JSON nested too deeply", subject=origin) from None
    except ValueError as error:  # e.g. an integer with more digits than Python allows
        raise BadInput(f"invalid JSON: {error}", subject=origin) from None


def _yaml(text: str, origin: str) -> Any:
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        # only the position: the parser's own message may quote the line, and lines hold secrets
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise BadInput(f"invalid YAML{where}: {problem}", subject=origin) from None
    except RecursionError:
        raise BadInput("YAML nested too deeply", subject=origin) from None


def _toml(text: str, origin: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"invalid TOML: {error}", subject=origin) from None


def _ini(text: str, origin: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=origin)
    except configparser.Error as error:
        # configparser quotes the offending line, which may hold a secret: keep its number only
        line = getattr(error, "lineno", None) or next(
            (number for number, _ in getattr(error, "errors", ())), None
        )
        where = f" at line {line}" if line else ""
        raise BadInput(f"invalid INI{where}: {type(error).__name__}", subject=origin) from None
    sections: dict[str, dict[str, str]] = {}
    if parser.defaults():
        sections["DEFAULT"] = dict(parser.defaults())
    for section in parser.sections():
        sections[section] = {key: parser.get(section, key, raw=True) for key in parser[section]}
    return sections
