"""Message templates (Jinja2). A file in the user's `templates_dir` overrides the built-in one
of the same name in `alerts/templates/`.

How values are escaped follows the file name:
- `*.html.j2`: every `{{ value }}` is HTML-escaped (autoescape);
- `*.md.j2` (Slack mrkdwn): `&`, `<` and `>` are escaped, so a value taken from a scanned
  server cannot become a link or a mention such as `<!channel>`;
- anything else is plain text.
A value passed through `|safe` is not escaped. Undefined names are errors (StrictUndefined).

What the built-in templates receive: the e-mail templates `notification`
(`alerts.model.Notification`); `slack_finding.md.j2` `alert` (`alerts.model.Alert`).
Filter `utc`: a datetime as `2024-05-01 12:00 UTC`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import jinja2
from markupsafe import Markup

_MRKDWN_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


class TemplateError(Exception):
    """A template is missing, does not parse, or failed while rendering."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"template {name}: {reason}")
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return f"template {self.name}: {self.reason}"


def mrkdwn_escape(text: str) -> str:
    """`text` as Slack mrkdwn shows it literally (Slack's documented escapes: & < >)."""
    return text.translate(_MRKDWN_ESCAPES)


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


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@lru_cache(maxsize=32)
def _environment(templates_dir: Path | None, *, mrkdwn: bool) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = [jinja2.PackageLoader("alerts", "templates")]
    if templates_dir is not None:
        loaders.insert(0, jinja2.FileSystemLoader(templates_dir))
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(("html.j2", "htm.j2"), default=False),
        finalize=_finalize_mrkdwn if mrkdwn else None,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    environment.filters["utc"] = _utc
    return environment
