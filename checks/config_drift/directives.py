"""nginx- and Apache-style directive files -> nested mappings with stable keys.

Keys: a directive that appears once in its block is keyed by its name; repeated ones by
their name plus as few leading arguments as make them unique (`add_header X-Frame-Options`),
so adding a header does not renumber the others. Blocks are keyed by name and arguments
(`location /api`); argument-less blocks such as nginx `server` by their `server_name`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, TypeVar

from checks.interface import BadInput

T = TypeVar("T")


@dataclass(slots=True)
class Directive:
    name: str
    args: list[str]
    line: int
    children: list[Directive] | None = field(default=None)


def parse_nginx(text: str, origin: str) -> dict[str, Any]:
    return block_mapping(_nginx_tree(text, origin))


def parse_apache(text: str, origin: str) -> dict[str, Any]:
    return block_mapping(_apache_tree(text, origin))


def block_mapping(directives: list[Directive]) -> dict[str, Any]:
    by_name: dict[str, list[Directive]] = defaultdict(list)
    for directive in directives:
        by_name[directive.name].append(directive)
    mapping: dict[str, Any] = {}
    for name, group in by_name.items():
        blocks = [d for d in group if d.children is not None]
        leaves = [d for d in group if d.children is None]
        for key, directive in _block_keys(name, blocks):
            mapping[key] = block_mapping(directive.children or [])
        for key, value in _leaf_keys(name, leaves):
            mapping[key] = value
    return mapping


def _block_keys(name: str, blocks: list[Directive]) -> list[tuple[str, Directive]]:
    keyed: list[tuple[str, Directive]] = []
    for index, block in enumerate(blocks):
        if block.args:
            key = f"{name} {' '.join(block.args)}"
        elif len(blocks) == 1:
            key = name
        else:
            server_names = [
                " ".join(child.args)
                for child in block.children or []
                if child.name in ("server_name", "ServerName") and child.children is None
            ]
            key = f"{name} {server_names[0]}" if server_names else f"{name} #{index + 1}"
        keyed.append((key, block))
    return _deduplicate(keyed)


# Directives whose leading arguments name what they set: always keyed by those, so a
# secret header value sits under a key that says "Authorization".
_NAMED_BY_FIRST_ARG = frozenset(
    {
        "add_header",
        "proxy_set_header",
        "grpc_set_header",
        "fastcgi_param",
        "uwsgi_param",
        "scgi_param",
        "more_set_headers",
        "set",
        "env",
        "SetEnv",
        "Define",
    }
)
_HEADER_ACTIONS_WITH_VALUE = frozenset({"set", "append", "add", "merge", "setifempty", "edit"})


def _leaf_keys(name: str, leaves: list[Directive]) -> list[tuple[str, str]]:
    if not leaves:
        return []
    if name in _NAMED_BY_FIRST_ARG or name in ("Header", "RequestHeader"):
        return _deduplicate([_named_key(name, leaf.args) for leaf in leaves])
    if len(leaves) == 1:
        return [(name, " ".join(leaves[0].args))]
    longest = max(len(leaf.args) for leaf in leaves)
    for width in range(1, longest + 1):
        keys = [" ".join([name, *leaf.args[:width]]) for leaf in leaves]
        if len(set(keys)) == len(keys):
            return [
                (key, " ".join(leaf.args[width:]) or "present")
                for key, leaf in zip(keys, leaves, strict=True)
            ]
    return _deduplicate(
        [(f"{name} {' '.join(leaf.args[:1])}".strip(), " ".join(leaf.args)) for leaf in leaves]
    )


def _named_key(name: str, args: list[str]) -> tuple[str, str]:
    if name in ("Header", "RequestHeader"):
        has_value = any(arg.lower() in _HEADER_ACTIONS_WITH_VALUE for arg in args[:2])
        width = len(args) - 1 if has_value and len(args) > 1 else len(args)
    else:
        width = 1
    return " ".join([name, *args[:width]]), " ".join(args[width:]) or "present"


def _deduplicate(pairs: list[tuple[str, T]]) -> list[tuple[str, T]]:
    seen: dict[str, int] = {}
    result: list[tuple[str, T]] = []
    for key, value in pairs:
        seen[key] = seen.get(key, 0) + 1
        result.append((key if seen[key] == 1 else f"{key} #{seen[key]}", value))
    return result


_NGINX_TOKEN = re.compile(
    r"""\s+|\#[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[{};]|[^\s{};"'#][^\s{};]*""",
    re.DOTALL,
)


def _nginx_tree(text: str, origin: str) -> list[Directive]:
    root: list[Directive] = []
    stack: list[tuple[Directive | None, list[Directive]]] = [(None, root)]
    words: list[str] = []
    word_line = 1
    line = 1
    position = 0
    while position < len(text):
        match = _NGINX_TOKEN.match(text, position)
        if match is None:
            raise BadInput(
                f"line {line}: cannot read {text[position : position + 20]!r}", subject=origin
            )
        token = match.group()
        position = match.end()
        if token[0] in " \t\r\n" or token.startswith("#"):
            line += token.count("\n")
            continue
        if not words:
            word_line = line
        word = token
        if word == ";":
            if not words:
                raise BadInput(f"line {line}: ';' without a directive", subject=origin)
            stack[-1][1].append(Directive(words[0], words[1:], word_line))
            words = []
        elif word == "{":
            if not words:
                raise BadInput(f"line {line}: '{{' without a directive", subject=origin)
            children: list[Directive] = []
            block = Directive(words[0], words[1:], word_line, children=children)
            stack[-1][1].append(block)
            stack.append((block, children))
            words = []
        elif word == "}":
            if words or len(stack) == 1:
                raise BadInput(f"line {line}: unexpected '}}'", subject=origin)
            stack.pop()
        else:
            words.append(_unquote(token))
        line += token.count("\n")
    if words:
        raise BadInput(f"line {word_line}: directive {words[0]!r} has no ';'", subject=origin)
    if len(stack) > 1:
        opened = stack[-1][0]
        name = opened.name if opened else "?"
        line_no = opened.line if opened else line
        raise BadInput(f"line {line_no}: block {name!r} is never closed", subject=origin)
    return root


_APACHE_ARG = re.compile(r'"(?:\\.|[^"\\])*"|\S+')


def _apache_tree(text: str, origin: str) -> list[Directive]:
    root: list[Directive] = []
    stack: list[tuple[Directive | None, list[Directive]]] = [(None, root)]
    logical = ""
    start_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not logical:
            start_line = number
        if raw.endswith("\\"):
            logical += raw[:-1] + " "
            continue
        stripped = (logical + raw).strip()
        logical = ""
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("</"):
            name = stripped[2:].rstrip(">").strip()
            opened = stack[-1][0]
            if opened is None or opened.name.lower() != name.lower():
                raise BadInput(f"line {start_line}: unexpected </{name}>", subject=origin)
            stack.pop()
            continue
        if stripped.startswith("<"):
            if not stripped.endswith(">"):
                raise BadInput(f"line {start_line}: section tag has no '>'", subject=origin)
            name, *args = _APACHE_ARG.findall(stripped[1:-1])
            children: list[Directive] = []
            block = Directive(name, [_unquote(a) for a in args], start_line, children=children)
            stack[-1][1].append(block)
            stack.append((block, children))
            continue
        name, *args = _APACHE_ARG.findall(stripped)
        stack[-1][1].append(Directive(name, [_unquote(a) for a in args], start_line))
    if len(stack) > 1:
        opened = stack[-1][0]
        name = opened.name if opened else "?"
        raise BadInput(
            f"line {opened.line if opened else 0}: <{name}> is never closed", subject=origin
        )
    return root


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        return token[1:-1]
    return token
