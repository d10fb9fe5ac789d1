"""Raw data of a config_drift run: each source's flat state, or why it could not be read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from monitor.model import Baseline


class ReadAs(StrEnum):
    """How a file was compared when not in a format of its own."""

    TEXT = "text lines"
    DIGEST = "its SHA-256 digest"


@dataclass(frozen=True, slots=True)
class ReadNote:
    """A file (`where` inside a directory source; "" for the source itself) that was not
    compared in a format of its own, and why."""

    where: str
    reason: str
    read_as: ReadAs = ReadAs.TEXT


@dataclass(frozen=True, slots=True)
class SourceState:
    """A source's normalised state (secrets already masked). `unreadable` lists path
    prefixes inside it that could not be read this time, with the reason; `notes` name the
    files that were not compared in a format of their own (not recognised, or not valid in
    the detected one: read as text; too long to read: by digest), never silently."""

    source: str
    entries: Mapping[str, str]
    unreadable: tuple[tuple[str, str], ...] = ()
    notes: tuple[ReadNote, ...] = ()


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
