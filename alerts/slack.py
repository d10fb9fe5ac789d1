"""Slack incoming webhooks: one Block Kit message per notification.

The message: a header (the notification title), a fields section (severity, kind, counts,
group, targets, route), the note, one mrkdwn section per firing alert (rendered from
`slack_finding.md.j2`, worst severity first), resolved alerts summarised in one section, and a
context block with the dedup key, the group key and the fingerprints; `text` is the fallback
for notifications and clients without Block Kit.

Slack's documented limits hold for any group size: at most 50 blocks, a header of at most 150
characters, section text of at most 3,000, at most 10 fields of at most 2,000 each, at most 10
context elements. Long values are cut (marked with `…`); alerts beyond the block budget are
left out and counted in a final `…and N more` section, and a warning is logged.

The webhook URL is a secret: it appears in no error message and no log line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import structlog

from alerts.config import SlackConfig
from alerts.interface import NotifierError, TemplateFailed
from alerts.model import Alert, Notification, NotificationKind
from alerts.templates import TemplateError, mrkdwn_escape, render
from alerts.transport import SharedClient, post_json
from monitor.text import printable

log = structlog.get_logger("apivigil.alerts")

MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_TEXT_CHARS = 3000  # section text, and any text object (context elements)
MAX_FIELD_CHARS = 2000
FINDING_TEMPLATE = "slack_finding.md.j2"

# Per-value budgets (escaped characters): with the built-in template a finding stays under
# MAX_TEXT_CHARS; a longer user template is still cut at MAX_TEXT_CHARS.
_TITLE_BUDGET, _SUBJECT_BUDGET, _NAME_BUDGET = 150, 200, 80  # name: target, rule id, fingerprint
_EVIDENCE_BUDGET, _REMEDIATION_BUDGET = 1200, 500
_CONTROLS_SHOWN, _CONTROL_BUDGET = 6, 60
_FALLBACK_ALERTS = 5
_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    payload: Mapping[str, object]
    omitted_alerts: int  # firing alerts left out to stay within MAX_BLOCKS


class SlackNotifier:
    def __init__(self, name: str, config: SlackConfig, templates_dir: Path | None = None) -> None:
        self.name = name
        self._config = config
        self._templates_dir = templates_dir
        self._http = SharedClient()

    def close(self) -> None:
        self._http.close()

    def send(self, notification: Notification) -> None:
        """POST the notification to the webhook. Raises NotifierError: permanent for Slack's
        400/403/404/410 answers and a broken template, with `retry_after` for 429."""
        try:
            message = slack_message(notification, self._templates_dir)
        except TemplateError as error:
            raise TemplateFailed(f"slack {self.name}: {error}", error.name) from None
        if message.omitted_alerts:
            log.warning(
                "slack message truncated",
                receiver=self.name,
                dedup_key=notification.dedup_key,
                firing=len(notification.firing),
                omitted=message.omitted_alerts,
            )
        assert self._config.webhook_url is not None  # the config resolves webhook_url_file
        url = self._config.webhook_url.get_secret_value()
        try:
            post_json(
                url,
                message.payload,
                timeout=self._config.timeout.total_seconds(),
                what=f"slack {self.name}",
                client=self._http,
            )
        except NotifierError as error:
            raise NotifierError(
                _without_secret(error.message, url),
                permanent=error.permanent,
                retry_after=error.retry_after,
            ) from None


def slack_message(notification: Notification, templates_dir: Path | None = None) -> SlackMessage:
    """The Block Kit payload for `notification`, within Slack's limits. Raises TemplateError."""
    head: list[dict[str, object]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(printable(notification.title), MAX_HEADER_CHARS),
                "emoji": True,
            },
        },
        {"type": "section", "fields": _fields(notification)},
    ]
    if note := _note(notification):
        head.append(_section(note))
    tail: list[dict[str, object]] = []
    if notification.resolved:
        tail.append(_section(_resolved_summary(notification.resolved)))
    tail.append({"type": "context", "elements": _context(notification)})

    firing = sorted(notification.firing, key=lambda a: (-a.severity.rank, a.started_at))
    room = MAX_BLOCKS - len(head) - len(tail)
    shown = firing if len(firing) <= room else firing[: room - 1]
    middle = [_section(_finding(alert, templates_dir)) for alert in shown]
    omitted = len(firing) - len(shown)
    if omitted:
        middle.append(_section(f"{_ELLIPSIS}and {omitted} more firing alert(s) not shown here"))
    payload = {"text": _fallback_text(notification, firing), "blocks": head + middle + tail}
    return SlackMessage(payload=payload, omitted_alerts=omitted)


def _fields(notification: Notification) -> list[dict[str, str]]:
    alerts = notification.firing + notification.resolved
    group = ", ".join(f"{k}={v}" for k, v in notification.group_labels.items())
    targets = ", ".join(sorted({alert.target for alert in alerts}))
    values = [
        ("Severity", notification.severity.value),
        ("Kind", notification.kind.value),
        ("Firing", str(len(notification.firing))),
        ("Resolved", str(len(notification.resolved))),
        ("Group", group or notification.route),
        ("Targets", targets or "none"),
        ("Route", f"{notification.route} → {notification.receiver}"),
    ]
    return [
        {
            "type": "mrkdwn",
            "text": _cut_mrkdwn(f"*{label}*\n{mrkdwn_escape(value)}", MAX_FIELD_CHARS),
        }
        for label, value in values
    ]


def _note(notification: Notification) -> str:
    lines = []
    if notification.kind is NotificationKind.TEST:
        lines.append("A test notification from apivigil: this receiver works.")
    if notification.note:
        lines.append(f"*Note:* {mrkdwn_escape(notification.note)}")
    if notification.external_url:
        lines.append(f"<{mrkdwn_escape(notification.external_url)}|Open in apivigil>")
    return "\n".join(lines)


def _finding(alert: Alert, templates_dir: Path | None) -> str:
    controls = tuple(_fit(control, _CONTROL_BUDGET) for control in alert.controls[:_CONTROLS_SHOWN])
    if len(alert.controls) > _CONTROLS_SHOWN:
        controls += (f"+{len(alert.controls) - _CONTROLS_SHOWN} more",)
    shortened = replace(
        alert,
        fingerprint=_fit(alert.fingerprint, _NAME_BUDGET),
        target=_fit(alert.target, _NAME_BUDGET),
        rule_id=_fit(alert.rule_id, _NAME_BUDGET),
        title=_fit(alert.title, _TITLE_BUDGET),
        subject=_fit(alert.subject, _SUBJECT_BUDGET),
        evidence=_fit(alert.evidence, _EVIDENCE_BUDGET),
        remediation=_fit(alert.remediation, _REMEDIATION_BUDGET),
        controls=controls,
    )
    return render(FINDING_TEMPLATE, templates_dir, alert=shortened)


def _alert_line(alert: Alert) -> str:
    title = mrkdwn_escape(_fit(alert.title, _TITLE_BUDGET))
    return f"[{alert.severity.value}] {title} on {mrkdwn_escape(_fit(alert.target, _NAME_BUDGET))}"


def _resolved_summary(resolved: Sequence[Alert]) -> str:
    lines = [f"• {_alert_line(alert)}" for alert in resolved]
    return _joined(f"*Resolved ({len(resolved)})*", lines)


def _context(notification: Notification) -> list[dict[str, str]]:
    texts = [
        f"dedup key `{mrkdwn_escape(notification.dedup_key)}`",
        f"group key `{mrkdwn_escape(notification.group_key)}`",
    ]
    if alerts := notification.firing + notification.resolved:
        fingerprints = [f"`{mrkdwn_escape(_fit(a.fingerprint, _NAME_BUDGET))}`" for a in alerts]
        texts.append(_joined("fingerprints:", fingerprints, separator=" "))
    return [{"type": "mrkdwn", "text": _cut_mrkdwn(text, MAX_TEXT_CHARS)} for text in texts]


def _fallback_text(notification: Notification, firing: Sequence[Alert]) -> str:
    lines = [f"• {_alert_line(alert)}" for alert in firing]
    title = mrkdwn_escape(_fit(notification.title, 500))
    return _joined(title, lines, max_items=_FALLBACK_ALERTS)


def _joined(
    first: str, items: Sequence[str], *, separator: str = "\n", max_items: int | None = None
) -> str:
    """`first`, then as many `items` as fit in MAX_TEXT_CHARS, then `…and N more`."""
    room = MAX_TEXT_CHARS - 40  # for the `…and N more` line
    text = first
    for count, item in enumerate(items):
        if count == max_items or len(text) + len(separator) + len(item) > room:
            return f"{text}{separator}{_ELLIPSIS}and {len(items) - count} more"
        text += separator + item
    return text


def _section(text: str) -> dict[str, object]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _cut_mrkdwn(text, MAX_TEXT_CHARS)},
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + _ELLIPSIS


def _cut_mrkdwn(text: str, limit: int) -> str:
    """Cut escaped mrkdwn without splitting an entity and with code blocks closed."""
    if len(text) <= limit:
        return text
    text = text[: limit - 4]
    entity = text.rfind("&")
    if entity != -1 and ";" not in text[entity:]:
        text = text[:entity]
    fence = "```" if text.count("```") % 2 else ""
    return text + _ELLIPSIS + fence


def _fit(value: str, budget: int) -> str:
    """The longest prefix of `value` whose mrkdwn escape is within `budget` (`…` marks a cut)."""
    if len(mrkdwn_escape(value)) <= budget:
        return value
    used = 0
    for index, char in enumerate(value):
        used += len(mrkdwn_escape(char))
        if used > budget - 1:
            return value[:index] + _ELLIPSIS
    return value


def _without_secret(message: str, url: str) -> str:
    path = urlsplit(url).path
    message = message.replace(url, "<webhook URL>")
    return message.replace(path, "<path>") if len(path) > 1 else message
