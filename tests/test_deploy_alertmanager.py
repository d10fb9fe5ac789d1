"""deploy/alertmanager/: the example routes apivigil's alerts to Slack and e-mail.

`amtool check-config` (and a broken copy it rejects), `amtool config routes test` with the
labels apivigil's Alertmanager receiver really sends, `amtool template render`, and the real
Alertmanager (Debian prometheus-alertmanager) running the example, fed by apivigil's
AlertmanagerNotifier, delivering to a Slack webhook sink and an SMTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.alertmanager import AlertmanagerNotifier, postable_alerts
from alerts.config import AlertmanagerConfig
from monitor.certmaker import write_server_files
from monitor.model import Severity
from tests.support.alertmanager_server import BINARY, WebhookSink
from tests.support.chains import Chain
from tests.support.notifications import make_alert, make_notification
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpServer
from tests.support.waiting import wait_for_200

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "deploy" / "alertmanager"
CONFIG = EXAMPLE / "alertmanager.yml"
INSTALLER = "tests/install-deploy-test-deps.sh"


def amtool(*arguments: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("amtool")
    if found is None:
        pytest.fail(f"amtool is missing: run {INSTALLER} (as root)")
    return subprocess.run(
        [found, *arguments], capture_output=True, text=True, timeout=60, check=False
    )


def finding(severity: Severity, **changes: Any) -> dict[str, Any]:
    """The alert apivigil's Alertmanager receiver posts for one finding."""
    now = datetime.now(UTC)
    alert = make_alert(severity=severity, started_at=now - timedelta(minutes=1), **changes)
    notification = make_notification(firing=(alert,), created_at=now)
    (posted,) = postable_alerts(notification, timedelta(minutes=1))
    return posted


@pytest.mark.integration
def test_amtool_check_config_passes() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize(
    ("file", "change", "replacement"),
    [
        ("alertmanager.yml", "receiver: secops-slack-and-email", "receiver: nobody"),
        ("alertmanager.yml", 'severity=~"critical|high"', 'severity=~"critical|high'),
        ("templates/apivigil.tmpl", "{{ end }}", "{{ end"),
    ],
)
def test_amtool_check_config_catches_a_broken_copy(
    file: str, change: str, replacement: str, tmp_path: Path
) -> None:
    copy = tmp_path / "alertmanager"
    shutil.copytree(EXAMPLE, copy)
    target = copy / file
    assert change in target.read_text()
    target.write_text(target.read_text().replace(change, replacement, 1))
    assert amtool("check-config", str(copy / "alertmanager.yml")).returncode != 0


def receivers_for(labels: dict[str, str]) -> str:
    matchers = [f"{name}={json.dumps(value)}" for name, value in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *matchers)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.integration
@pytest.mark.parametrize(
    ("severity", "receiver"),
    [
        (Severity.CRITICAL, "secops-slack-and-email"),
        (Severity.HIGH, "secops-slack-and-email"),
        (Severity.MEDIUM, "secops-slack"),
        (Severity.LOW, "secops-slack"),
        (Severity.INFO, "blackhole"),
    ],
)
def test_findings_posted_by_apivigil_are_routed_by_severity(
    severity: Severity, receiver: str
) -> None:
    assert receivers_for(finding(severity)["labels"]) == receiver


@pytest.mark.integration
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "ApivigilDown", "severity": "critical"}, "secops-slack-and-email"),
        ({"alertname": "ApivigilCertificateExpiring", "severity": "warning"}, "secops-slack"),
    ],
)
def test_prometheus_rule_alerts_are_routed(labels: dict[str, str], receiver: str) -> None:
    rules = (REPO / "deploy" / "prometheus").rglob("*rules*.yml")
    alert_names = {
        rule.get("alert")
        for path in rules
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", [])
        for rule in group["rules"]
    }
    if alert_names - {None}:  # the rules file of deploy/prometheus/, when it is there
        assert labels["alertname"] in alert_names
    assert receivers_for(labels) == receiver


@pytest.mark.integration
def test_template_renders_a_finding(tmp_path: Path) -> None:
    posted = finding(
        Severity.CRITICAL, rule_id="CERT-EXPIRED", check="cert_expiry", title="Certificate expired"
    )
    data = {
        "receiver": "secops-slack",
        "status": "firing",
        "alerts": [{"status": "firing", "fingerprint": "0", "generatorURL": "", **posted}],
        "groupLabels": {"target": "payments"},
        "commonLabels": posted["labels"],
        "commonAnnotations": posted["annotations"],
        "externalURL": "http://127.0.0.1:9093",
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    result = amtool(
        "template",
        "render",
        f"--template.glob={EXAMPLE}/templates/*.tmpl",
        f"--template.data={tmp_path / 'data.json'}",
        "--template.text",
        '{{ template "apivigil.title" . }}\n{{ template "apivigil.text" . }}',
    )
    assert result.returncode == 0, result.stderr
    title, *text = result.stdout.splitlines()
    assert title == "[FIRING:1] critical payments: cert_expiry"
    body = "\n".join(text)
    for expected in (
        "*CERT-EXPIRED* Certificate expired",
        "evidence: ",
        "fix: Disable TLS 1.0",
        "controls: NIST SP 800-53 SC-8",
    ):
        assert expected in body


@pytest.mark.e2e
def test_the_real_alertmanager_delivers_the_example_to_slack_and_email(
    tmp_path: Path, chain: Chain
) -> None:
    # Given the example, with its Slack URL, SMTP server and secrets pointed at 127.0.0.1
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run {INSTALLER} (as root)")
    copy = tmp_path / "alertmanager"
    shutil.copytree(EXAMPLE, copy)
    cert, key = write_server_files(
        tmp_path / "tls", "smtp", chain.leaf("localhost"), chain.intermediate
    )
    with WebhookSink() as slack, SmtpServer(cert, key, security=None) as smtp:
        config = yaml.safe_load(CONFIG.read_text())
        (copy / "slack_webhook").write_text(slack.url + "\n")
        (copy / "smtp_password").write_text("unused-without-auth\n")
        config["global"] |= {
            "slack_api_url_file": str(copy / "slack_webhook"),
            "smtp_auth_password_file": str(copy / "smtp_password"),
            "smtp_smarthost": f"127.0.0.1:{smtp.port}",
            "smtp_require_tls": False,  # the test server speaks plain SMTP on loopback
        }
        config["route"] |= {"group_wait": "0s", "group_interval": "1s"}
        (copy / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        log = tmp_path / "alertmanager.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    str(BINARY),
                    f"--config.file={copy / 'alertmanager.yml'}",
                    f"--storage.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_200(f"http://127.0.0.1:{port}/-/ready", process, log.read_text, 20)
            # When apivigil's Alertmanager receiver posts a critical and a medium finding
            notifier = AlertmanagerNotifier(
                "am", AlertmanagerConfig(url=f"http://127.0.0.1:{port}")
            )
            now = datetime.now(UTC)
            critical = make_alert(
                1,
                severity=Severity.CRITICAL,
                rule_id="CERT-EXPIRED",
                check="cert_expiry",
                title="Certificate expired",
                started_at=now,
            )
            medium = make_alert(2, severity=Severity.MEDIUM, target="billing", started_at=now)
            try:
                for alert in (critical, medium):
                    group = {"target": alert.target}
                    notifier.send(
                        make_notification(firing=(alert,), created_at=now, group_labels=group)
                    )
            finally:
                notifier.close()
            # Then Slack gets both, rendered by the example's template
            posted = slack.wait_for(lambda p: "CERT-EXPIRED" in json.dumps(p), timeout=20)
            (attachment,) = posted["attachments"]
            assert attachment["title"] == "[FIRING:1] critical payments: cert_expiry"
            assert "*CERT-EXPIRED* Certificate expired" in attachment["text"]
            assert posted["channel"] == "#secops-alerts"
            slack.wait_for(lambda p: "TLS-PROTOCOL-TLS10" in json.dumps(p), timeout=20)
            # and e-mail only the critical one
            mail = wait_for_mail(smtp, 20)
            assert mail.rcpt_to == ("secops@example.com",)
            assert mail.message["Subject"] == "[FIRING:1] critical payments: cert_expiry"
            time.sleep(2)  # the medium finding's group has been sent to Slack: no mail follows
            assert len(smtp.received) == 1
        finally:
            process.terminate()
            process.wait(timeout=10)


def wait_for_mail(smtp: SmtpServer, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if smtp.received:
            return smtp.received[0]
        time.sleep(0.1)
    raise AssertionError("no e-mail arrived")
