"""Message templates (Jinja2). A file in the user's `templates_dir` overrides the built-in one
of the same name in `alerts/templates/`.

Every `{{ value }}` is made printable first (control and bidi characters shown as escapes,
newlines kept: `monitor.text.printable`); then how it is escaped follows the file name:
- `*.html.j2`: HTML-escaped (autoescape);
- `*.md.j2` (Slack mrkdwn): `&`, `<` and `>` are escaped, so a value taken from a scanned
  server cannot become a link or a mention such as `<!channel>`;
- anything else is plain text.
A value passed through `|safe` is not escaped. Undefined names are errors (StrictUndefined).

What the built-in templates receive: the e-mail templates `notification`
(`alerts.model.Notification`); `slack_finding.md.j2` `alert` (`alerts.model.Alert`).
Filter `utc`: a datetime as `2024-05-01 12:00 UTC`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.loaders import split_template_path
from markupsafe import Markup

from monitor.bounded_files import read_limited
from monitor.text import printable

_MRKDWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MAX_TEMPLATE_BYTES = 256 * 1024


class TemplateError(Exception):
    """A template is missing, does not parse, or failed while rendering."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"template {name}: {reason}")
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return f"template {self.name}: {self.reason}"


def mrkdwn_escape(text: str) -> str:
    """`text` as Slack mrkdwn shows it literally (Slack's documented escapes: & < >), with
    control and bidi characters shown as escapes."""
    return printable(text, keep_newlines=True).translate(_MRKDWN_ESCAPES)


def render(name: str, templates_dir: Path | None, **context: object) -> str:
    """Render template `name` with `context`. Raises TemplateError naming the template."""
    environment = _environment(templates_dir, mrkdwn=name.endswith(".md.j2"))
    try:
        return environment.get_template(name).render(**context)
    except jinja2.TemplateNotFound:
        where = f"{templates_dir} or " if templates_dir else ""
        raise TemplateError(name, f"not found in {where}the built-in templates") from None
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(name, f"line {error.lineno}: {error.message}") from None
    except jinja2.TemplateError as error:
        raise TemplateError(name, error.message or type(error).__name__) from None
    except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as error:
        # a filter or an expression in a (user's) template failed on the values it got
        raise TemplateError(name, f"{type(error).__name__}: {error}") from None


def _finalize_mrkdwn(value: object) -> object:
    if isinstance(value, Markup):
        return str(value)
    return mrkdwn_escape(str(value))


def _finalize_text(value: object) -> object:
    if isinstance(value, Markup):  # `|safe`: the template's author vouches for it
        return value
    return printable(str(value), keep_newlines=True)


def code_text(value: object) -> str:
    """`value` for inside a mrkdwn code span or block: its backticks become U+02CB (the
    modifier letter grave accent), which looks alike and cannot end the span early."""
    return str(value).replace("`", "\u02cb")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class _DirectoryLoader(jinja2.BaseLoader):
    """Templates from the user's directory, read as `monitor.bounded_files` reads: a FIFO or
    a device there is an error for that template, never a tick waiting on it."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = self._directory.joinpath(*split_template_path(template))
        try:
            source = read_limited(path, _MAX_TEMPLATE_BYTES).decode("utf-8")
            modified = path.stat().st_mtime
        except FileNotFoundError:
            raise jinja2.TemplateNotFound(template) from None
        except OSError as error:
            raise jinja2.TemplateError(f"{path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise jinja2.TemplateError(f"{path}: not UTF-8 text") from None

        def unchanged() -> bool:
            try:
                return path.stat().st_mtime == modified
            except OSError:
                return False

        return source, str(path), unchanged


@lru_cache(maxsize=32)
def _environment(templates_dir: Path | None, *, mrkdwn: bool) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("alerts", "templates")]
    if templates_dir is not None:
        loaders.insert(0, _DirectoryLoader(templates_dir))
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(("html.j2", "htm.j2"), default=False),
        finalize=_finalize_mrkdwn if mrkdwn else _finalize_text,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["utc"] = _utc
    environment.filters["code"] = code_text
    return environment
