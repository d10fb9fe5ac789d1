"""The error raised when the advisory index cannot be built or opened."""

from __future__ import annotations

from pathlib import Path


class AdvisoryIndexError(Exception):
    """The index, or one of its sources, is unusable; `member` names the zip member at fault."""

    def __init__(self, path: Path | str, problem: str, member: str | None = None) -> None:
        super().__init__(str(path), problem, member)
        self.path = str(path)
        self.problem = problem
        self.member = member

    def __str__(self) -> str:
        where = f"{self.path} (member {self.member})" if self.member else self.path
        return f"{where}: {self.problem}"
