"""Human durations ("90s", "15m", "1h30m", "7d") to and from timedelta.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# far beyond any interval, retention or silence, far below timedelta's and datetime's limits
MAX_DURATION = timedelta(days=36_500)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse "1h30m", "15m", "60s", "7d" or a number of seconds; raise ValueError otherwise."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return _bounded(text, text)
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        return _bounded(float(cleaned), text)
    position = 0
    seconds = 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(cleaned):
        raise ValueError(
            f"not a duration: {text!r} "
            "(use a number and a unit: ms, s, m, h, d, w; e.g. 90s, 1h30m)"
        )
    return _bounded(seconds, text)


def _bounded(seconds: float, text: object) -> timedelta:
    """`seconds` as a timedelta; ValueError for NaN, infinities and anything beyond the limit."""
    shown = repr(text) if len(repr(text)) <= 40 else repr(text)[:37] + "..."
    if isinstance(seconds, float) and math.isnan(seconds):
        raise ValueError(f"not a duration: {shown} (not a number)")
    if abs(seconds) > MAX_DURATION.total_seconds():  # ints compare exactly, however large
        raise ValueError(f"{shown} is longer than the limit of {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The shortest readable form: 90 s -> "1m30s", 1 day -> "1d"."""
    total = int(delta.total_seconds())
    if total == 0:
        return f"{delta.total_seconds():g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _positive(delta: timedelta) -> timedelta:
    if delta.total_seconds() <= 0:
        raise ValueError("must be longer than zero")
    return delta


def _non_negative(delta: timedelta) -> timedelta:
    if delta.total_seconds() < 0:
        raise ValueError("must not be negative")
    return delta


# pydantic field types for config: accept "15m", "1h30m", or seconds.
Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_positive)]
NonNegativeDuration = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_non_negative)
]
