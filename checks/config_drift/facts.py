"""Raw data of a config_drift run: each source's flat state, or why it could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.model import Baseline


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source's normalised state (secrets already masked). `unreadable` lists path
    prefixes inside it that could not be read this time, with the reason; `notes` say how
    it was read when not as expected (not valid in its detected format: read as text)."""

    source: str
    entries: Mapping[str, str]
    unreadable: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceFailure:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class DriftRaw:
    target: str
    states: tuple[SourceState, ...]
    failures: tuple[SourceFailure, ...]
    baseline: Baseline | None
