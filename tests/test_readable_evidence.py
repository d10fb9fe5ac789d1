"""Evidence people read has no Python reprs: sslyze writes set reprs into its Mozilla-profile
messages (`TLS curves {'sect163k1'} are supported`); the finding says `sect163k1` in the
terminal, the reports, Slack and e-mail, also for facts stored before that was so."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sslyze.mozilla_tls_profile.tls_config_checker import (
    MozillaTlsConfiguration,
    TlsConfigurationEnum,
    _check_tls_curves,
)
from sslyze.plugins.elliptic_curves_plugin import (
    EllipticCurve,
    SupportedEllipticCurvesScanResult,
)

from alerts.config import SlackConfig
from alerts.slack import SlackNotifier
from alerts.templates import render
from checks.tls_posture.rules import findings
from monitor.display import HumanConsole
from monitor.model import CheckKind, CheckOutput, CheckRun, RunStatus
from monitor.render import print_findings
from monitor.report.build import build_report_data
from monitor.report.formats import ReportFormat
from monitor.report.model import Expectation, ReportPeriod
from monitor.report.render import render_report
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from monitor.text import without_collection_reprs
from tests.support.notifications import make_alert, make_notification
from tests.support.slack_fake import SlackWebhookFake
from tests.support.tls_facts import clean

pytestmark = pytest.mark.integration

REPR = re.compile(r"\{'|\['|set\(\)")


def sslyze_curve_message() -> str:
    """What sslyze itself writes for a server offering curves the profile rejects."""
    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum("intermediate"))
    offered = SupportedEllipticCurvesScanResult(
        supports_ecdh_key_exchange=True,
        supported_curves=[EllipticCurve("sect163k1", 721), EllipticCurve("sect233k1", 726)],
        rejected_curves=[],
    )
    return _check_tls_curves(offered, profile)["tls_curves"]


def test_sslyze_set_reprs_become_words_sets_sorted_lists_in_order() -> None:
    message = sslyze_curve_message()
    assert "{'sect" in message  # the library's own text, so this test proves the translation

    assert without_collection_reprs(message) == (
        "TLS curves sect163k1, sect233k1 are supported, but should be rejected."
    )
    assert without_collection_reprs("one of ['b', 'a'] or ('c',); none: set()") == (
        "one of b, a or c; none: none"
    )
    assert without_collection_reprs('JSON {"a": 1} and {x} stay') == 'JSON {"a": 1} and {x} stay'


def test_a_mozilla_profile_finding_reads_as_words_in_terminal_reports_slack_and_e_mail(
    sqlite_url: str,
) -> None:
    # Given tls_posture facts holding sslyze's message as stored before it was translated
    facts = replace(clean(), mozilla_deviations=(f"tls_curves: {sslyze_curve_message()}",))
    (finding,) = [f for f in findings(facts, 0) if f.rule_id == "TLS-MOZILLA-PROFILE"]
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    now = datetime.now(UTC)
    output = CheckOutput(findings=(finding,))
    run = CheckRun(
        "run-1", CheckKind.TLS_POSTURE, "payments", now, now, RunStatus.OK, output=output
    )
    store.record(run, HysteresisPolicy(open_after=1, resolve_after=1))

    # When it is shown in the terminal, the reports, Slack and e-mail
    (stored,) = store.findings(FindingQuery(target="payments"))
    terminal = io.StringIO()
    print_findings(HumanConsole(file=terminal, width=250, soft_wrap=False), [stored])
    period = ReportPeriod.ending(now + timedelta(minutes=1), timedelta(days=1))
    hourly = Expectation(CheckKind.TLS_POSTURE, "payments", timedelta(hours=1))
    data = build_report_data(store, period, [hourly])
    store.close()
    reports = [render_report(data, f) for f in (ReportFormat.MD, ReportFormat.HTML)]
    alert = make_alert(1, title=stored.title, evidence=stored.evidence)
    sent = make_notification((alert,))
    with SlackWebhookFake() as slack:
        config = SlackConfig(webhook_url=slack.webhook_url, timeout=timedelta(seconds=5))
        SlackNotifier("secops-slack", config, None).send(sent)
        [payload] = slack.payloads
    mails = [
        render(n, None, notification=sent) for n in ("email_body.txt.j2", "email_body.html.j2")
    ]

    # Then each says which curves, as words, and none shows a Python set
    assert stored.evidence == (
        "tls_curves: TLS curves sect163k1, sect233k1 are supported, but should be rejected."
    )
    assert "Mozilla intermediate profile" in terminal.getvalue()  # the table shows no evidence
    assert not REPR.search(terminal.getvalue())
    outputs = {
        "markdown": reports[0],
        "html": reports[1],
        "slack": json.dumps(payload, ensure_ascii=False),
        "e-mail text": mails[0],
        "e-mail html": mails[1],
    }
    for channel, text in outputs.items():
        assert "sect163k1, sect233k1" in text, channel
        assert not REPR.search(text.replace("&#39;", "'")), (channel, REPR.search(text))
