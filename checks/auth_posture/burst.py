"""The opt-in rate-limit burst: at most `requests` (≤ 30) anonymous GETs to one documented
GET operation, stopping at the first 429, at most once a day. The time of the last burst
is claimed in the store (committed) before the first request, so neither a restart nor a run
that fails or times out after the burst makes another one within the day; the burst's result
is kept in the run's snapshot."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from checks.auth_posture.facts import BurstResult
from checks.auth_posture.params import MAX_BURST_REQUESTS, AuthPostureParams
from checks.auth_posture.spec import SpecFacts
from checks.http import fetch
from checks.interface import CheckContext, CheckError, CheckMisconfigured
from checks.openapi.probe_urls import probe_url

BURST_ACTION = "rate_limit_burst"  # its name in the store's action claims
BURST_HEADERS = {"Accept": "application/json, */*;q=0.5", "X-Apivigil-Probe": "rate-limit-burst"}


def burst_url(target_url: str, spec: SpecFacts, params: AuthPostureParams) -> str:
    """The URL the burst goes to. Raises CheckMisconfigured for a path the spec does not
    document as a GET operation, before anything is claimed or sent."""
    burst = params.rate_limit_burst
    assert burst is not None
    documented = {op.key for op in spec.inventory.operations}
    if f"GET {burst.path}" not in documented:
        raise CheckMisconfigured(
            f"rate_limit_burst.path {burst.path} is not a documented GET operation "
            "without parameters"
        )
    url = probe_url(target_url, spec.inventory.base_path, burst.path)
    if url is None:
        raise CheckMisconfigured(f"rate_limit_burst.path {burst.path} is not on the target")
    return url


def run_burst(url: str, params: AuthPostureParams, context: CheckContext) -> BurstResult:
    """Send the burst (GETs only); the caller has claimed it in the store first."""
    burst = params.rate_limit_burst
    assert burst is not None
    sent = 0
    for _ in range(min(burst.requests, MAX_BURST_REQUESTS)):
        sent += 1
        try:
            response = fetch(
                url,
                timeout=context.io_timeout(params.network_timeout.total_seconds()),
                max_bytes=64 * 1024,
                read_body=False,
                verify=params.verify,
                headers=BURST_HEADERS,
                egress=context.egress,
                deadline=context.deadline,
                method="GET",
                follow_redirects=False,
            )
        except CheckError as error:
            return BurstResult(context.started_at, url, sent, None, False, str(error))
        if response.status == 429:
            retry_after = any(name.lower() == "retry-after" for name, _ in response.headers)
            return BurstResult(context.started_at, url, sent, sent, retry_after)
    return BurstResult(context.started_at, url, sent, None, False)


def burst_json(burst: BurstResult) -> dict[str, Any]:
    return {
        "at": burst.at.isoformat(),
        "url": burst.url,
        "sent": burst.sent,
        "throttled_after": burst.throttled_after,
        "retry_after": burst.retry_after,
        "error": burst.error,
    }


def previous_burst(snapshot: Mapping[str, Any] | None) -> BurstResult | None:
    """The last burst an earlier run remembered, or None."""
    stored = (snapshot or {}).get("burst")
    if not isinstance(stored, dict):
        return None
    try:
        return BurstResult(
            at=datetime.fromisoformat(stored["at"]),
            url=str(stored["url"]),
            sent=int(stored["sent"]),
            throttled_after=stored["throttled_after"],
            retry_after=bool(stored["retry_after"]),
            error=stored.get("error"),
        )
    except (KeyError, TypeError, ValueError):
        return None
