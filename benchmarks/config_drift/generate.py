"""Seeded test data for the config_drift benchmark: one big configuration file and one
directory of configuration files, each with a modified copy and the list of what changed.

The configuration flattens to exactly `keys` entries under apivigil's rules (a list of
scalars is one entry); the modified copy changes 1 %, adds 0.5 % and removes 0.5 % of them,
always by dict key, so no list position shifts and each edit is exactly one drift item.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

WORDS = (
    "cache", "pool", "upstream", "listener", "session", "queue", "worker", "retry", "limit",
    "backend", "frontend", "route", "cluster", "replica", "shard", "metrics", "tracing",
    "logging", "audit", "gateway", "proxy", "scheduler", "storage", "bucket", "index",
    "search", "mailer", "billing", "inventory", "catalog", "identity", "oauth", "ldap",
    "webhook", "feature", "quota", "circuit", "health", "probe", "tls",
)  # fmt: skip
SETTINGS = (
    "enabled", "timeout", "max_connections", "min_idle", "interval", "port", "host",
    "buffer_size", "log_level", "region", "endpoint", "retries", "backoff", "ttl", "mode",
    "path_prefix", "compression", "keepalive", "batch_size", "threshold", "weight",
    "protocol", "user", "cipher_suites", "read_timeout", "write_timeout", "idle_timeout",
    "max_body_size", "strategy", "priority",
)  # fmt: skip
SECRETS = ("password", "api_key", "token", "client_secret", "private_key", "signing_secret")
LEVELS = ("debug", "info", "warn", "error")
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1")


def _scalar(rng: random.Random, name: str) -> Any:
    """A plausible value for a setting called `name`."""
    if name in SECRETS:
        return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(16, 40)))
    match name:
        case "enabled" | "keepalive" | "compression":
            return rng.random() < 0.5
        case "port":
            return rng.randint(1024, 65535)
        case "host" | "endpoint":
            return f"{rng.choice(WORDS)}-{rng.randint(1, 99)}.internal.example.net"
        case "log_level":
            return rng.choice(LEVELS)
        case "region":
            return rng.choice(REGIONS)
        case "cipher_suites":
            return ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"][: rng.randint(1, 2)]
        case "timeout" | "interval" | "read_timeout" | "write_timeout" | "idle_timeout" | "ttl":
            return f"{rng.randint(1, 600)}s"
        case "path_prefix":
            return f"/{rng.choice(WORDS)}/v{rng.randint(1, 4)}"
        case "user":
            return f"svc_{rng.choice(WORDS)}"
        case "mode" | "strategy" | "protocol":
            return rng.choice(("round_robin", "least_conn", "http2", "grpc", "strict", "lax"))
    if rng.random() < 0.1:
        return round(rng.uniform(0, 100), 2)
    return rng.randint(0, 100_000)


def _settings(rng: random.Random, count: int, secret_rate: float = 0.05) -> dict[str, Any]:
    names = rng.sample(SETTINGS, min(count, len(SETTINGS)))
    out = {name: _scalar(rng, name) for name in names}
    if rng.random() < secret_rate * count:
        secret = rng.choice(SECRETS)
        out[secret] = _scalar(rng, secret)
    if rng.random() < 0.05:
        out["dsn"] = f"postgres://app:{_scalar(rng, 'password')}@db-{rng.randint(1, 9)}:5432/app"
    return out


def _section(rng: random.Random) -> dict[str, Any]:
    """One section: settings, a nested block and a list of dicts (~25-60 leaves)."""
    section = _settings(rng, rng.randint(6, 14))
    section["limits"] = _settings(rng, rng.randint(3, 8), secret_rate=0.0)
    section["upstreams"] = [
        {
            "host": _scalar(rng, "host"),
            "port": _scalar(rng, "port"),
            "weight": rng.randint(1, 10),
            **({"password": _scalar(rng, "password")} if rng.random() < 0.3 else {}),
        }
        for _ in range(rng.randint(1, 6))
    ]
    return section


def leaves(node: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(container, key) of every flattened entry, in a stable order."""
    if isinstance(node, dict):
        for key in list(node):
            value = node[key]
            if isinstance(value, dict) and value:
                yield from leaves(value)
            elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
                for item in value:
                    yield from leaves(item)
            else:
                yield node, key
    elif isinstance(node, list):
        for item in node:
            yield from leaves(item)


def changed_value(value: Any) -> Any:
    match value:
        case bool():
            return not value
        case int() | float():
            return value + 1
        case list():
            return [*value, "TLS_CHACHA20_POLY1305_SHA256"]
        case _:
            return f"{value}-changed"


def make_config(rng: random.Random, keys: int) -> dict[str, Any]:
    """A document that flattens to exactly `keys` entries."""
    document: dict[str, Any] = {
        "service": {"name": "payments-api", "environment": "production", "version": "4.12.1"},
        "sections": {},
    }
    total = 3
    while True:
        section = _section(rng)
        size = sum(1 for _ in leaves(section))
        if total + size > keys:
            break
        document["sections"][f"{rng.choice(WORDS)}_{len(document['sections']):04d}"] = section
        total += size
    if keys > total:  # the remainder as plain settings
        document["sections"]["misc"] = {
            f"setting_{i:04d}": _scalar(rng, rng.choice(SETTINGS)) for i in range(keys - total)
        }
        total = keys
    if sum(1 for _ in leaves(document)) != keys:
        raise AssertionError(f"generated {total} leaves, wanted {keys}")
    return document


@dataclass(slots=True)
class ConfigEdits:
    changed: int = 0
    added: int = 0
    removed: int = 0


def modify_config(
    rng: random.Random, document: dict[str, Any], change: float, add: float, remove: float
) -> tuple[dict[str, Any], ConfigEdits]:
    modified = copy.deepcopy(document)
    addresses = list(leaves(modified))
    total = len(addresses)
    picked = rng.sample(range(total), round(total * change) + round(total * remove))
    to_change, to_remove = picked[: round(total * change)], picked[round(total * change) :]
    edits = ConfigEdits()
    for index in to_change:
        container, key = addresses[index]
        container[key] = changed_value(container[key])
        edits.changed += 1
    for index in to_remove:
        container, key = addresses[index]
        if len(container) > 1:  # never leave an empty dict (it would read as "{}")
            del container[key]
            edits.removed += 1
    for number in range(round(total * add)):
        container, _ = addresses[rng.randrange(total)]
        name = rng.choice((*SETTINGS, *SECRETS))
        container[f"{name}_added_{number}"] = _scalar(rng, name)
        edits.added += 1
    return modified, edits


def dump(document: Any, file_format: str) -> bytes:
    if file_format == "json":
        return json.dumps(document, indent=2).encode()
    return yaml.dump(document, Dumper=_DUMPER, sort_keys=False).encode()


# ------------------------------------------------------------------------- directory


@dataclass(slots=True)
class TreeEdits:
    edited: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def files(self) -> set[str]:
        return {*self.edited, *self.added, *self.removed}


def _conf_text(rng: random.Random, size: int) -> str:
    lines = [f"# {rng.choice(WORDS)} service configuration, managed by config management"]
    written = 0
    while written < size:
        roll = rng.random()
        if roll < 0.25:
            line = f"# {' '.join(rng.choices(WORDS, k=rng.randint(3, 12)))}"
        elif roll < 0.3:
            line = f"\n[{rng.choice(WORDS)}.{rng.randint(0, 999)}]"
        else:
            name = rng.choice((*SETTINGS, *SECRETS)) if roll < 0.32 else rng.choice(SETTINGS)
            value = _scalar(rng, name)
            if isinstance(value, list):
                value = ",".join(value)
            line = f"{rng.choice(WORDS)}.{name} = {value}"
        lines.append(line)
        written += len(line) + 1
    return "\n".join(lines) + "\n"


def _structured(rng: random.Random, size: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    while len(json.dumps(document)) < size * 0.6:  # indentation adds the rest
        document[f"{rng.choice(WORDS)}_{len(document)}"] = _section(rng)
    return document


def _file(rng: random.Random, kind: str) -> tuple[bytes, Any]:
    """(content, editable form) of one file of `kind`, 1-20 KB."""
    size = rng.randint(1024, 20 * 1024)
    if kind == "conf":
        text = _conf_text(rng, size)
        return text.encode(), text
    if kind == "bin":
        return rng.randbytes(size), None
    document = _structured(rng, size)
    return dump(document, kind), document


def _kind(rng: random.Random) -> str:
    return rng.choices(("conf", "json", "yaml", "bin"), weights=(48, 25, 25, 2))[0]


def _directories(rng: random.Random, files: int) -> list[str]:
    services = max(1, files // 50)
    out = []
    for service in range(services):
        base = f"svc-{service:03d}-{rng.choice(WORDS)}"
        out += [base, f"{base}/conf.d", f"{base}/env/{rng.choice(REGIONS)}"]
    return out


def make_tree(rng: random.Random, root: Path, files: int) -> dict[str, tuple[str, Any]]:
    """Write `files` files under `root`; returns relative path -> (kind, editable form)."""
    directories = _directories(rng, files)
    written: dict[str, tuple[str, Any]] = {}
    while len(written) < files:
        kind = _kind(rng)
        relative = f"{rng.choice(directories)}/{rng.choice(WORDS)}-{len(written):05d}.{kind}"
        content, form = _file(rng, kind)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written[relative] = (kind, form)
    return written


def _edit(rng: random.Random, kind: str, form: Any, old: bytes) -> bytes:
    if kind == "bin":
        data = bytearray(old)
        for _ in range(4):
            position = rng.randrange(len(data))
            data[position] ^= 0xFF
        return bytes(data)
    if kind == "conf":
        lines = form.splitlines()
        settings = [i for i, line in enumerate(lines) if " = " in line]
        for index in rng.sample(settings, min(2, len(settings))):
            lines[index] += "-edited"
        return ("\n".join(lines) + "\n").encode()
    document = copy.deepcopy(form)
    addresses = list(leaves(document))
    for container, key in rng.sample(addresses, min(2, len(addresses))):
        container[key] = changed_value(container[key])
    return dump(document, kind)


def modify_tree(
    rng: random.Random,
    original: Path,
    modified: Path,
    files: dict[str, tuple[str, Any]],
    edit: float,
    add: float,
    remove: float,
) -> TreeEdits:
    shutil.copytree(original, modified)
    names = sorted(files)
    count = len(names)
    picked = rng.sample(names, round(count * edit) + round(count * remove))
    edits = TreeEdits()
    for relative in picked[: round(count * edit)]:
        kind, form = files[relative]
        path = modified / relative
        path.write_bytes(_edit(rng, kind, form, path.read_bytes()))
        edits.edited.append(relative)
    for relative in picked[round(count * edit) :]:
        (modified / relative).unlink()
        edits.removed.append(relative)
    directories = sorted({relative.rsplit("/", 1)[0] for relative in names})
    for number in range(round(count * add)):
        kind = _kind(rng)
        relative = f"{rng.choice(directories)}/added-{number:04d}.{kind}"
        (modified / relative).write_bytes(_file(rng, kind)[0])
        edits.added.append(relative)
    return edits


@dataclass(frozen=True, slots=True)
class Dataset:
    config_original: Path
    config_modified: Path
    config_keys: int
    config_edits: ConfigEdits
    tree_original: Path
    tree_modified: Path
    tree_files: int
    tree_edits: TreeEdits


def generate(
    workdir: Path, seed: int, keys: int, files: int, config_format: str = "yaml"
) -> Dataset:
    rng = random.Random(seed)
    document = make_config(rng, keys)
    modified, config_edits = modify_config(rng, document, change=0.01, add=0.005, remove=0.005)
    config_original = workdir / f"original.{config_format}"
    config_modified = workdir / f"modified.{config_format}"
    config_original.write_bytes(dump(document, config_format))
    config_modified.write_bytes(dump(modified, config_format))

    tree_original, tree_modified = workdir / "tree-original", workdir / "tree-modified"
    written = make_tree(rng, tree_original, files)
    tree_edits = modify_tree(
        rng, tree_original, tree_modified, written, edit=0.02, add=0.01, remove=0.01
    )
    return Dataset(
        config_original=config_original,
        config_modified=config_modified,
        config_keys=keys,
        config_edits=config_edits,
        tree_original=tree_original,
        tree_modified=tree_modified,
        tree_files=files,
        tree_edits=tree_edits,
    )
