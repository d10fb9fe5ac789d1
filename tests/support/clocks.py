"""A clock tests move by hand: `now()` is what the test set, deadlines use the real monotonic
clock so runs still time out."""

from __future__ import annotations

import time
from datetime import datetime


class ManualClock:
    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return time.monotonic()
