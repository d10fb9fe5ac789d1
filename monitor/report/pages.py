"""The HTML and Markdown forms of a report: Jinja2 templates over ReportData (templates/)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from monitor import __version__
from monitor.durations import format_duration
from monitor.report.charts import charts
from monitor.report.definitions import DEFINITIONS
from monitor.report.model import SEVERITIES_WORST_FIRST, CheckCoverage, ReportData
from monitor.text import markdown_escaped, printable

NAMES_SHOWN = 8


def html_report(data: ReportData) -> str:
    """A standalone page: inline CSS, charts as inline SVG, no script, no external asset."""
    template = _environment(markdown=False).get_template("report.html.j2")
    return template.render(_context(data, with_charts=True))


def markdown_report(data: ReportData) -> str:
    template = _environment(markdown=True).get_template("report.md.j2")
    return template.render(_context(data, with_charts=False))


def uncovered(data: ReportData) -> list[CheckCoverage]:
    """Scheduled checks whose last evaluation is older than their interval."""
    return [
        c
        for t in data.targets
        for c in t.checks
        if c.interval is not None and not c.within_interval
    ]


def _context(data: ReportData, with_charts: bool) -> dict[str, object]:
    return {
        "data": data,
        "version": __version__,
        "severities": SEVERITIES_WORST_FIRST,
        "definitions": DEFINITIONS,
        "charts": charts(data) if with_charts else {},
        "uncovered": uncovered,
    }


@cache
def _environment(*, markdown: bool) -> Environment:
    """Every `{{ value }}` of a template is shown printable (see monitor/display.py); in
    Markdown its syntax is escaped too, so a finding titled `[x](http://evil)` is text.
    HTML escaping is Jinja's autoescape."""
    environment = Environment(
        loader=PackageLoader("monitor.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
        finalize=_markdown_text if markdown else _html_text,
    )
    environment.filters.update(
        {
            "datetime": _datetime,
            "day": _day,
            "percent": _percent,
            "number": _number,
            "duration": _duration,
            "yesno": _yesno,
            "names": _names,
            "cell": _cell,
            "short": short_subject,
            "readable": readable_detail,
        }
    )
    return environment


_HASH = re.compile(r"(?<![0-9A-Za-z])([0-9a-fA-F]{12})[0-9a-fA-F]{4,}(?![0-9A-Za-z])")


def short_subject(subject: str) -> str:
    """`subject` with long hex runs (hashes, fingerprints) cut to their first 12 digits + `…`;
    the page shows the full value on hover."""
    return _HASH.sub(r"\1…", subject)


def readable_detail(detail: str) -> str:
    """An audit record's JSON detail as `key: value · key: value` (hashes shortened)."""
    try:
        value = json.loads(detail)
    except ValueError:
        return short_subject(detail)
    if not isinstance(value, dict):
        return short_subject(detail)
    parts = []
    for key, item in value.items():
        shown = ", ".join(map(str, item)) if isinstance(item, list) else str(item)
        parts.append(f"{key}: {short_subject(shown)}")
    return " · ".join(parts)


def _datetime(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _day(moment: datetime | date) -> str:
    return moment.strftime("%Y-%m-%d")


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def _number(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def _duration(interval: timedelta | None) -> str:
    return format_duration(interval) if interval else "-"


def _yesno(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _names(names: Sequence[str]) -> str:
    if len(names) <= NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:NAMES_SHOWN])} and {len(names) - NAMES_SHOWN} more"


def _cell(text: object) -> str:
    """Text for a Markdown table cell: one line (its pipes are escaped with the rest)."""
    return " ".join(str(text).split())


def _html_text(value: object) -> object:
    if isinstance(value, Markup):  # made by us: the SVG charts
        return value
    return printable(str(value), keep_newlines=True)


def _markdown_text(value: object) -> str:
    return markdown_escaped(printable(" ".join(str(value).split())))
