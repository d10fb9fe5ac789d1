"""/api/v1: a small JSON API with bearer tokens (read or admin scope): silences, findings."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.matchers import check_matchers
from alerts.model import Silence
from monitor.alert_records import AlertRecords
from monitor.api_security import RateLimiter, too_many_requests
from monitor.clock import Clock
from monitor.durations import Duration
from monitor.model import FindingStatus, Severity, require_utc
from monitor.settings import ApiRateLimit, ApiScope, ApiToken
from monitor.store.interface import FindingQuery, Store


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(min_length=1, max_length=32)
    comment: str = Field(min_length=1, max_length=2000)
    duration: Duration | None = None
    ends_at: datetime | None = None

    @field_validator("matchers")
    @classmethod
    def _usable_matchers(cls, matchers: dict[str, str]) -> dict[str, str]:
        check_matchers(matchers)  # a MatcherError is a ValueError: 422 with its message
        return matchers

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_text(cls, value: object) -> object:
        # runs before Duration's own parser, which expects text
        if value is not None and not isinstance(value, str | timedelta):
            raise ValueError("give a duration such as 2h or 30m")
        return value


class ErrorBody(BaseModel):
    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "the body cannot be parsed"),
        (401, "no valid bearer token"),
        (403, "the token lacks the admin scope"),
        (413, "request body too large"),
        (429, "rate limit exceeded (see Retry-After)"),
    )
}
_bearer = HTTPBearer(auto_error=False, description="a token of read or admin scope")


@dataclass(frozen=True, slots=True)
class _Limits:
    per_token: RateLimiter
    per_address: RateLimiter

    @classmethod
    def from_settings(cls, limits: ApiRateLimit) -> _Limits:
        return cls(
            RateLimiter(limits.per_token_rate, limits.per_token_burst),
            RateLimiter(limits.per_address_rate, limits.per_address_burst),
        )


def _caller(
    tokens: Sequence[ApiToken], needed: ApiScope, limits: _Limits
) -> Callable[..., ApiToken]:
    def authorise(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiToken:
        address = request.client.host if request.client else "unknown"
        # an address spending its attempts on bad tokens is refused before any comparison
        if wait := limits.per_address.wait(address):
            raise too_many_requests(wait)
        presented = credentials.credentials.strip() if credentials else ""
        digest = hashlib.sha256(presented.encode()).hexdigest()
        token = next((t for t in tokens if hmac.compare_digest(t.sha256, digest)), None)
        if not presented or token is None:
            limits.per_address.take(address)
            detail = "bearer token required" if not presented else "unknown token"
            raise HTTPException(401, detail, {"WWW-Authenticate": "Bearer"})
        if wait := limits.per_token.take(token.name):
            raise too_many_requests(wait)
        if needed is ApiScope.ADMIN and token.scope is not ApiScope.ADMIN:
            raise HTTPException(403, "this token may only read")
        return token

    return authorise


def _invalid(message: str, field: str) -> RequestValidationError:
    """A 422 shaped like pydantic's, so the OpenAPI document describes every 422."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


def _silence_document(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": dict(silence.matchers),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def api_router(
    store: Store,
    tokens: Sequence[ApiToken],
    clock: Clock,
    rate_limit: ApiRateLimit | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=_ERRORS)
    silences = AlertRecords(store)
    limits = _Limits.from_settings(rate_limit or ApiRateLimit())
    reader = Depends(_caller(tokens, ApiScope.READ, limits))
    admin = Depends(_caller(tokens, ApiScope.ADMIN, limits))

    @router.get("/silences")
    def list_silences(_token: ApiToken = reader) -> list[dict[str, Any]]:
        return [_silence_document(s) for s in silences.silences(clock.now())]

    @router.post("/silences", status_code=201)
    def add_silence(request: SilenceRequest, token: ApiToken = admin) -> dict[str, Any]:
        now = clock.now()
        if (request.duration is None) == (request.ends_at is None):
            raise _invalid("give duration or ends_at", "duration")
        try:
            ends = (
                require_utc(request.ends_at, "ends_at")
                if request.ends_at is not None
                else now + (request.duration or timedelta(0))
            )
        except ValueError as error:
            raise _invalid(str(error), "ends_at") from None
        if ends <= now:
            raise _invalid("the silence would end before it starts", "ends_at")
        silence = Silence(
            str(uuid.uuid4()), request.matchers, now, ends, f"api:{token.name}", request.comment
        )
        silences.add_silence(silence, now)
        return _silence_document(silence)

    @router.delete("/silences/{silence_id}", responses={404: {"model": ErrorBody}})
    def expire_silence(silence_id: str, token: ApiToken = admin) -> dict[str, str]:
        if not silences.expire_silence(silence_id, f"api:{token.name}", clock.now()):
            raise HTTPException(404, "no active silence with that id")
        return {"id": silence_id, "status": "expired"}

    @router.get("/findings")
    def findings(
        _token: ApiToken = reader,
        target: str | None = None,
        severity: Severity | None = None,
    ) -> list[dict[str, Any]]:
        found = store.findings(
            FindingQuery(
                target=target, min_severity=severity, statuses=frozenset({FindingStatus.OPEN})
            )
        )
        return [
            {
                "fingerprint": f.fingerprint,
                "check": f.check.value,
                "target": f.target,
                "rule_id": f.rule_id,
                "severity": f.severity.value,
                "title": f.title,
                "subject": f.subject,
                "evidence": f.evidence,
                "remediation": f.remediation,
                "first_seen": f.first_seen.isoformat(),
            }
            for f in found
        ]

    return router
