"""Request each secured GET/HEAD operation without credentials and with an invalid bearer
token (and, to tell a public stub from the real answer, with the configured credentials),
within the run's request budget. No other method is ever sent, whatever the spec or the
config says: `SAFE_METHODS` is the only way into `_send`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode

from checks.api_inventory.inventory import Operation, ParameterLocation
from checks.api_inventory.probe_urls import probe_url
from checks.auth_posture.classify import Answer, answer
from checks.auth_posture.facts import (
    BODY_KEPT,
    Exchange,
    OperationProbe,
    SkippedOperation,
    SkipReason,
    Variant,
)
from checks.auth_posture.spec import ParameterKey, SpecFacts
from checks.http import fetch
from checks.interface import CheckContext, CheckError

SAFE_METHODS: Mapping[str, Literal["GET", "HEAD"]] = {"get": "GET", "head": "HEAD"}
INVALID_TOKEN = "Bearer apivigil-invalid-token.not-a-credential"  # noqa: S105 (by design)
PROBE_HEADERS = {"Accept": "application/json, */*;q=0.5", "X-Apivigil-Probe": "auth-enforced"}
MAX_BODY = 256 * 1024
_TEMPLATE_PARAMETER = re.compile(r"\{([^{}]*)\}")


class Budget:
    """Requests a run may still send (mutable, local to one collect)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def left(self) -> int:
        return self.limit - self.used


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    target_url: str
    credentials: str | None
    verify: bool | str
    timeout: float


@dataclass(frozen=True, slots=True)
class ProbeOrder:
    """What the previous run left: the operations it found open (probed first again, so
    their findings neither flap nor resolve for want of budget) and the last operation it
    probed (the rest resume after it, so a budget smaller than the API still covers every
    operation over a few runs)."""

    open_before: frozenset[str] = frozenset()
    resume_after: str | None = None


def probe_operations(
    spec: SpecFacts,
    settings: ProbeSettings,
    budget: Budget,
    context: CheckContext,
    order: ProbeOrder = ProbeOrder(),
) -> tuple[tuple[OperationProbe, ...], tuple[SkippedOperation, ...], str | None]:
    """The probes made and the secured operations skipped (with why), in key order, and
    the key of the last operation probed in rotation order (None: none was)."""
    probes: list[OperationProbe] = []
    skipped: list[SkippedOperation] = []
    planned: list[tuple[str, Literal["GET", "HEAD"], str]] = []
    secured = [op for op in spec.inventory.operations if not op.public]
    for operation in sorted(secured, key=lambda op: op.key):
        method = SAFE_METHODS.get(operation.method)
        if method is None:
            skipped.append(SkippedOperation(operation.key, SkipReason.UNSAFE_METHOD))
            continue
        url_or_skip = _url(operation, spec, settings.target_url)
        if isinstance(url_or_skip, SkippedOperation):
            skipped.append(url_or_skip)
        else:
            planned.append((operation.key, method, url_or_skip))
    last: str | None = None
    for key, method, url in _ordered(planned, order):
        # anonymous, then invalid token or valid credentials: at least two requests
        if budget.left() < 2:
            skipped.append(SkippedOperation(key, SkipReason.BUDGET))
            continue
        probes.append(_probe(key, method, url, settings, budget, context))
        if key not in order.open_before:
            last = key
    probes.sort(key=lambda probe: probe.key)
    skipped.sort(key=lambda skip: skip.key)
    return tuple(probes), tuple(skipped), last


def _ordered(
    planned: list[tuple[str, Literal["GET", "HEAD"], str]], order: ProbeOrder
) -> list[tuple[str, Literal["GET", "HEAD"], str]]:
    first = [entry for entry in planned if entry[0] in order.open_before]
    rest = [entry for entry in planned if entry[0] not in order.open_before]
    start = 0
    if order.resume_after is not None:
        start = next((i for i, entry in enumerate(rest) if entry[0] > order.resume_after), 0)
    return first + rest[start:] + rest[:start]


def _url(operation: Operation, spec: SpecFacts, target_url: str) -> str | SkippedOperation:
    examples = spec.examples.get(operation.key, {})
    missing: list[str] = []
    path_values: dict[str, str] = {}
    query: list[tuple[str, str]] = []
    for parameter in operation.parameters:
        key: ParameterKey = (
            parameter.location.value,
            parameter.name.lower()
            if parameter.location is ParameterLocation.HEADER
            else parameter.name,
        )
        value = examples.get(key)
        if parameter.location is ParameterLocation.PATH:
            if value is None:
                missing.append(f"path parameter {parameter.name}")
            else:
                path_values[parameter.name] = value
        elif parameter.required and parameter.location is ParameterLocation.QUERY:
            if value is None:
                missing.append(f"query parameter {parameter.name}")
            else:
                query.append((parameter.name, value))
        elif parameter.required and parameter.name.lower() != "authorization":
            missing.append(f"{parameter.location.value} parameter {parameter.name}")
    for name in _TEMPLATE_PARAMETER.findall(operation.path):
        if name not in path_values and f"path parameter {name}" not in missing:
            missing.append(f"path parameter {name}")
    if missing:
        return SkippedOperation(
            operation.key, SkipReason.NO_EXAMPLE, "no example or default for " + ", ".join(missing)
        )
    path = _TEMPLATE_PARAMETER.sub(
        lambda found: quote(path_values[found.group(1)], safe=""), operation.path
    )
    url = probe_url(target_url, spec.inventory.base_path, path)
    if url is None:
        return SkippedOperation(operation.key, SkipReason.NOT_ON_TARGET, operation.path)
    return f"{url}?{urlencode(query)}" if query else url


def _probe(
    key: str,
    method: Literal["GET", "HEAD"],
    url: str,
    settings: ProbeSettings,
    budget: Budget,
    context: CheckContext,
) -> OperationProbe:
    exchanges = [_send(method, url, Variant.ANONYMOUS, settings, budget, context)]
    if answer(exchanges[0]) is Answer.REFUSED:
        exchanges.append(_send(method, url, Variant.INVALID_TOKEN, settings, budget, context))
    accepted = answer(exchanges[-1]) is Answer.ACCEPTED
    if accepted and settings.credentials is not None and budget.left() >= 1:
        exchanges.append(_send(method, url, Variant.VALID, settings, budget, context))
    return OperationProbe(key, url, tuple(exchanges))


def _send(
    method: Literal["GET", "HEAD"],
    url: str,
    variant: Variant,
    settings: ProbeSettings,
    budget: Budget,
    context: CheckContext,
) -> Exchange:
    headers = dict(PROBE_HEADERS)
    if variant is Variant.INVALID_TOKEN:
        headers["Authorization"] = INVALID_TOKEN
    elif variant is Variant.VALID and settings.credentials is not None:
        headers["Authorization"] = settings.credentials
    # past the run's deadline this raises, and the run ends as timed out: not one "no
    # answer" per remaining operation, and no request counted that was never sent
    timeout = context.io_timeout(settings.timeout)
    budget.used += 1
    try:
        response = fetch(
            url,
            timeout=timeout,
            max_bytes=MAX_BODY,
            verify=settings.verify,
            headers=headers,
            derived=True,  # the path came from the spec
            egress=context.egress,
            deadline=context.deadline,
            method=method,
            follow_redirects=False,  # a redirect to a login is the answer; one request each
        )
    except CheckError as error:
        return Exchange(variant, method, None, error=error.message)
    body = response.body
    return Exchange(
        variant, method, response.status, response.headers, body[:BODY_KEPT], size=len(body)
    )
