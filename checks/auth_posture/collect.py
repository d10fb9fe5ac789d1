"""All I/O of an auth_posture run: the spec, the auth probes, the discovery documents and
the JWK Set, and the opt-in rate-limit burst; what earlier runs remembered comes from the
newest snapshot (so a restart changes nothing: key ages and the last burst's result live
there); when the last burst was sent lives in the store's action claims."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from checks.auth_posture.burst import BURST_ACTION, burst_url, previous_burst, run_burst
from checks.auth_posture.discovery import discovery_url, issuer_of
from checks.auth_posture.facts import (
    AuthPostureRaw,
    Discovery,
    FetchedDocument,
    OperationProbe,
    SkippedOperation,
)
from checks.auth_posture.params import BURST_MIN_INTERVAL, AuthPostureParams
from checks.auth_posture.probes import Budget, ProbeOrder, ProbeSettings, probe_operations
from checks.auth_posture.spec import SpecFacts, read_spec_path, read_spec_url
from checks.auth_posture.transport import in_clear
from checks.files import read_secret_input
from checks.http import fetch
from checks.interface import CheckContext, CheckError, CheckMisconfigured
from monitor.model import CheckKind, Target

_JSON_ACCEPT = {"Accept": "application/json, application/jwk-set+json;q=0.9"}


def collect(target: Target, params: AuthPostureParams, context: CheckContext) -> AuthPostureRaw:
    history = context.history
    snapshot = history.latest_snapshot(CheckKind.AUTH_POSTURE, target.name) if history else None
    credentials = (
        read_secret_input(params.auth_header_file, "auth_header_file")
        if params.auth_header_file
        else None
    )
    if credentials is not None:
        _refuse_clear_text(target, params)
    spec = _read_spec(target, params, context, credentials)
    budget = Budget(params.max_requests)
    probes: tuple[OperationProbe, ...] = ()
    skipped: tuple[SkippedOperation, ...] = ()
    last_probed: str | None = None
    if spec is not None and params.probe_operations:
        if target.url is None:
            raise CheckMisconfigured("probing operations needs a target with a url")
        settings = ProbeSettings(
            target.url, credentials, params.verify, params.network_timeout.total_seconds()
        )
        probes, skipped, last_probed = probe_operations(
            spec, settings, budget, context, _probe_order(snapshot)
        )
    discoveries = _discoveries(params, spec, context)
    jwks = _jwks(params, discoveries, context)
    if params.rate_limit_burst is not None and target.url is None:
        raise CheckMisconfigured("rate_limit_burst needs a target with a url")
    burst, burst_ran, burst_lost_at = None, False, None
    if params.rate_limit_burst is not None and spec is not None and target.url is not None:
        burst = previous_burst(snapshot)
        # a burst the last snapshot remembers (also from before claims were stored) counts
        recent = burst is not None and context.started_at - burst.at < BURST_MIN_INTERVAL
        if history is not None and not recent:
            url = burst_url(target.url, spec, params)
            # claimed (committed) before the first request: a run that bursts and then fails,
            # times out or dies still counts, so the burst stays at most once a day
            last_claim = history.claim_action(
                CheckKind.AUTH_POSTURE,
                target.name,
                BURST_ACTION,
                context.started_at,
                BURST_MIN_INTERVAL,
            )
            if last_claim is None:
                burst, burst_ran = run_burst(url, params, context), True
            elif burst is None or burst.at < last_claim:
                burst_lost_at = last_claim  # sent by a run that never finished ok
    return AuthPostureRaw(
        target=target.name,
        spec_probed=spec is not None and params.probe_operations,
        secured_operations=sum(1 for op in spec.inventory.operations if not op.public)
        if spec
        else 0,
        documented_operations=len(spec.inventory.operations) if spec else 0,
        probes=probes,
        skipped=skipped,
        requests_sent=budget.used,
        max_requests=params.max_requests,
        credentials_configured=credentials is not None,
        spec_problems=spec.inventory.problems if spec else (),
        jwks=jwks,
        discoveries=discoveries,
        burst=burst,
        burst_ran=burst_ran,
        burst_lost_at=burst_lost_at,
        last_probed=last_probed,
        burst_needs_store=params.rate_limit_burst is not None and history is None,
        key_first_seen=_first_seen(snapshot),
    )


def _refuse_clear_text(target: Target, params: AuthPostureParams) -> None:
    """The credentials go with the spec's fetch and the comparison probes: refuse before
    anything is sent if either would carry them in clear text."""
    destinations = [_spec_location(target, params), target.url if params.probe_operations else None]
    for url in destinations:
        if url is not None and in_clear(url):
            raise CheckMisconfigured(
                f"auth_header_file: its credentials would be sent in clear text to {url}; "
                "use an https URL (plain http only to a loopback address)"
            )


def _spec_location(target: Target, params: AuthPostureParams) -> str | None:
    if params.spec_path is not None and target.url is not None:
        return target.url.rstrip("/") + params.spec_path
    return params.spec


def _read_spec(
    target: Target, params: AuthPostureParams, context: CheckContext, credentials: str | None
) -> SpecFacts | None:
    if params.spec_path is not None:
        if target.url is None:
            raise CheckMisconfigured("spec_path needs a target with a url")
        location = target.url.rstrip("/") + params.spec_path
    elif params.spec is not None:
        location = params.spec
    else:
        return None
    if location.startswith(("http://", "https://")):
        return read_spec_url(
            location,
            egress=context.egress,
            timeout=context.io_timeout(params.network_timeout.total_seconds()),
            max_bytes=params.max_spec_bytes,
            auth_header=credentials,
            verify=params.verify,
            deadline=context.deadline,
        )
    return read_spec_path(Path(location), params.max_spec_bytes)


def _discoveries(
    params: AuthPostureParams, spec: SpecFacts | None, context: CheckContext
) -> tuple[Discovery, ...]:
    planned: dict[str, tuple[str | None, bool]] = {}  # url -> (expected issuer, remote content)
    if params.oidc_issuer is not None:
        planned[discovery_url(params.oidc_issuer)] = (params.oidc_issuer, False)
    for url in spec.openid_connect_urls if spec else ():
        planned.setdefault(url, (issuer_of(url), True))
    return tuple(
        Discovery(fetch_json(url, params, context, derived=derived), issuer, derived)
        for url, (issuer, derived) in planned.items()
    )


def _jwks(
    params: AuthPostureParams, discoveries: tuple[Discovery, ...], context: CheckContext
) -> tuple[FetchedDocument, ...]:
    """Every JWK Set to audit: the configured one and each discovery document's (a spec may
    name several providers), each fetched once."""
    planned: dict[str, bool] = {}  # url -> derived from remote content
    if params.jwks_url is not None:
        planned[params.jwks_url] = False
    for discovery in discoveries:
        document = discovery.fetched.document
        if isinstance(document, dict) and isinstance(document.get("jwks_uri"), str):
            planned.setdefault(document["jwks_uri"], True)
    return tuple(
        fetch_json(url, params, context, derived=derived) for url, derived in planned.items()
    )


def fetch_json(
    url: str, params: AuthPostureParams, context: CheckContext, *, derived: bool
) -> FetchedDocument:
    """The JSON document at `url`, or why there is none (never raises a CheckError)."""
    try:
        response = fetch(
            url,
            timeout=context.io_timeout(params.network_timeout.total_seconds()),
            max_bytes=params.max_document_bytes,
            verify=params.verify,
            headers=_JSON_ACCEPT,
            derived=derived,
            egress=context.egress,
            deadline=context.deadline,
        )
    except CheckError as error:
        return FetchedDocument(url, error=str(error))
    if not 200 <= response.status < 300:
        return FetchedDocument(url, error=f"{url} answered HTTP {response.status}")
    try:
        return FetchedDocument(url, document=json.loads(response.body))
    except ValueError as error:
        return FetchedDocument(url, error=f"{url} did not answer JSON: {error}")


def _probe_order(snapshot: Mapping[str, Any] | None) -> ProbeOrder:
    operations = (snapshot or {}).get("operations", {})
    open_before = frozenset(
        str(key)
        for key, judged in (operations.items() if isinstance(operations, dict) else ())
        if isinstance(judged, dict) and judged.get("state") == "not_enforced"
    )
    resume_after = (snapshot or {}).get("last_probed")
    return ProbeOrder(open_before, resume_after if isinstance(resume_after, str) else None)


def _first_seen(snapshot: Mapping[str, Any] | None) -> dict[str, datetime]:
    seen = (snapshot or {}).get("key_first_seen", {})
    result: dict[str, datetime] = {}
    for thumbprint, when in seen.items() if isinstance(seen, dict) else ():
        try:
            result[str(thumbprint)] = datetime.fromisoformat(str(when))
        except ValueError:
            continue
    return result
