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
from checks.openapi.inventory import Operation, ParameterLocation
from checks.openapi.probe_urls import probe_url

SAFE_METHODS: Mapping[str, Literal["GET", "HEAD"]] = {"get": "GET", "head": "HEAD"}
INVALID_TOKEN = "Bearer apivigil-invalid-token.not-a-credential"  # noqa: S105 (by design)
PROBE_HEADERS = {"Accept": "application/json, */*;q=0.5", "X-Apivigil-Probe": "auth-enforced"}
MAX_BODY = 4 * 1024 * 1024  # read (only BODY_KEPT is kept): a big 2xx must still be seen
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
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
class _Planned:
    key: str
    method: Literal["GET", "HEAD"]
    url: str
    headers: Mapping[str, str]
    media_types: tuple[str, ...] = ()


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
    planned: list[_Planned] = []
    secured = [op for op in spec.inventory.operations if not op.public]
    for operation in sorted(secured, key=lambda op: op.key):
        method = SAFE_METHODS.get(operation.method)
        if method is None:
            skipped.append(SkippedOperation(operation.key, SkipReason.UNSAFE_METHOD))
            continue
        request = _request(operation, spec, settings.target_url)
        if isinstance(request, SkippedOperation):
            skipped.append(request)
        else:
            media_types = spec.answer_media_types.get(operation.key, ())
            planned.append(_Planned(operation.key, method, *request, media_types))
    last: str | None = None
    throttled: str | None = None
    for plan in _ordered(planned, order):
        if throttled is not None:  # the API asked us to slow down: a monitor stops
            skipped.append(SkippedOperation(plan.key, SkipReason.RATE_LIMITED, throttled))
            continue
        # anonymous, then invalid token or valid credentials: at least two requests
        if budget.left() < 2:
            skipped.append(SkippedOperation(plan.key, SkipReason.BUDGET))
            continue
        probe = _probe(plan, settings, budget, context)
        probes.append(probe)
        if plan.key not in order.open_before:
            last = plan.key
        if any(exchange.status == 429 for exchange in probe.exchanges):
            throttled = f"after {plan.key} answered 429"
    probes.sort(key=lambda probe: probe.key)
    skipped.sort(key=lambda skip: skip.key)
    return tuple(probes), tuple(skipped), last


def _ordered(planned: list[_Planned], order: ProbeOrder) -> list[_Planned]:
    first = [plan for plan in planned if plan.key in order.open_before]
    rest = [plan for plan in planned if plan.key not in order.open_before]
    start = 0
    if order.resume_after is not None:
        start = next((i for i, plan in enumerate(rest) if plan.key > order.resume_after), 0)
    return first + rest[start:] + rest[:start]


def _request(
    operation: Operation, spec: SpecFacts, target_url: str
) -> tuple[str, dict[str, str]] | SkippedOperation:
    """The URL and extra headers of a probe of `operation`, or why there is none."""
    examples = spec.examples.get(operation.key, {})
    headers: dict[str, str] = {}
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
        elif parameter.required and parameter.location is ParameterLocation.HEADER:
            if parameter.name.lower() in _CREDENTIAL_HEADERS:
                continue  # the probe's own variants decide what goes there
            if value is None:
                missing.append(f"header parameter {parameter.name}")
            else:
                headers[parameter.name] = value
        elif parameter.required:  # a cookie: never made up, it may be a credential
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
    return (f"{url}?{urlencode(query)}" if query else url), headers


def _probe(
    plan: _Planned, settings: ProbeSettings, budget: Budget, context: CheckContext
) -> OperationProbe:
    exchanges = [_send(plan, Variant.ANONYMOUS, settings, budget, context)]
    if exchanges[0].status == 429:
        return OperationProbe(plan.key, plan.url, tuple(exchanges), plan.media_types)
    if answer(exchanges[0]) is Answer.REFUSED:
        exchanges.append(_send(plan, Variant.INVALID_TOKEN, settings, budget, context))
    accepted = answer(exchanges[-1]) is Answer.ACCEPTED
    if accepted and settings.credentials is not None and budget.left() >= 1:
        exchanges.append(_send(plan, Variant.VALID, settings, budget, context))
    return OperationProbe(plan.key, plan.url, tuple(exchanges), plan.media_types)


def _send(
    plan: _Planned,
    variant: Variant,
    settings: ProbeSettings,
    budget: Budget,
    context: CheckContext,
) -> Exchange:
    method, url = plan.method, plan.url
    headers = {**plan.headers, **PROBE_HEADERS}
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
