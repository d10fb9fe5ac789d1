"""Directive files (nginx, Apache, sshd/ssh_config, redis.conf, haproxy.cfg) -> nested
mappings with stable, semantic keys.

Each format is a `Dialect`: how its repeated directives combine. A directive that names
what it sets by its leading arguments (`add_header X-Frame-Options`, haproxy `timeout
client`) is keyed by them; repeated occurrences of a set-like directive (`listen`) are each
keyed by their arguments, so adding one is one ADDED item; unordered argument lists
(`server_name`) compare as sets; ordered ones (`include`, `http-request`) as one list.
Blocks are keyed by identity (`location ~ \\.php$`, `Directory /var/www`, a `server` by
its first server_name and its ports, a `VirtualHost` by its addresses and ServerName);
blocks with the same identity are numbered in the order of their content, not of the
file, so reordering independent blocks is no drift.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from checks.config_drift.secrets import is_secret_key
from checks.interface import BadInput

T = TypeVar("T")


@dataclass(slots=True)
class Directive:
    name: str
    args: list[str]
    line: int
    children: list[Directive] | None = field(default=None)


def _args_key(block: Directive) -> tuple[str, ...]:
    return (" ".join([block.name, *block.args]),)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How a directive format combines repeated directives (names in lower case)."""

    keyed_by: Mapping[str, int] = field(default_factory=dict)
    sets: frozenset[str] = frozenset()
    set_args: frozenset[str] = frozenset()
    ordered: frozenset[str] = frozenset()
    first_wins: bool = False
    block_key: Callable[[Directive], tuple[str, ...]] = _args_key


def block_mapping(directives: list[Directive], dialect: Dialect) -> dict[str, Any]:
    by_name: dict[str, list[Directive]] = defaultdict(list)
    for directive in directives:
        by_name[directive.name.lower()].append(directive)
    mapping: dict[str, Any] = {}
    for name, group in by_name.items():
        blocks = [d for d in group if d.children is not None]
        leaves = [d for d in group if d.children is None]
        for key, block in _block_keys(blocks, dialect):
            mapping[key] = block_mapping(block.children or [], dialect)
        mapping.update(_leaf_keys(name, leaves, dialect))
    order = _regex_location_order(directives)
    if order:
        mapping["location regex order"] = order
    return mapping


def _block_keys(blocks: list[Directive], dialect: Dialect) -> list[tuple[str, Directive]]:
    """Each block keyed by as many of its identity parts as tell it from its siblings;
    blocks that share every part are numbered in the order of their content."""
    keyed: list[tuple[str, Directive]] = []
    pending: list[tuple[str, list[Directive], int]] = [("", blocks, 0)]
    while pending:
        prefix, group, level = pending.pop()
        by_key: dict[str, list[Directive]] = defaultdict(list)
        for block in group:
            parts = dialect.block_key(block)
            part = parts[level] if level < len(parts) else ""
            by_key[" ".join(p for p in (prefix, part) if p)].append(block)
        for key, same in by_key.items():
            if len(same) == 1:
                keyed.append((key, same[0]))
            elif any(level + 1 < len(dialect.block_key(block)) for block in same):
                pending.append((key, same, level + 1))
            else:
                same.sort(key=_content_digest)
                keyed.extend((f"{key} #{n}", block) for n, block in enumerate(same, start=1))
    return keyed


def _content_digest(block: Directive) -> str:
    def text(directive: Directive) -> str:
        inner = "".join(text(child) for child in directive.children or [])
        return f"{directive.name} {' '.join(directive.args)}{{{inner}}}"

    return hashlib.sha256(text(block).encode()).hexdigest()


def _leaf_keys(name: str, leaves: list[Directive], dialect: Dialect) -> list[tuple[str, Any]]:
    if not leaves:
        return []
    written = leaves[0].name
    if dialect.first_wins and name not in dialect.sets and name not in dialect.keyed_by:
        leaves = leaves[:1]
    if name in dialect.keyed_by:
        return _combined(
            [_named_key(written, leaf.args, dialect.keyed_by[name]) for leaf in leaves], dialect
        )
    if name in dialect.sets:
        lines = sorted({" ".join(_set(leaf.args, name, dialect)) for leaf in leaves})
        return [(written, lines[0] if len(lines) == 1 else _listed(lines))]
    if name in dialect.set_args:
        values = sorted({arg for leaf in leaves for arg in leaf.args})
        return [(written, " ".join(values))]
    if len(leaves) == 1:
        return [(written, " ".join(leaves[0].args) or "present")]
    if name in dialect.ordered or is_secret_key(name):
        return [(written, _listed([" ".join(leaf.args) for leaf in leaves]))]
    longest = max(len(leaf.args) for leaf in leaves)
    for width in range(1, longest + 1):
        keys = [" ".join([written, *leaf.args[:width]]) for leaf in leaves]
        if len(set(keys)) == len(keys):
            return [
                (key, " ".join(leaf.args[width:]) or "present")
                for key, leaf in zip(keys, leaves, strict=True)
            ]
    return [(written, _listed(sorted({" ".join(leaf.args) for leaf in leaves})))]


def _set(args: list[str], name: str, dialect: Dialect) -> list[str]:
    return sorted(set(args)) if name in dialect.set_args else args


def _listed(values: list[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _named_key(name: str, args: list[str], width: int) -> tuple[str, str]:
    if name.lower() in ("header", "requestheader"):
        has_value = any(arg.lower() in _HEADER_ACTIONS_WITH_VALUE for arg in args[:2])
        width = len(args) - 1 if has_value and len(args) > 1 else len(args)
    elif name.lower() == "env" and args and "=" in args[0]:
        variable, _, value = args[0].partition("=")
        return f"{name} {variable}", " ".join([value, *args[1:]])
    return " ".join([name, *args[:width]]), " ".join(args[width:]) or "present"


def _combined(pairs: list[tuple[str, str]], dialect: Dialect) -> list[tuple[str, str]]:
    """Pairs with the same key become one key with the values as an ordered list
    (haproxy's second `stats auth` line must not put its credential in a key)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, value in pairs:
        grouped[key].append(value)
    if dialect.first_wins:
        return [(key, values[0]) for key, values in grouped.items()]
    return [
        (key, values[0] if len(values) == 1 else _listed(values)) for key, values in grouped.items()
    ]


def _regex_location_order(directives: list[Directive]) -> str | None:
    """nginx tries regex locations in file order: that order is configuration too."""
    regexes = [
        " ".join(d.args)
        for d in directives
        if d.name == "location" and d.children is not None and d.args and d.args[0] in ("~", "~*")
    ]
    return _listed(regexes) if len(regexes) > 1 else None


_HEADER_ACTIONS_WITH_VALUE = frozenset({"set", "append", "add", "merge", "setifempty", "edit"})


def _port(listen: str) -> str:
    if listen.startswith("unix:"):
        return listen
    tail = listen.rsplit("]", 1)[-1]
    port = tail.rsplit(":", 1)[-1] if ":" in tail else tail
    return port if port.isdigit() else "80"


def _nginx_block_key(block: Directive) -> tuple[str, ...]:
    """A `server` by the first of its server_names in sorted order (their order in the
    file does not matter), then by its ports when two servers share that name."""
    if block.name != "server" or block.args:
        return _args_key(block)
    children = block.children or []
    names = sorted(arg for c in children if c.name == "server_name" for arg in c.args)
    ports = sorted({_port(c.args[0]) for c in children if c.name == "listen" and c.args})
    return (f"server {names[0]}" if names else "server", ":" + ",".join(ports or ["80"]))


def _apache_block_key(block: Directive) -> tuple[str, ...]:
    if block.name.lower() != "virtualhost":
        return _args_key(block)
    server_name = next(
        (c.args[0] for c in block.children or [] if c.name.lower() == "servername" and c.args),
        None,
    )
    addresses = " ".join(sorted(block.args))
    return (f"{block.name} {addresses}" + (f" {server_name}" if server_name else ""),)


NGINX = Dialect(
    keyed_by=dict.fromkeys(
        (
            "add_header",
            "proxy_set_header",
            "grpc_set_header",
            "fastcgi_param",
            "uwsgi_param",
            "scgi_param",
            "more_set_headers",
            "set",
            "env",
            "auth_http_header",
            "server",
            "error_page",
        ),
        1,
    ),
    sets=frozenset({"listen"}),
    set_args=frozenset({"server_name", "index"}),
    ordered=frozenset({"include", "allow", "deny", "rewrite", "return"}),
    block_key=_nginx_block_key,
)
APACHE = Dialect(
    keyed_by=dict.fromkeys(
        (
            "setenv",
            "define",
            "loadmodule",
            "alias",
            "scriptalias",
            "header",
            "requestheader",
            "addtype",
            "addhandler",
            "errordocument",
            "php_admin_value",
            "php_value",
            "php_flag",
            "php_admin_flag",
        ),
        1,
    ),
    sets=frozenset({"listen"}),
    set_args=frozenset({"serveralias", "directoryindex"}),
    ordered=frozenset({"include", "includeoptional", "rewriterule", "rewritecond", "require"}),
    block_key=_apache_block_key,
)
SSH = Dialect(
    keyed_by={"subsystem": 1},
    sets=frozenset({"hostkey", "listenaddress", "port", "identityfile", "certificatefile"}),
    set_args=frozenset({"acceptenv", "sendenv", "allowusers", "allowgroups", "denyusers"}),
    ordered=frozenset({"include", "localforward", "remoteforward"}),
    first_wins=True,
)
REDIS = Dialect(
    keyed_by=dict.fromkeys(
        ("rename-command", "user", "client-output-buffer-limit", "sentinel", "config"), 1
    ),
    sets=frozenset({"save", "loadmodule"}),
    set_args=frozenset({"bind"}),
    ordered=frozenset({"include"}),
)
HAPROXY = Dialect(
    keyed_by={"no": 2}
    | dict.fromkeys(
        (
            "timeout",
            "option",
            "stats",
            "server",
            "acl",
            "errorfile",
            "user",
            "group",
            "default-server",
            "nameserver",
            "peer",
            "capture",
            "bind",
        ),
        1,
    ),
    sets=frozenset({"log"}),
    ordered=frozenset(
        {"http-request", "http-response", "tcp-request", "tcp-response", "use_backend", "redirect"}
    ),
)


def parse_nginx(text: str, origin: str) -> dict[str, Any]:
    return block_mapping(_nginx_tree(text, origin), NGINX)


def parse_apache(text: str, origin: str) -> dict[str, Any]:
    return block_mapping(_apache_tree(text, origin), APACHE)


def parse_keyword_file(text: str, origin: str, dialect: Dialect, sections: frozenset[str]) -> Any:
    """sshd_config/ssh_config (`Match`/`Host` sections), redis.conf (none) and haproxy.cfg
    (global, defaults, frontend, backend, listen ...): `keyword args` lines, `#` comments;
    a section runs from its keyword line to the next section keyword."""
    return block_mapping(_keyword_tree(text, origin, sections), dialect)


SSH_SECTIONS = frozenset({"match", "host"})
HAPROXY_SECTIONS = frozenset(
    {
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "userlist",
        "peers",
        "resolvers",
        "mailers",
        "program",
        "cache",
        "http-errors",
        "ring",
    }
)


def _keyword_tree(text: str, origin: str, sections: frozenset[str]) -> list[Directive]:
    root: list[Directive] = []
    current = root
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        lexer = shlex.shlex(stripped, posix=True)
        lexer.whitespace_split, lexer.commenters, lexer.escape = True, "#", ""
        try:
            words = list(lexer)
        except ValueError:
            raise BadInput(f"line {number}: unbalanced quotes", subject=origin) from None
        if not words:
            continue
        first, _, rest = words[0].partition("=")  # sshd allows `Keyword=value`
        name, args = (first, [rest, *words[1:]]) if rest else (first, words[1:])
        if name.lower() in sections:
            children: list[Directive] = []
            root.append(Directive(name, args, number, children=children))
            current = children
        else:
            current.append(Directive(name, args, number))
    return root


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
