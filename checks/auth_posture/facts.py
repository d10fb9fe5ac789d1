"""Raw data of one auth_posture run: what `collect` saw, before any judgement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

BODY_KEPT = 16 * 1024  # what the rules read of a body (error words, JSON envelopes, likeness)


class Variant(StrEnum):
    """How a probe of a secured operation was authenticated."""

    ANONYMOUS = "anonymous"  # no credentials at all
    INVALID_TOKEN = "invalid_token"  # noqa: S105 (an obviously invalid bearer token)
    VALID = "valid_credentials"  # the configured Authorization value


class SkipReason(StrEnum):
    """Why a secured operation was not (fully) judged; every reason is counted."""

    UNSAFE_METHOD = "unsafe_method"  # only GET and HEAD are ever sent
    NO_EXAMPLE = "no_example"  # a required parameter has no example or default
    NOT_ON_TARGET = "not_on_target"  # its path cannot be put on the target's origin
    BUDGET = "budget"  # the run's request budget was spent
    NO_ANSWER = "no_answer"  # the request failed (connection, timeout, size cap)
    INCONCLUSIVE = "inconclusive"  # an answer that says neither yes nor no (400, 5xx, 3xx)
    RATE_LIMITED = "rate_limited"  # the API answered 429: no more probes this run
    # a 2xx HTML page where the spec documents only other media types: a single-page
    # app's catch-all or a login form, not the operation (told apart only with credentials)
    CATCH_ALL_PAGE = "catch_all_page"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One probe request and the parts of its answer the rules read."""

    variant: Variant
    method: str  # GET or HEAD
    status: int | None  # None: no answer (see `error`)
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""  # the first BODY_KEPT bytes; kept in memory only, never stored
    error: str | None = None
    size: int | None = None  # the whole body's length (None: len(body))

    @property
    def body_size(self) -> int:
        return len(self.body) if self.size is None else self.size

    @property
    def body_complete(self) -> bool:
        return self.size is None or self.size == len(self.body)

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name]
        return ", ".join(values) if values else None


@dataclass(frozen=True, slots=True)
class OperationProbe:
    """The exchanges made for one secured operation, in the order they were sent."""

    key: str  # GET /orders/{}
    url: str
    exchanges: tuple[Exchange, ...]
    documented_media_types: tuple[str, ...] = ()  # of its 2xx answers, per the spec


@dataclass(frozen=True, slots=True)
class SkippedOperation:
    key: str
    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A JSON document fetched for the key audit (JWKS or OIDC discovery)."""

    url: str
    document: Any = None  # parsed JSON; None when `error`
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Discovery:
    fetched: FetchedDocument
    expected_issuer: str | None  # the configured issuer, the URL's; None: not comparable
    derived: bool = False  # expected_issuer was read off the URL (up to a final '/')


@dataclass(frozen=True, slots=True)
class BurstResult:
    """The opt-in rate-limit burst: what it sent and whether the API throttled."""

    at: datetime
    url: str
    sent: int
    throttled_after: int | None  # requests sent when the first 429 came; None: never
    retry_after: bool  # the 429 carried Retry-After
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AuthPostureRaw:
    target: str
    spec_probed: bool = False  # a spec was read and its secured operations probed
    secured_operations: int = 0
    documented_operations: int = 0
    probes: tuple[OperationProbe, ...] = ()
    skipped: tuple[SkippedOperation, ...] = ()
    requests_sent: int = 0
    last_probed: str | None = None  # where the next run's rotation resumes
    max_requests: int = 0
    credentials_configured: bool = False
    spec_problems: tuple[str, ...] = ()
    jwks: tuple[FetchedDocument, ...] = ()  # the configured set, then each discovered one
    discoveries: tuple[Discovery, ...] = ()
    burst: BurstResult | None = None  # this run's, or the last one carried forward
    burst_ran: bool = False  # whether `burst` was sent in this run
    # a burst claimed then (within the day) whose result no finished run kept
    burst_lost_at: datetime | None = None
    burst_needs_store: bool = False  # configured, but no store remembers the last one
    key_first_seen: Mapping[str, datetime] = field(default_factory=dict)  # thumbprint -> time
