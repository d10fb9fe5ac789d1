"""The choices of `apivigil inventory diff`, apart from the code behind them: registering
the command must not import the spec loader."""

from __future__ import annotations

from enum import StrEnum


class DiffFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"


class FailOn(StrEnum):
    """What makes `inventory diff` exit 1. BREAKING: a change on the breaking axis (an
    operation, parameter, status, media type, variant or enum value clients rely on) or
    any change rated high or worse (security removed or weakened, unauthenticated)."""

    BREAKING = "breaking"
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    NEVER = "never"
