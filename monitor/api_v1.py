"""/api/v1: a small JSON API with bearer tokens (read or admin scope): silences, findings."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from alerts.model import Silence
from monitor.clock import Clock
from monitor.durations import Duration
from monitor.model import FindingStatus, Severity, require_utc
from monitor.settings import ApiScope, ApiToken
from monitor.store.interface import FindingQuery
from monitor.store.sql import SqlStore


class SilenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    matchers: dict[str, str] = Field(min_length=1)
    comment: str = Field(min_length=1, max_length=2000)
    duration: Duration | None = None
    ends_at: datetime | None = None


def _caller(tokens: Sequence[ApiToken], needed: ApiScope) -> Callable[..., ApiToken]:
    def authorise(authorization: Annotated[str | None, Header()] = None) -> ApiToken:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise HTTPException(401, "bearer token required", {"WWW-Authenticate": "Bearer"})
        digest = hashlib.sha256(presented.strip().encode()).hexdigest()
        token = next((t for t in tokens if hmac.compare_digest(t.sha256, digest)), None)
        if token is None:
            raise HTTPException(401, "unknown token", {"WWW-Authenticate": "Bearer"})
        if needed is ApiScope.ADMIN and token.scope is not ApiScope.ADMIN:
            raise HTTPException(403, "this token may only read")
        return token

    return authorise


def _silence_document(silence: Silence) -> dict[str, Any]:
    return {
        "id": silence.id,
        "matchers": dict(silence.matchers),
        "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat(),
        "created_by": silence.created_by,
        "comment": silence.comment,
    }


def api_router(store: SqlStore, tokens: Sequence[ApiToken], clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    reader = Depends(_caller(tokens, ApiScope.READ))
    admin = Depends(_caller(tokens, ApiScope.ADMIN))

    @router.get("/silences")
    def list_silences(_token: ApiToken = reader) -> list[dict[str, Any]]:
        return [_silence_document(s) for s in store.silences(clock.now())]

    @router.post("/silences", status_code=201)
    def add_silence(request: SilenceRequest, token: ApiToken = admin) -> dict[str, Any]:
        now = clock.now()
        if (request.duration is None) == (request.ends_at is None):
            raise HTTPException(422, "give duration or ends_at")
        try:
            ends = (
                require_utc(request.ends_at, "ends_at")
                if request.ends_at is not None
                else now + (request.duration or timedelta(0))
            )
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        if ends <= now:
            raise HTTPException(422, "the silence would end before it starts")
        silence = Silence(
            str(uuid.uuid4()), request.matchers, now, ends, f"api:{token.name}", request.comment
        )
        store.add_silence(silence, now)
        return _silence_document(silence)

    @router.delete("/silences/{silence_id}")
    def expire_silence(silence_id: str, token: ApiToken = admin) -> dict[str, str]:
        if not store.expire_silence(silence_id, f"api:{token.name}", clock.now()):
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
