"""Remote-controlled text reaches people harmless: terminal escapes, bidi overrides and
links in access-log paths, certificate names and finding titles are shown as visible
escapes in `apivigil findings` / `apivigil scan` and as plain text in the reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cmarkgfm
import pytest
import structlog

from alerts.config import GrafanaConfig, SlackConfig
from alerts.grafana_annotations import grafana_annotation
from alerts.slack import SlackNotifier
from alerts.templates import render
from monitor.certmaker import issue
from monitor.logs import configure_logging
from monitor.model import CheckKind, CheckOutput, CheckRun, Finding, RunStatus, Severity
from monitor.report.build import build_report_data
from monitor.report.formats import ReportFormat
from monitor.report.model import ReportPeriod
from monitor.report.render import render_report
from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from monitor.text import markdown_escaped, printable
from tests.support.chains import Chain, ServeFactory
from tests.support.daemon_process import run_cli, write_config
from tests.support.http_servers import ScriptedHttpServer
from tests.support.inventory_api import V1, Api, combined, ok
from tests.support.notifications import make_alert, make_notification
from tests.support.slack_fake import SlackWebhookFake

pytestmark = pytest.mark.hostile_peer

# a CSI colour, an OSC 8 hyperlink, a window-title OSC, BEL, a C1 CSI, a bidi override,
# a zero-width space and a line separator
HOSTILE = (
    "\x1b[31mred\x1b[0m \x1b]8;;http://evil.test/\x1b\\click\x1b]8;;\x1b\\ "
    "\x1b]0;pwned\x07 \x9b2J \u202egpj.exe \u200b \u2028 [link=http://evil.test/]x[/]"
)
SHORT = "\x1b[31mred\x1b]8;;http://e.test/\x1b\\x\u202egpj.exe"  # fits a CN (64) and a table cell
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u200b", "\u2028")


def assert_harmless(output: str) -> None:
    for raw in RAW:
        assert raw not in output, f"{raw!r} reached the output"
    assert "\\x1b[31m" in output
    assert "\\u202e" in output


@pytest.mark.unit
def test_printable_shows_controls_bidi_and_zero_width_characters_as_escapes() -> None:
    assert printable("a\x1b[2Jb\u202ec\u200bd\x00e\x7ff\x85g\n") == (
        "a\\x1b[2Jb\\u202ec\\u200bd\\x00e\\x7ff\\x85g\\x0a"
    )
    assert printable("line\nnext", keep_newlines=True) == "line\nnext"
    assert printable("plain ünïcode — ok") == "plain ünïcode — ok"


@pytest.mark.e2e
def test_an_access_log_path_with_escapes_reaches_the_findings_table_as_visible_text(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Given an access log whose undocumented path carries terminal escapes and a bidi override
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    with ScriptedHttpServer() as web:
        api = Api(store, web, tmp_path / "access.log")
        api.run()
        path = "/" + SHORT
        with api.log.open("a") as log:
            log.write(combined("GET", path, 200, api.clock.now()))
        api.run()
    store.close()

    # When `apivigil findings` lists the shadow endpoint it found
    listed = run_cli("findings", "--store", sqlite_url)
    as_json = run_cli("findings", "--store", sqlite_url, "--format", "json")

    # Then the table shows the escapes as text; JSON keeps the data as it was
    assert listed.returncode == 0, listed.stderr
    assert "INVENTORY-SHADOW-ENDPOINT" in listed.stdout
    assert_harmless(listed.stdout + listed.stderr)
    titles = [f["title"] for f in json.loads(as_json.stdout)]
    assert any("\x1b[31m" in title and "\u202e" in title for title in titles)


@pytest.mark.e2e
def test_a_certificate_name_with_escapes_is_shown_as_visible_text_by_scan(
    serve: ServeFactory, chain: Chain
) -> None:
    # Given a server whose expiring certificate's common name is hostile
    now = datetime.now(UTC)
    leaf = issue(
        SHORT,
        chain.intermediate,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=2),
        hosts=("127.0.0.1",),
    )
    server = serve(leaf)

    # When it is scanned, as a table and as JSON
    table = run_cli("scan", server.url, "--check", "cert_expiry")
    as_json = run_cli("scan", server.url, "--check", "cert_expiry", "--format", "json")

    # Then the table names the certificate with visible escapes
    assert "CERT-EXPIRES-SOON" in table.stdout, table.stdout + table.stderr
    assert_harmless(table.stdout + table.stderr)
    (run,) = json.loads(as_json.stdout)["runs"]
    assert any("\u202e" in f["subject"] for f in run["findings"])


def hostile_finding() -> Finding:
    return Finding(
        rule_id="INVENTORY-SHADOW-ENDPOINT",
        severity=Severity.HIGH,
        title=f"[click](http://evil.test/) <a href='http://evil.test/'>a</a> {HOSTILE}",
        subject="see www.evil.test, http://evil.test/x or mail@evil.test &#x202e; | cell",
        evidence="![img](http://evil.test/pixel.png) `code` <script>x</script>",
        remediation="[ref]: http://evil.test/",
    )


@pytest.mark.unit
def test_markdown_escaping_leaves_no_link_html_or_entity_for_github_markdown() -> None:
    finding = hostile_finding()
    for text in (finding.title, finding.subject, finding.evidence, finding.remediation):
        html = cmarkgfm.github_flavored_markdown_to_html(markdown_escaped(printable(text)))
        assert "<a " not in html
        assert "<img" not in html
        assert "<script" not in html
        assert "\u202e" not in html


@pytest.mark.unit
def test_reports_show_a_hostile_finding_as_text(sqlite_url: str) -> None:
    # Given a stored open finding whose title is a Markdown link and carries escapes
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    now = datetime.now(UTC)
    output = CheckOutput(findings=(hostile_finding(),))
    run = CheckRun("run-1", CheckKind.API_INVENTORY, HOSTILE, now, now, RunStatus.OK, output=output)
    store.record(run, HysteresisPolicy(open_after=1, resolve_after=1))
    period = ReportPeriod.ending(now + timedelta(minutes=1), timedelta(days=1))
    data = build_report_data(store, period, [])
    store.close()

    # When the Markdown and HTML reports are rendered
    markdown = render_report(data, ReportFormat.MD)
    html = render_report(data, ReportFormat.HTML)

    # Then neither has a link to the attacker or a raw control or bidi character
    rendered = cmarkgfm.github_flavored_markdown_to_html(markdown)
    assert "evil.test" in rendered
    assert 'href="http://evil.test' not in rendered
    assert "<img" not in rendered
    assert "<script" not in rendered
    assert "href='http://evil.test" not in html
    assert 'href="http://evil.test' not in html
    for raw in RAW:
        assert raw not in markdown
        assert raw not in html
        assert raw not in rendered
    assert "\\u202e" in markdown
    assert "\\u202e" in html


@pytest.mark.unit
def test_console_log_lines_show_escapes_from_targets_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # configure_logging binds the stderr of the moment (capsys's, closed after this test):
    # the configuration of before comes back, or later tests log into a closed file
    before = structlog.get_config()
    configure_logging("info", "console")
    try:
        structlog.get_logger().warning("check failed", error=HOSTILE, target=SHORT)
    finally:
        structlog.configure(**before)
    logged = capsys.readouterr().err
    assert "check failed" in logged
    assert_harmless(logged)


@pytest.mark.e2e
def test_spec_paths_with_markup_and_escapes_neither_break_nor_reach_the_inventory_cli(
    tmp_path: Path, sqlite_url: str
) -> None:
    # Given a spec whose new operation's path holds rich markup that does not parse, a
    # link and terminal escapes
    hostile = "/items[/x][link=http://evil.test/]y" + SHORT
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    with ScriptedHttpServer() as web:
        api = Api(store, web, tmp_path / "access.log")
        api.run()
        api.publish({**V1, hostile: {"get": ok()}})
        api.run()
        config = write_config(
            tmp_path / "apivigil.yaml",
            {
                "store": sqlite_url,
                "targets": [
                    {
                        "name": "shop",
                        "url": web.url,
                        "checks": {"api_inventory": {"spec_path": "/openapi.json"}},
                    }
                ],
            },
        )
    store.close()

    # When the operations and the changes are listed
    shown = run_cli("inventory", "show", "shop", "--config", str(config))
    diff = run_cli("inventory", "diff", "shop", "--config", str(config))

    # Then both list the path as text
    for listed in (shown, diff):
        assert listed.returncode == 0, listed.stderr
        assert "/items[/x][link=http://evil.test/]y" in listed.stdout
        assert_harmless(listed.stdout + listed.stderr)


@pytest.mark.integration
def test_slack_e_mail_and_grafana_notifications_show_a_hostile_finding_as_text() -> None:
    # Given a finding whose title and evidence a scanned server chose
    hostile = make_alert(1, title=f"TLS {HOSTILE}", evidence=f"served {HOSTILE}")
    sent = make_notification((hostile,), group_labels={"subject": HOSTILE})

    # When it goes to Slack (a local fake of the webhook) and is rendered as an e-mail
    with SlackWebhookFake() as slack:
        config = SlackConfig(webhook_url=slack.webhook_url, timeout=timedelta(seconds=5))
        SlackNotifier("secops-slack", config, None).send(sent)
        [payload] = slack.payloads
    mails = [
        render(name, None, notification=sent)
        for name in ("email_subject.txt.j2", "email_body.txt.j2", "email_body.html.j2")
    ]
    grafana = GrafanaConfig.model_validate({"url": "http://127.0.0.1:3000", "token": "t"})
    annotation = grafana_annotation(sent, grafana).text

    # Then no control, bidi or zero-width character arrives raw, yet the text is still there
    for output in (json.dumps(payload, ensure_ascii=False), *mails, annotation):
        assert_harmless(output)
        assert "\\x1b" in output
