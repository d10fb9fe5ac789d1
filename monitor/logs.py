"""Structured logs: JSON lines (default) or readable console output, via structlog.

structlog is imported when logging is configured or a logger is first asked for, not with
this module: it imports rich's traceback and pretty-printer (~0.1 s), which a one-off
`apivigil scan` that logs nothing should not pay (`configure_logging_on_first_use`).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, Literal

from monitor.text import printable

if TYPE_CHECKING:
    import structlog

LogFormat = Literal["json", "console"]
_deferred: tuple[str, LogFormat] | None = None
_deferred_lock = threading.Lock()

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str = "info", format: LogFormat = "json") -> None:
    """Configure structlog and the standard library's logging now; a configuration
    deferred by `configure_logging_on_first_use` is dropped (this one stands)."""
    global _deferred  # noqa: PLW0603 (one process-wide logging configuration)
    with _deferred_lock:
        _deferred = None
    _configure(level, format)


def _configure(level: str, format: LogFormat) -> None:
    import structlog  # noqa: PLC0415 (see the module's docstring)

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
    _configure_stdlib(level)


def configure_logging_on_first_use(level: str = "info", format: LogFormat = "json") -> None:
    """Configure the standard library's logging now and structlog when `logger` is first
    called: a run that logs nothing never imports structlog. When structlog is already
    imported (a module that logs through its own `structlog.get_logger`, such as the store
    `scan --push-gateway` uses, was imported first), there is nothing to save: it is
    configured now, or that module's lines would go out unconfigured, on stdout."""
    global _deferred  # noqa: PLW0603 (one process-wide logging configuration)
    if "structlog" in sys.modules:
        configure_logging(level, format)
        return
    with _deferred_lock:
        _deferred = (level, format)
    _configure_stdlib(level)


def logger(name: str) -> Any:
    """structlog's logger for `name`, after a configuration deferred by
    `configure_logging_on_first_use`."""
    global _deferred
    with _deferred_lock:
        deferred, _deferred = _deferred, None
        if deferred is not None:
            _configure(*deferred)
    import structlog  # noqa: PLC0415 (see the module's docstring)

    return structlog.get_logger(name)


def _configure_stdlib(level: str) -> None:
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
