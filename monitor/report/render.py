"""One entry point per output format of `apivigil report`."""

from __future__ import annotations

import json

from monitor.report.formats import ReportFormat
from monitor.report.jsondoc import report_document
from monitor.report.model import ReportData
from monitor.report.pages import html_report, markdown_report
from monitor.report.sarif import sarif_from_report


def render_report(data: ReportData, format: ReportFormat) -> str:
    """The report as text in `format`."""
    match format:
        case ReportFormat.HTML:
            return html_report(data)
        case ReportFormat.MD:
            return markdown_report(data)
        case ReportFormat.JSON:
            return json.dumps(report_document(data), indent=2) + "\n"
        case ReportFormat.OSCAL:
            # compliance-trestle's models take a moment to import: only when asked for
            from monitor.report.oscal import oscal_json  # noqa: PLC0415

            return oscal_json(data)
        case ReportFormat.SARIF:
            return json.dumps(sarif_from_report(data), indent=2) + "\n"
