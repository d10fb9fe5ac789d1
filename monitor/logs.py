"""Structured logs: JSON lines (default) or readable console output, via structlog."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from monitor.text import printable

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str = "info", format: Literal["json", "console"] = "json") -> None:
    renderers: list[structlog.typing.Processor] = (
        [structlog.processors.JSONRenderer()]
        if format == "json"  # JSON escapes control characters itself
        else [_printable_values, structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *renderers,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(_LEVELS[level], logging.WARNING), stream=sys.stderr, force=True)


def _printable_values(
    logger: object, method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Text from targets (URLs, errors, paths) made printable for a terminal; a trace keeps
    its lines."""
    return {
        key: printable(value, keep_newlines=key == "exception") if isinstance(value, str) else value
        for key, value in event.items()
    }
