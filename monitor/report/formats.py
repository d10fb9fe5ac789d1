"""The output formats of `apivigil report`; the values are the CLI's --format choices."""

from __future__ import annotations

from enum import StrEnum


class ReportFormat(StrEnum):
    HTML = "html"
    MD = "md"
    JSON = "json"
    OSCAL = "oscal"
    SARIF = "sarif"
