"""The Notifier contract: receivers deliver one Notification, or say why they could not."""

from __future__ import annotations

from typing import Protocol

from alerts.model import Notification


class NotifierError(Exception):
    """Delivery failed. `permanent` says whether retrying can help; `retry_after` (seconds)
    is the receiver's own request to wait (HTTP 429 Retry-After)."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class TemplateFailed(NotifierError):
    """A message template failed to render: permanent (a retry renders it the same way), and
    counted as a skipped template."""

    def __init__(self, message: str, template: str) -> None:
        super().__init__(message, permanent=True)
        self.template = template


class Notifier(Protocol):
    name: str

    def send(self, notification: Notification) -> None:
        """Deliver `notification` once. Returns when the receiver accepted it; raises
        NotifierError (permanent or not) otherwise. Never raises anything else for a
        delivery problem."""
        ...

    def close(self) -> None:
        """Release connections (the receiver is being replaced or the daemon stops)."""
        ...
