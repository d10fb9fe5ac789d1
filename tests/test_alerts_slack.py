"""Slack notifications against a local webhook that enforces Slack's documented contract, and
the message templates (built-in, overridden, broken) they and the e-mails are rendered from."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from alerts.config import SlackConfig
from alerts.interface import NotifierError
from alerts.model import AlertState, NotificationKind
from alerts.slack import SlackNotifier
from alerts.templates import TemplateError, render
from alerts.transport import post_json
from monitor.model import Severity
from tests.support.notifications import make_alert, make_notification
from tests.support.slack_fake import SlackWebhookFake

alert = make_alert
notification = make_notification


@pytest.fixture
def slack() -> Iterator[SlackWebhookFake]:
    fake = SlackWebhookFake()
    with fake:
        yield fake


def notifier_for(url: str, templates_dir: Path | None = None) -> SlackNotifier:
    config = SlackConfig(webhook_url=url, timeout=timedelta(seconds=5))
    return SlackNotifier("secops-slack", config, templates_dir)


def blocks_of(payload: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [block for block in payload["blocks"] if block["type"] == kind]


@pytest.mark.integration
def test_a_firing_notification_arrives_as_block_kit_with_a_text_fallback(
    slack: SlackWebhookFake,
) -> None:
    high = alert(1)
    critical = alert(
        2,
        severity=Severity.CRITICAL,
        title="Certificate expired",
        rule_id="CERT-EXPIRED",
        controls=("NIST SP 800-53 SC-17",),
    )
    sent = notification(
        (high, critical), note="silence s-12 expired", external_url="https://vigil.example/x"
    )

    notifier_for(slack.webhook_url).send(sent)

    assert slack.rejected == []
    [payload] = slack.payloads
    assert [block["type"] for block in payload["blocks"]] == [
        "header",
        "section",  # fields
        "section",  # note and link
        "section",  # critical first
        "section",
        "context",
    ]
    assert payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": sent.title,
        "emoji": True,
    }
    fields = [field["text"] for field in payload["blocks"][1]["fields"]]
    assert "*Severity*\ncritical" in fields
    assert "*Kind*\nfiring" in fields
    assert "*Firing*\n2" in fields
    assert "*Group*\ntarget=payments" in fields
    note = payload["blocks"][2]["text"]["text"]
    assert "silence s-12 expired" in note
    assert "<https://vigil.example/x|" in note
    first, second = (block["text"]["text"] for block in payload["blocks"][3:5])
    assert "*Certificate expired*" in first
    assert "NIST SP 800-53 SC-17" in first
    assert "*TLS 1.0 is enabled*" in second
    assert "payments.example.com:443" in second
    assert "the server accepted a TLS 1.0 handshake" in second
    assert "Disable TLS 1.0" in second
    assert "PCI DSS 4.2.1" in second
    context = " ".join(element["text"] for element in payload["blocks"][5]["elements"])
    assert "dk-3f9a1c" in context
    assert "fp-00001" in context
    assert "fp-00002" in context
    assert payload["text"].startswith(sent.title)
    assert "Certificate expired" in payload["text"]


@pytest.mark.integration
def test_5000_findings_with_10_kb_evidence_stay_within_every_slack_limit(
    slack: SlackWebhookFake,
) -> None:
    evidence = ("<!channel> cipher & protocol list " * 400)[:10_240]
    controls = tuple(f"Control {n} " + "x" * 200 for n in range(12))
    firing = tuple(
        alert(n, evidence=evidence, title="T" * 400, subject="S" * 5000, controls=controls)
        for n in range(5000)
    )
    big = notification(firing, group_labels={"target": "payments-" + "p" * 3000})

    with capture_logs() as logs:
        notifier_for(slack.webhook_url).send(big)

    assert slack.rejected == []
    [payload] = slack.payloads
    assert len(payload["blocks"]) == 50
    sections = blocks_of(payload, "section")
    assert sections[-1]["text"]["text"].startswith("…and 4954 more")
    assert len(payload["text"]) <= 3000
    assert "<!channel>" not in json.dumps(payload)
    [warning] = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warning["omitted"] == 4954
    assert SlackWebhookFake.SECRET_PATH not in json.dumps(logs, default=str)


@pytest.mark.integration
def test_values_taken_from_a_scanned_server_cannot_mention_or_link(
    slack: SlackWebhookFake,
) -> None:
    hostile = alert(evidence="Server: <!channel> <https://evil.example|login> & co")

    notifier_for(slack.webhook_url).send(notification((hostile,)))

    finding = blocks_of(slack.payloads[0], "section")[1]["text"]["text"]
    assert "Server: &lt;!channel&gt; &lt;https://evil.example|login&gt; &amp; co" in finding


@pytest.mark.integration
def test_resolved_alerts_are_summarised_in_one_section(slack: SlackWebhookFake) -> None:
    resolved = tuple(alert(n, state=AlertState.RESOLVED, title=f"Finding {n}") for n in range(3))

    notifier_for(slack.webhook_url).send(
        notification(resolved=resolved, kind=NotificationKind.RESOLVED)
    )

    [payload] = slack.payloads
    texts = [block["text"]["text"] for block in blocks_of(payload, "section") if "text" in block]
    assert texts == [
        "*Resolved (3)*\n"
        "• [high] Finding 0 on payments\n"
        "• [high] Finding 1 on payments\n"
        "• [high] Finding 2 on payments"
    ]
    assert payload["blocks"][0]["text"]["text"] == "[RESOLVED 3] payments"


@pytest.mark.integration
def test_a_rate_limit_asks_to_retry_after_slacks_retry_after(slack: SlackWebhookFake) -> None:
    slack.answer_next(429, "rate_limited", {"Retry-After": "17"})

    with pytest.raises(NotifierError) as caught:
        notifier_for(slack.webhook_url).send(notification((alert(),)))

    assert caught.value.retry_after == 17
    assert not caught.value.permanent


@pytest.mark.integration
@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "invalid_blocks"),
        (403, "invalid_token"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
def test_refused_payloads_and_dead_webhooks_fail_for_good(
    slack: SlackWebhookFake, status: int, error: str
) -> None:
    slack.answer_next(status, error)

    with pytest.raises(NotifierError) as caught:
        notifier_for(slack.webhook_url).send(notification((alert(),)))

    assert caught.value.permanent
    assert f"HTTP {status}" in str(caught.value)
    assert error in str(caught.value)
    assert SlackWebhookFake.SECRET_PATH not in str(caught.value)


@pytest.mark.integration
def test_a_slack_server_error_can_be_retried(slack: SlackWebhookFake) -> None:
    slack.answer_next(500, "rollup_error")

    with pytest.raises(NotifierError) as caught:
        notifier_for(slack.webhook_url).send(notification((alert(),)))

    assert not caught.value.permanent
    assert SlackWebhookFake.SECRET_PATH not in str(caught.value)


@pytest.mark.integration
def test_an_unreachable_webhook_can_be_retried_and_its_url_stays_secret() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SlackWebhookFake.SECRET_PATH}"

    with pytest.raises(NotifierError) as caught:
        notifier_for(url).send(notification((alert(),)))

    assert not caught.value.permanent
    assert "T0APIVIGIL" not in str(caught.value)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("blocks", "why"),
    [
        ([{"type": "divider"}] * 51, "51 blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "header"),
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}], "3001"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}], "11 fields"),
        ([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}], "2001"),
        ([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}], "11 context"),
    ],
)
def test_the_fake_refuses_what_slack_refuses(
    slack: SlackWebhookFake, blocks: list[dict[str, Any]], why: str
) -> None:
    with pytest.raises(NotifierError) as caught:
        post_json(slack.webhook_url, {"text": "t", "blocks": blocks}, timeout=5)

    assert caught.value.permanent
    [rejection] = slack.rejected
    assert rejection.startswith("invalid_blocks")
    assert why in rejection


@pytest.mark.integration
def test_a_finding_template_in_templates_dir_overrides_the_built_in_one(
    slack: SlackWebhookFake, tmp_path: Path
) -> None:
    (tmp_path / "slack_finding.md.j2").write_text("custom: {{ alert.title }} <{{ alert.target }}>")

    notifier_for(slack.webhook_url, tmp_path).send(notification((alert(target="a<b"),)))

    finding = blocks_of(slack.payloads[0], "section")[1]["text"]["text"]
    assert finding == "custom: TLS 1.0 is enabled <a&lt;b>"


@pytest.mark.integration
def test_a_broken_template_fails_for_good_naming_the_template(
    slack: SlackWebhookFake, tmp_path: Path
) -> None:
    (tmp_path / "slack_finding.md.j2").write_text("{{ alert.no_such_field }}")

    with pytest.raises(NotifierError) as caught:
        notifier_for(slack.webhook_url, tmp_path).send(notification((alert(),)))

    assert caught.value.permanent
    assert "slack_finding.md.j2" in str(caught.value)
    assert "no_such_field" in str(caught.value)
    assert slack.payloads == []


@pytest.mark.unit
def test_the_email_templates_show_everything_a_notification_carries() -> None:
    firing = (
        alert(1, evidence="<script>alert(1)</script>"),
        alert(2, severity=Severity.CRITICAL, title="Certificate expired"),
    )
    resolved = (alert(3, state=AlertState.RESOLVED, title="Weak cipher suites"),)
    sent = notification(
        firing, resolved, note="silence s-12 expired", external_url="https://vigil.example/"
    )

    subject = render("email_subject.txt.j2", None, notification=sent)
    text = render("email_body.txt.j2", None, notification=sent)
    html = render("email_body.html.j2", None, notification=sent)

    assert subject == f"[apivigil] {sent.title}"
    for body in (text, html):
        for expected in (
            "target=payments",
            "firing",
            "TLS 1.0 is enabled",
            "Certificate expired",
            "payments.example.com:443",
            "Disable TLS 1.0",
            "NIST SP 800-53 SC-8",
            "2025-03-01 09:31 UTC",
            "Weak cipher suites",
            "silence s-12 expired",
            "https://vigil.example/",
            "dk-3f9a1c",
            "fp-00001",
            "fp-00002",
            "fp-00003",
        ):
            assert expected in body, expected
    assert "<script>alert(1)</script>" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert '<a href="https://vigil.example/">' in html


@pytest.mark.unit
def test_a_template_dir_overrides_only_the_templates_it_holds(tmp_path: Path) -> None:
    (tmp_path / "email_subject.txt.j2").write_text("ALERT {{ notification.dedup_key }}")
    sent = notification((alert(),))

    assert render("email_subject.txt.j2", tmp_path, notification=sent) == "ALERT dk-3f9a1c"
    assert "TLS 1.0 is enabled" in render("email_body.txt.j2", tmp_path, notification=sent)


@pytest.mark.unit
def test_template_errors_name_the_template_and_the_problem(tmp_path: Path) -> None:
    (tmp_path / "email_body.txt.j2").write_text("line one\n{% if %}")

    with pytest.raises(TemplateError, match=r"email_body\.txt\.j2: line 2"):
        render("email_body.txt.j2", tmp_path, notification=notification())
    with pytest.raises(TemplateError, match=r"template nope\.txt\.j2: not found in"):
        render("nope.txt.j2", tmp_path)
    with pytest.raises(TemplateError, match=r"email_subject\.txt\.j2: 'notification' is undefined"):
        render("email_subject.txt.j2", None)


@pytest.mark.integration
def test_code_spans_stay_code_spans_whatever_the_values_hold(slack: SlackWebhookFake) -> None:
    tricky = alert(1, evidence="header `Server: nginx` and ``` a fence", rule_id="TLS-X`Y")
    notifier_for(slack.webhook_url).send(notification((tricky,)))

    [payload] = slack.payloads
    (text,) = [b["text"]["text"] for b in payload["blocks"] if "fp-00001" in str(b.get("text"))]
    assert text.count("```") == 2, text  # the evidence block opens and closes once
    assert re.search(r"\*Rule:\* `[^`]+`", text), text  # a value cannot close a span
    # Slack shows no code span inside _italics_: the fingerprint's span stands outside them
    assert re.search(r"_since [^_`]+_ · fingerprint `fp-00001`", text), text
