"""Configuration: one YAML file plus APIVIGIL_* environment overrides, validated strictly.

This is the only module that reads configuration files or the environment. Everything
below it receives typed values. Errors name the key path and, for YAML, the line.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from alerts.config import AlertsConfig
from checks.egress import EgressSettings
from checks.interface import CheckParams
from checks.registry import CHECKS, params_model
from monitor.bounded_files import FileTooLarge, read_limited
from monitor.cluster.config import ClusterConfig
from monitor.durations import Duration, NonNegativeDuration
from monitor.model import CheckKind, Target, parse_endpoint
from monitor.redact import mask_secrets
from monitor.secret_files import read_secret_file
from monitor.store.limits import ConnectionLimits

if TYPE_CHECKING:  # SQLAlchemy stays out of validating a config
    from monitor.store.retention import RetentionPolicy

DEFAULT_CONFIG_PATH = Path("apivigil.yaml")
DEFAULT_STORE = "sqlite:///apivigil.db"
ENV_PREFIX = "APIVIGIL_"

_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABELS = frozenset({"target", "check", "status", "severity", "address"})
_MAX_CONFIG_BYTES = 8 * 1024 * 1024
# nodes reached again through YAML aliases; far above any real config, far below a "billion laughs"
_MAX_ALIAS_EXPANSION = 1_000_000
# real configs nest about ten levels; deeper documents are refused before anything recurses
_MAX_DEPTH = 64
# libyaml's loader is several times faster on large target lists; same safe semantics
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    location: str  # dotted key path, e.g. targets[0].checks.cert_expiry.interval
    line: int | None  # 1-based YAML line, when the key came from the file
    message: str

    def __post_init__(self) -> None:
        # messages quote the values they refuse: a webhook URL, a store URL with its password
        object.__setattr__(self, "location", mask_secrets(self.location))
        object.__setattr__(self, "message", mask_secrets(self.message))

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.location or '(top level)'}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; carries every problem found."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        super().__init__(source)
        self.source = source
        self.problems = problems

    def __str__(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  {self.source}: {problem}" for problem in self.problems]
        return "\n".join(lines)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    interval: Duration = timedelta(hours=1)
    timeout: Duration = timedelta(seconds=60)
    jitter: NonNegativeDuration | None = Field(
        default=None, description="random delay per run; default 5% of the interval, at most 5m"
    )


class SchedulerSettings(_Strict):
    workers: int = Field(default=8, ge=1, le=512, description="checks running at once")
    initial_spread: Duration = Field(
        default=timedelta(minutes=5),
        description="checks that never ran, or are overdue, start spread over at most this long",
    )
    misfire_grace: Duration = timedelta(minutes=5)


class StoreTimeouts(_Strict):
    """How long a PostgreSQL store may keep the daemon waiting (SQLite ignores these).

    A peer that vanishes without a RST otherwise leaves a statement waiting forever."""

    connect: Duration = Field(default=timedelta(seconds=10), le=timedelta(minutes=10))
    statement: Duration = Field(
        default=timedelta(seconds=30),
        le=timedelta(hours=1),
        description="statement_timeout; the client gives up on an answer a little later",
    )
    lock: Duration = Field(default=timedelta(seconds=10), le=timedelta(hours=1))
    idle_in_transaction: Duration = Field(default=timedelta(minutes=5), le=timedelta(days=1))
    keepalive_idle: Duration = Field(default=timedelta(seconds=10), le=timedelta(hours=2))
    keepalive_interval: Duration = Field(default=timedelta(seconds=5), le=timedelta(hours=1))
    keepalive_count: int = Field(default=3, ge=1, le=100)
    tcp_user_timeout: Duration = Field(
        default=timedelta(seconds=30),
        le=timedelta(hours=1),
        description="how long sent data may stay unacknowledged before the link counts as dead",
    )
    pool: Duration = Field(
        default=timedelta(seconds=10),
        le=timedelta(minutes=10),
        description="how long to wait for a free pooled connection",
    )

    def limits(self) -> ConnectionLimits:
        return ConnectionLimits(
            connect_seconds=self.connect.total_seconds(),
            statement_seconds=self.statement.total_seconds(),
            lock_seconds=self.lock.total_seconds(),
            idle_in_transaction_seconds=self.idle_in_transaction.total_seconds(),
            keepalive_idle_seconds=self.keepalive_idle.total_seconds(),
            keepalive_interval_seconds=self.keepalive_interval.total_seconds(),
            keepalive_count=self.keepalive_count,
            tcp_user_timeout_seconds=self.tcp_user_timeout.total_seconds(),
            pool_seconds=self.pool.total_seconds(),
        )


class HealthSettings(_Strict):
    """When /healthz calls this process stuck (a store outage alone is /readyz's business)."""

    recorder_stalled_after: Duration = Field(
        default=timedelta(minutes=3),
        le=timedelta(days=1),
        description="a store write under way, or held runs not retried, for this long",
    )
    scheduler_overdue_after: Duration = Field(
        default=timedelta(minutes=1),
        le=timedelta(days=1),
        description="a check not started this long after its interval, jitter and misfire_grace",
    )


class RetentionSettings(_Strict):
    """How long each kind of history is kept (DESIGN §4); the audit log is never deleted."""

    raw: Duration = Field(
        default=timedelta(days=30),
        ge=timedelta(days=1),
        description="raw runs and samples; older days are kept as daily rollups",
    )
    evidence: Duration = Field(
        default=timedelta(days=400),
        description="resolved findings with their events, and distinct snapshots",
    )
    outbox: Duration = Field(
        default=timedelta(days=30),
        ge=timedelta(days=1),
        description="notifications once delivered (or failed for good)",
    )
    interval: Duration = Field(
        default=timedelta(minutes=5), description="how often the daemon's pruning pass runs"
    )
    budget: Duration = Field(
        default=timedelta(seconds=5),
        le=timedelta(minutes=10),
        description="time one pass may take; the rest waits for the next pass",
    )
    batch_rows: int = Field(default=2000, ge=10, le=100_000, description="rows per transaction")

    @model_validator(mode="after")
    def _evidence_covers_raw(self) -> RetentionSettings:
        if self.evidence < self.raw:
            raise ValueError("retention.evidence must be at least retention.raw")
        return self

    def policy(self) -> RetentionPolicy:
        from monitor.store.retention import RetentionPolicy  # noqa: PLC0415 (SQLAlchemy)

        return RetentionPolicy(
            raw=self.raw, evidence=self.evidence, outbox=self.outbox, batch_rows=self.batch_rows
        )


class Hysteresis(_Strict):
    """When findings open and resolve: the one hysteresis, applied by the store, that /metrics,
    findings and alerts all read (routes may only delay notifying: `notify_after`)."""

    open_after: int = Field(default=1, ge=1, description="consecutive sightings before opening")
    resolve_after: int = Field(default=2, ge=1, description="consecutive absences before resolving")


def _checks_model() -> type[BaseModel]:
    """A model with one optional field per registered check, typed by its parameters.

    Only the parameter models are imported here, not the checks' collect/evaluate code."""
    fields: dict[str, Any] = {kind.value: (params_model(kind) | None, None) for kind in CHECKS}
    return create_model(
        "TargetChecks", __config__=ConfigDict(extra="forbid", frozen=True), **fields
    )


TargetChecks = _checks_model()


class TargetConfig(_Strict):
    name: str
    url: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    checks: TargetChecks = Field(default_factory=TargetChecks)  # type: ignore[valid-type]

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if not _TARGET_NAME.match(name):
            raise ValueError(
                "use letters, digits, '.', '_' or '-' "
                "(at most 128, starting with a letter or digit)"
            )
        return name

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str | None) -> str | None:
        if url is not None:
            parse_endpoint(url)
        return url

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not _LABEL_NAME.match(key):
                raise ValueError(f"label name {key!r} is not a valid Prometheus label name")
            if key in _RESERVED_LABELS:
                raise ValueError(f"label name {key!r} is reserved by apivigil")
        return labels

    def enabled_checks(self) -> dict[CheckKind, CheckParams]:
        """The checks configured for this target and not disabled, with their parameters."""
        result = {}
        for kind in CHECKS:
            params = getattr(self.checks, kind.value)
            if params is not None and params.enabled:
                result[kind] = params
        return result

    def to_target(self) -> Target:
        return Target(name=self.name, url=self.url, labels=dict(self.labels))


class ApiScope(StrEnum):
    READ = "read"
    ADMIN = "admin"


class ApiToken(_Strict):
    """A bearer token for /api/v1; only its SHA-256 is kept in memory."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    scope: ApiScope = ApiScope.READ
    token_file: Path | None = Field(default=None, description="file holding the token")
    sha256: str = Field(default="", pattern=r"^([0-9a-f]{64})?$", description="or its SHA-256")

    @model_validator(mode="after")
    def _digest(self) -> ApiToken:
        if (self.token_file is None) == (not self.sha256):
            raise ValueError("give token_file or sha256")
        if self.token_file is not None:
            token = read_secret_file(self.token_file, "token_file").get_secret_value()
            if len(token) < 16:
                raise ValueError(f"token_file {self.token_file}: use a token of 16+ characters")
            object.__setattr__(self, "sha256", hashlib.sha256(token.encode()).hexdigest())
            object.__setattr__(self, "token_file", None)
        return self


class ApiRateLimit(_Strict):
    """Token buckets for /api/v1: per token, and per client address for failed or missing auth."""

    per_token_rate: float = Field(default=10.0, gt=0, description="requests a second per token")
    per_token_burst: int = Field(default=20, ge=1, description="requests at once per token")
    per_address_rate: float = Field(
        default=5.0, gt=0, description="unauthenticated attempts a second per client address"
    )
    per_address_burst: int = Field(default=10, ge=1)


class ApiTls(_Strict):
    """Serve the API over HTTPS (TLS 1.2+, Mozilla intermediate ciphers)."""

    cert_file: Path = Field(description="PEM: the server certificate, then its intermediates")
    key_file: Path = Field(description="PEM: the private key")

    @model_validator(mode="after")
    def _readable(self) -> ApiTls:
        for path in (self.cert_file, self.key_file):
            if not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    store: str = Field(default=DEFAULT_STORE, description="SQLAlchemy URL of the store")
    store_file: Path | None = Field(
        default=None, description="file holding the store URL (keeps a password out of the config)"
    )
    listen: str = Field(default="127.0.0.1:9690", description="address of /metrics and the API")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    shutdown_grace: Duration = Field(
        default=timedelta(seconds=10), description="how long SIGTERM waits for running checks"
    )
    defaults: Defaults = Defaults()
    scheduler: SchedulerSettings = SchedulerSettings()
    hysteresis: Hysteresis = Hysteresis()
    store_timeouts: StoreTimeouts = StoreTimeouts()
    health: HealthSettings = HealthSettings()
    retention: RetentionSettings = RetentionSettings()
    targets: list[TargetConfig] = Field(default_factory=list)
    alerts: AlertsConfig = AlertsConfig()
    egress: EgressSettings = Field(
        default_factory=EgressSettings,
        description="where URLs taken from remote content (redirects, $refs) may lead",
    )
    api_tokens: list[ApiToken] = Field(
        default_factory=list, description="bearer tokens for /api/v1 (disabled when empty)"
    )
    api_rate_limit: ApiRateLimit = ApiRateLimit()
    api_max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="larger requests get 413"
    )
    api_tls: ApiTls | None = Field(default=None, description="serve HTTPS on `listen`")
    api_trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="reverse proxies (CIDRs) whose X-Forwarded-For is believed; none by default",
    )
    cluster: ClusterConfig = Field(
        default=ClusterConfig(),
        description="scale-out: leader election, a broker and `apivigil worker` processes",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # the environment overrides the file

    @field_validator("store")
    @classmethod
    def _valid_store(cls, store: str) -> str:
        return _store_url(store)

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, listen: str) -> str:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("use host:port, e.g. 127.0.0.1:9690")
        return listen

    @model_validator(mode="after")
    def _resolve_store_and_names(self) -> Settings:
        if self.store_file is not None:
            url = read_secret_file(self.store_file, "store_file").get_secret_value()
            try:
                object.__setattr__(self, "store", _store_url(url))
            except ValueError as error:
                raise ValueError(f"store_file {self.store_file}: {error}") from None
        if self.cluster.enabled and not self.store.startswith("postgresql"):
            raise ValueError(
                "cluster.broker needs a PostgreSQL store (store: postgresql+psycopg://...); "
                "remove cluster.broker to run as a single node"
            )
        seen: set[str] = set()
        for target in self.targets:
            if target.name in seen:
                raise ValueError(f"target name {target.name!r} is used twice")
            seen.add(target.name)
        return self

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def _store_url(url: str) -> str:
    """`url` when it names a store apivigil supports with a numeric port (if any); the errors
    never quote the URL, which may hold a password."""
    parts = urlsplit(url)
    if parts.scheme.partition("+")[0] not in ("sqlite", "postgresql"):
        raise ValueError("use sqlite:///path/to/apivigil.db or postgresql+psycopg://host/db")
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValueError("the port of the store URL is not a number from 0 to 65535") from None
    return url


def load_settings(path: Path | None) -> Settings:
    """Read `path` (None: no file, defaults and environment only); raise ConfigError."""
    return read_settings(path)[0]


def read_settings(path: Path | None) -> tuple[Settings, list[ConfigProblem]]:
    """`load_settings`, and the warnings about keys that are accepted but ignored."""
    source = str(path) if path else "(no config file)"
    data: dict[str, Any] = {}
    lines: dict[tuple[str | int, ...], int] = {}
    if path is not None:
        text = _read_config_text(path)
        data, lines = parse_yaml(text, source)
    try:
        settings = Settings(**data)
    except ValidationError as error:
        raise ConfigError(source, _problems(error, lines, os.environ)) from None
    except (SettingsError, RecursionError) as error:
        # an APIVIGIL_* variable of a list or mapping key that is not JSON, or nested too deeply
        raise ConfigError(source, [_environment_problem(error, os.environ)]) from None
    beside = path.parent / "templates" if path is not None else None
    if settings.alerts.templates_dir is None and beside is not None and beside.is_dir():
        # message templates in the config's directory override the built-in ones
        alerts = settings.alerts.model_copy(update={"templates_dir": beside})
        settings = settings.model_copy(update={"alerts": alerts})
    errors, warnings = route_hysteresis(settings)
    if errors:
        raise ConfigError(
            source, [ConfigProblem(_dotted(at), _nearest_line(at, lines), m) for at, m in errors]
        )
    return settings, [ConfigProblem(_dotted(at), _nearest_line(at, lines), m) for at, m in warnings]


_Located = tuple[tuple[str | int, ...], str]  # a key path and a message about it


def ignored_keys(settings: Settings) -> list[ConfigProblem]:
    """Keys the config sets that are accepted but ignored (for the daemon's log)."""
    return [ConfigProblem(_dotted(at), None, m) for at, m in route_hysteresis(settings)[1]]


def route_hysteresis(settings: Settings) -> tuple[list[_Located], list[_Located]]:
    """Errors and warnings for the routes' deprecated open_after/resolve_after.

    Findings open and resolve by the global `hysteresis:` alone, so that /metrics, findings
    and alerts show one state; a route's own value is never read. One above the global value
    asked for something the route no longer does: an error that says what to use instead.
    One at or below it changed nothing anyway: a warning."""
    errors: list[_Located] = []
    warnings: list[_Located] = []
    hysteresis = settings.hysteresis
    for index, route in enumerate(settings.alerts.routes):
        if route.open_after is not None:
            at = ("alerts", "routes", index, "open_after")
            if route.open_after > hysteresis.open_after:
                errors.append((at, _later_open(route.open_after, hysteresis.open_after)))
            else:
                warnings.append((at, _ignored("open_after", hysteresis.open_after, "opens")))
        if route.resolve_after is not None:
            at = ("alerts", "routes", index, "resolve_after")
            if route.resolve_after > hysteresis.resolve_after:
                errors.append((at, _later_resolve(route.resolve_after, hysteresis.resolve_after)))
            else:
                warnings.append(
                    (at, _ignored("resolve_after", hysteresis.resolve_after, "resolves"))
                )
    return errors, warnings


def _later_open(wanted: int, global_value: int) -> str:
    return (
        f"{wanted} is more than hysteresis.open_after ({global_value}), and a route no longer "
        "decides when a finding opens: set `hysteresis: {open_after: "
        f"{wanted}}}` to open findings later everywhere, or `notify_after: {wanted}` on this "
        "route to notify later"
    )


def _later_resolve(wanted: int, global_value: int) -> str:
    return (
        f"{wanted} is more than hysteresis.resolve_after ({global_value}), and a route no "
        "longer decides when a finding resolves (alerts would show firing what /metrics shows "
        f"resolved): set `hysteresis: {{resolve_after: {wanted}}}` instead"
    )


def _ignored(key: str, global_value: int, verb: str) -> str:
    return (
        f"deprecated and ignored: a finding {verb} after hysteresis.{key} ({global_value}) "
        "for metrics, findings and alerts alike; remove it from the route"
    )


def _environment_problem(error: Exception, env: Mapping[str, str]) -> ConfigProblem:
    found = re.search(r'field "([^"]+)"', str(error))
    key = found.group(1) if found else ""
    names = sorted(name for name in env if key and name.startswith(ENV_PREFIX + key.upper()))
    variables = ", ".join(names) or f"an {ENV_PREFIX}* environment variable"
    if isinstance(error, RecursionError):
        return ConfigProblem(key, None, f"{variables}: JSON nested too deeply")
    cause = error.__cause__
    detail = f" ({cause})" if isinstance(cause, ValueError) else ""
    return ConfigProblem(key, None, f"{variables}: not valid JSON{detail}")


def _read_config_text(path: Path) -> str:
    source = str(path)
    try:
        return read_limited(path, _MAX_CONFIG_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [ConfigProblem("", None, "no such file")]) from None
    except FileTooLarge:
        problem = ConfigProblem("", None, f"larger than {_MAX_CONFIG_BYTES} bytes")
        raise ConfigError(source, [problem]) from None
    except UnicodeDecodeError as error:
        raise ConfigError(source, [ConfigProblem("", None, f"not UTF-8 text: {error}")]) from None
    except OSError as error:  # a FIFO, a device, unreadable
        raise ConfigError(source, [ConfigProblem("", None, error.strerror or str(error))]) from None


def parse_yaml(text: str, source: str) -> tuple[dict[str, Any], dict[tuple[str | int, ...], int]]:
    """Safe-load YAML into plain data plus a map from key path to 1-based line."""
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_alias_expansion(node, source)
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:  # the pure-Python loader recurses while composing
        too_deep = ConfigProblem("", None, "not valid YAML: nested too deeply")
        raise ConfigError(source, [too_deep]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, [ConfigProblem("", line, f"not valid YAML: {problem}")]) from None
    finally:
        loader.dispose()
    if node is None:
        return {}, {}
    lines: dict[tuple[str | int, ...], int] = {}
    problems: list[ConfigProblem] = []
    _index_lines(node, (), lines, problems)
    if problems:
        raise ConfigError(source, problems)
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigProblem("", 1, "the top level must be a mapping of keys")])
    return data, lines


def _check_alias_expansion(root: yaml.Node, source: str) -> None:
    """Reject documents whose aliases expand to a huge tree or refer to themselves, or that
    nest deeper than `_MAX_DEPTH`, before anything walks the expanded tree (construction,
    line indexing, validation). Iterative: a deep document cannot exhaust the stack here."""
    sizes: dict[int, int] = {}  # id(node) -> nodes in its expanded subtree
    heights: dict[int, int] = {}  # id(node) -> levels of its expanded subtree
    open_nodes: set[int] = set()
    expanded = 0

    def problem(node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(source, [ConfigProblem("", node.start_mark.line + 1, message)])

    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = list(_children(node))
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            heights[key] = 1 + max((heights[id(child)] for child in children), default=0)
            if heights[key] > _MAX_DEPTH:
                raise problem(node, f"nested deeper than {_MAX_DEPTH} levels")
            open_nodes.discard(key)
        elif key in open_nodes:
            raise problem(node, "an alias refers to the node that contains it")
        elif key in sizes:  # a second visit: an alias expands this subtree again
            expanded += sizes[key]
            if expanded > _MAX_ALIAS_EXPANSION:
                raise problem(
                    node,
                    f"aliases expand to more than {_MAX_ALIAS_EXPANSION} nodes "
                    "(a 'billion laughs' document?)",
                )
        else:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(list(_children(node))))


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield key_node
            yield value_node
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _index_lines(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    problems: list[ConfigProblem],
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    ConfigProblem(
                        _dotted((*path, key)), key_node.start_mark.line + 1, "duplicate key"
                    )
                )
            seen.add(key)
            _index_lines(value_node, (*path, key), lines, problems)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, problems)


def _problems(
    error: ValidationError, lines: dict[tuple[str | int, ...], int], env: Mapping[str, str]
) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        location = tuple(part for part in item["loc"] if not _is_type_tag(part))
        line = _nearest_line(location, lines)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        env_name = ENV_PREFIX + "__".join(str(p) for p in location).upper()
        if location and env_name in env:
            message += f" (from environment variable {env_name})"
            line = None
        problems.append(ConfigProblem(_dotted(location), line, message))
    return problems


def _is_type_tag(part: str | int) -> bool:
    # pydantic adds the union member's type to error locations, e.g. "CertExpiryParams"
    return isinstance(part, str) and (part[:1].isupper() or part.startswith("function-"))


def _nearest_line(
    location: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
