"""Parse configuration text into flat `path -> value` mappings, one function per format."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import yaml

from checks.config_drift.directives import (
    HAPROXY,
    HAPROXY_SECTIONS,
    REDIS,
    SSH,
    SSH_SECTIONS,
    parse_apache,
    parse_keyword_file,
    parse_nginx,
)
from checks.config_drift.flatten import TooManyKeys, flatten
from checks.config_drift.params import FileFormat
from checks.config_drift.references import looks_like_password_file, password_entries
from checks.config_drift.systemd import UNIT_SUFFIXES, parse_unit
from checks.interface import BadInput

# `key = value`, `key: value`, and a shell's `export KEY=value`
_KEY_VALUE = re.compile(
    r"^\s*(?:export\s+)?(?P<key>[A-Za-z_][\w.\-]*)\s*(?:=|:)\s*(?P<value>.*?)\s*$"
)
_COMMENT = ("#", ";", "//")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# exact file names; never a substring of the path (logrotate's `nginx` is not nginx syntax)
_WELL_KNOWN = {
    **dict.fromkeys(
        ("nginx.conf", "fastcgi.conf", "fastcgi_params", "proxy_params", "scgi_params"),
        FileFormat.NGINX,
    ),
    **dict.fromkeys(("uwsgi_params", "mime.types"), FileFormat.NGINX),
    **dict.fromkeys(("apache2.conf", "httpd.conf", "ports.conf", ".htaccess"), FileFormat.APACHE),
    **dict.fromkeys(("sshd_config", "ssh_config"), FileFormat.SSH),
    **dict.fromkeys(("redis.conf", "sentinel.conf"), FileFormat.REDIS),
    "haproxy.cfg": FileFormat.HAPROXY,
    **dict.fromkeys(
        ("php.ini-production", "php.ini-development", "php.ini-production.cli"), FileFormat.INI
    ),
    **dict.fromkeys(
        ("postgresql.conf", "postgresql.conf.sample", "createcluster.conf", "my.cnf"),
        FileFormat.INI,
    ),
    "cloud.cfg": FileFormat.YAML,
    **dict.fromkeys((".htpasswd", "htpasswd", ".htdigest", "htdigest"), FileFormat.HTPASSWD),
}
_BY_PARENT = {
    "sshd_config.d": FileFormat.SSH,
    "ssh_config.d": FileFormat.SSH,
    # Debian's Apache layout (nginx's are modules-*, conf.d and sites-*: told by content)
    **dict.fromkeys(
        ("mods-available", "mods-enabled", "conf-available", "conf-enabled"), FileFormat.APACHE
    ),
}
_BY_SUFFIX = {
    ".json": FileFormat.JSON,
    ".yaml": FileFormat.YAML,
    ".yml": FileFormat.YAML,
    ".toml": FileFormat.TOML,
    ".ini": FileFormat.INI,
    ".htpasswd": FileFormat.HTPASSWD,
}
_APACHE_SECTION = re.compile(
    r"(?im)^\s*</?(VirtualHost|Directory|DirectoryMatch|Files|FilesMatch|Location|IfModule"
    r"|IfDefine|IfVersion)\b"
)
_APACHE_DIRECTIVE = re.compile(
    r"(?m)^\s*(ServerRoot|ServerName|ServerTokens|ServerSignature|DocumentRoot|LoadModule"
    r"|TraceEnable|SSLProtocol|SSLCipherSuite|ErrorLog|CustomLog|Listen|AddType)\s"
)
_HAPROXY_SECTION = re.compile(r"(?m)^(global|defaults|(frontend|backend|listen)\s+\S+)\s*$")
_TRAILING_COMMENT = re.compile(r"\s#.*$")
_INI_SECTION = re.compile(r"(?m)^\s*\[[^\]\n]+\]\s*$")
_INI_PAIR = re.compile(r"^\s*[\w.\-/ ]+?\s*=")


def detect_format(path: PurePath, head: str | None = None) -> FileFormat:
    """From the exact file name, the suffix, its directory's exact name, then the content
    (`head`, when given); TEXT when nothing tells."""
    name = path.name.lower()
    if name in _WELL_KNOWN:
        return _WELL_KNOWN[name]
    if path.suffix.lower() in _BY_SUFFIX:
        return _BY_SUFFIX[path.suffix.lower()]
    if path.suffix.lower() in UNIT_SUFFIXES:
        return FileFormat.SYSTEMD
    parent = path.parent.name.lower()
    if parent in _BY_PARENT:
        return _BY_PARENT[parent]
    # a drop-in: /etc/systemd/system/nginx.service.d/override.conf
    if parent.endswith(".d") and PurePath(parent[:-2]).suffix in UNIT_SUFFIXES:
        return FileFormat.SYSTEMD
    return sniff_format(head) if head is not None else FileFormat.TEXT


def sniff_format(text: str) -> FileFormat:
    """The format `text` reads as: directive syntax, INI, YAML, or TEXT."""
    lines = [
        _TRAILING_COMMENT.sub("", line).strip()
        for line in text.splitlines()[:2000]
        if line.strip() and not line.lstrip().startswith(_COMMENT)
    ]
    if text.startswith("#cloud-config"):
        return FileFormat.YAML
    if not lines:
        return FileFormat.TEXT
    if looks_like_password_file(text):
        return FileFormat.HTPASSWD
    if _APACHE_SECTION.search(text) or len(_APACHE_DIRECTIVE.findall(text)) * 2 >= len(lines):
        return FileFormat.APACHE
    if _HAPROXY_SECTION.search(text) and not any(line.endswith((";", "{")) for line in lines):
        return FileFormat.HAPROXY
    ended = sum(1 for line in lines if line.endswith((";", "{", "}")))
    if ended * 2 > len(lines) and any(line.endswith(";") for line in lines):
        return FileFormat.NGINX
    if _INI_SECTION.search(text) and all(
        _INI_SECTION.match(line) or _INI_PAIR.match(line) for line in lines
    ):
        return FileFormat.INI
    try:
        document = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError):
        return FileFormat.TEXT
    if isinstance(document, dict) and any(":" in line for line in lines[:1]):
        return FileFormat.YAML
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


def parse(
    data: bytes,
    file_format: FileFormat,
    origin: str,
    max_keys: int,
    list_keys: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`data` in `file_format` as a flat mapping; BadInput naming `origin` when unreadable."""
    text = decode_text(data, origin)
    match file_format:
        case FileFormat.JSON:
            return flatten(_json(text, origin), max_keys, origin, list_keys=list_keys)
        case FileFormat.YAML:
            return flatten(_yaml(text, origin, max_keys), max_keys, origin, list_keys=list_keys)
        case FileFormat.TOML:
            return flatten(_toml(text, origin), max_keys, origin, list_keys=list_keys)
        case FileFormat.INI:
            return flatten(_ini(text, origin), max_keys, origin)
        case FileFormat.NGINX:
            return flatten(parse_nginx(text, origin), max_keys, origin)
        case FileFormat.APACHE:
            return flatten(parse_apache(text, origin), max_keys, origin)
        case FileFormat.SSH:
            return flatten(parse_keyword_file(text, origin, SSH, SSH_SECTIONS), max_keys, origin)
        case FileFormat.REDIS:
            return flatten(parse_keyword_file(text, origin, REDIS, frozenset()), max_keys, origin)
        case FileFormat.HAPROXY:
            document = parse_keyword_file(text, origin, HAPROXY, HAPROXY_SECTIONS)
            return flatten(document, max_keys, origin)
        case FileFormat.SYSTEMD:
            return flatten(parse_unit(text, origin), max_keys, origin)
        case FileFormat.HTPASSWD:
            return password_entries(text, origin)
        case FileFormat.TEXT | FileFormat.AUTO:
            return text_lines(text, origin, max_keys)


UNRECOGNISED = (
    "format not recognised (no well-known file name, suffix or content) and not only "
    "`key = value` lines; compared as text lines"
)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A file's flat content; `note` says when it was compared as text lines: its format
    was not recognised, or it was not valid in the detected one."""

    entries: dict[str, str]
    note: str | None = None


def parse_detected(
    data: bytes,
    path: PurePath,
    origin: str,
    max_keys: int,
    list_keys: Mapping[str, str] | None = None,
) -> Parsed:
    """`data` in the format detected from `path` and its content; a file whose format is
    not recognised, or that is not valid in the detected one, is read as text lines with a
    note saying so, rather than left unread or downgraded silently."""
    text = decode_text(data, origin)
    file_format = detect_format(path, text)
    if file_format is FileFormat.TEXT:
        # `key = value` lines only (sysctl.conf, /etc/default/*): read whole as text lines
        entries = text_lines(text, origin, max_keys)
        structured = any(key.startswith("line[") for key in entries)
        return Parsed(entries, UNRECOGNISED if structured else None)
    try:
        return Parsed(parse(data, file_format, origin, max_keys, list_keys))
    except TooManyKeys:
        raise
    except BadInput as error:
        note = f"not valid {file_format.value} ({error.message}); compared as text lines"
        return Parsed(text_lines(text, origin, max_keys), note)


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


def _yaml(text: str, origin: str, max_keys: int) -> Any:
    try:
        # aliases share nodes: count what they would expand to before building it, so an
        # alias bomb ("billion laughs") is refused in milliseconds, not after millions of keys
        expanded = sum(_expanded_size(node) for node in yaml.compose_all(text, Loader=_LOADER))
        if expanded > max_keys * 4:
            raise TooManyKeys(
                f"expands to more than {max_keys * 4} values (raise max_keys, or an alias bomb?)",
                subject=origin,
            )
        documents = [
            document
            for document in yaml.load_all(text, Loader=_LOADER)  # a SafeLoader subclass
            if document is not None
        ]
    except yaml.YAMLError as error:
        # only the position: the parser's own message may quote the line, and lines hold secrets
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise BadInput(f"invalid YAML{where}: {problem}", subject=origin) from None
    except RecursionError:
        raise BadInput("YAML nested too deeply", subject=origin) from None
    if len(documents) <= 1:
        return documents[0] if documents else None
    return _by_resource(documents)


def _by_resource(documents: list[Any]) -> Any:
    """A multi-document file (Kubernetes manifests): each document keyed by its resource,
    `Deployment web/api`, when every one is a distinct resource; else a list."""
    keys = [_resource(document) for document in documents]
    if all(keys) and len(set(keys)) == len(keys):
        return dict(zip(keys, documents, strict=True))
    return documents


def _resource(document: Any) -> str | None:
    if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
        return None
    metadata = document.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return None
    namespace = metadata.get("namespace")
    where = f"{namespace}/" if isinstance(namespace, str) else ""
    return f"{document['kind']} {where}{metadata['name']}"


def _expanded_size(root: yaml.Node | None) -> int:
    """How many nodes `root` stands for once every alias is expanded (shared nodes counted
    once per reference), computed without expanding anything; a cycle is endless."""
    if root is None:
        return 0
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, bool]] = [(root, False)]
    while pending:  # iterative post-order: deep documents must not exhaust the stack
        node, children_done = pending.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            continue
        if any(id(child) in open_nodes for child in children):
            return sys.maxsize  # an alias to an enclosing node: it never ends
        open_nodes.add(id(node))
        pending.append((node, True))
        pending.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _toml(text: str, origin: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"invalid TOML: {error}", subject=origin) from None


def _ini(text: str, origin: str) -> dict[str, Any]:
    """INI and section-less `key = value` files: a repeated key is a list of its values
    in order (php.ini's `extension=`), an inline `; comment` or `# comment` is dropped."""
    root: dict[str, Any] = {}
    current = root
    last: list[str] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            header = _without_comment(line)
            if not header.endswith("]"):
                raise BadInput(f"invalid INI at line {number}: section has no ']'", subject=origin)
            current = root.setdefault(header[1:-1].strip(), {})
            if not isinstance(current, dict):
                raise BadInput(
                    f"invalid INI at line {number}: section is also a key", subject=origin
                )
            last = None
            continue
        if raw[:1].isspace() and last is not None and "=" not in line:
            last[-1] = f"{last[-1]} {_without_comment(line)}".strip()  # continuation line
            continue
        key, separator, value = line.partition("=")
        if not separator:  # postgresql.conf's `include_dir 'conf.d'`, my.cnf's bare flags
            key, _, value = line.partition(" ")
            value = value.strip() or "present"
        values = current.setdefault(key.strip(), [])
        if not isinstance(values, list):
            raise BadInput(f"invalid INI at line {number}: key is also a section", subject=origin)
        values.append(_unquoted(_without_comment(value.strip())))
        last = values
    return _collapsed(root)


def _collapsed(node: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _collapsed(value)
        if isinstance(value, dict)
        else value[0]
        if len(value) == 1
        else value
        for key, value in node.items()
    }


def _without_comment(value: str) -> str:
    """`value` up to a `;` or `#` that follows whitespace outside quotes."""
    quote = ""
    for index, character in enumerate(value):
        if quote:
            quote = "" if character == quote else quote
        elif character in "\"'":
            quote = character
        elif character in ";#" and (index == 0 or value[index - 1].isspace()):
            return value[:index].rstrip()
    return value


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value
