"""Which inputs of an alert tick can be used. One that cannot (a silence stored with a regex
that does not compile, a maintenance window whose time zone vanished) is left out with the
reason, so the engine still decides for every other alert. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from alerts.config import MaintenanceWindowConfig
from alerts.matchers import MatcherError, check_matcher, check_matchers
from alerts.model import Silence, SkipKind, Skipped
from alerts.rules import window_open


def skip_reason(error: Exception) -> str:
    return str(error) if isinstance(error, MatcherError) else f"{type(error).__name__}: {error}"


def usable_silences(silences: Sequence[Silence]) -> tuple[list[Silence], list[Skipped]]:
    """Silences whose matchers can be used; the others (stored by an older version that did
    not validate them, or edited in the database) are skipped, never applied."""
    usable: list[Silence] = []
    skipped: list[Skipped] = []
    for silence in silences:
        try:
            check_matchers(silence.matchers)
        except MatcherError as error:
            skipped.append(Skipped(SkipKind.SILENCE, silence.id, str(error)))
        else:
            usable.append(silence)
    return usable, skipped


def usable_windows(
    windows: Sequence[MaintenanceWindowConfig], now: datetime, skipped: list[Skipped]
) -> list[MaintenanceWindowConfig]:
    usable: list[MaintenanceWindowConfig] = []
    for window in windows:
        try:
            for label, expected in window.matchers.items():
                check_matcher(label, expected)
            window_open(window, now)
        except Exception as error:  # e.g. a time zone that vanished from the system
            skipped.append(Skipped(SkipKind.MAINTENANCE_WINDOW, window.name, skip_reason(error)))
        else:
            usable.append(window)
    return usable
