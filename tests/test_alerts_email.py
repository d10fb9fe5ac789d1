"""EmailNotifier against a real SMTP server (aiosmtpd) with real TLS and AUTH on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from alerts.config import EmailConfig, SmtpSecurity
from alerts.email import EmailNotifier, compose
from alerts.interface import NotifierError
from alerts.model import Alert, AlertState, Notification, NotificationKind
from monitor.certmaker import issue, write_server_files
from monitor.model import Severity
from tests.support.chains import Chain
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpServer

USER, PASSWORD = "apivigil", "correct horse battery staple"
SENDER = "apivigil@example.test"
RECIPIENTS = ("oncall@example.test", "security@example.test")
BOTH_SECURITIES = pytest.mark.parametrize("security", [SmtpSecurity.STARTTLS, SmtpSecurity.TLS])
pytestmark = pytest.mark.filterwarnings(
    # aiosmtpd's warning for the implicit-TLS server, whose AUTH is TLS-only by construction
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)


@dataclass(frozen=True)
class Certs:
    root: Path  # what the client trusts
    good: tuple[Path, Path]  # chain and key for "localhost", under that root
    untrusted: tuple[Path, Path]  # chain and key for "localhost", under another root


@pytest.fixture
def certs(tmp_path: Path, chain: Chain) -> Certs:
    directory = tmp_path / "tls"
    good = write_server_files(directory, "good", chain.leaf("localhost"), chain.intermediate)
    other_root = issue("untrusted root CA", ca=True)
    untrusted = write_server_files(
        directory, "untrusted", issue("localhost", other_root), other_root
    )
    root = directory / "root.pem"
    root.write_bytes(chain.root.pem)
    return Certs(root=root, good=good, untrusted=untrusted)


def _alert(number: int) -> Alert:
    return Alert(
        fingerprint=f"fp-{number:04d}",
        check="tls_posture",
        target="payments-api",
        rule_id="TLS-PROTOCOL-TLS10",
        severity=Severity.HIGH,
        title=f"TLS 1.0 accepted (finding {number})",
        subject=f"api{number}.example.test:443",
        evidence="server accepted a TLS 1.0 handshake",
        remediation=f"Disable TLS 1.0 on listener {number}",
        state=AlertState.FIRING,
        started_at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        controls=("NIST SP 800-53 SC-8",),
        labels={"team": "payments"},
    )


def _notification(**changes: object) -> Notification:
    values: dict[str, object] = {
        "dedup_key": "4f1c2a9be0d84d5c9a5f3c1d2e7b6a10",
        "receiver": "mail",
        "route": "route-0",
        "group_key": "route-0:target=payments-api",
        "group_labels": {"target": "payments-api"},
        "kind": NotificationKind.FIRING,
        "created_at": datetime(2026, 5, 1, 12, 1, tzinfo=UTC),
        "firing": (_alert(1), _alert(2)),
    }
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


def _config(url: str, ca_file: Path, password: str = PASSWORD, **extra: object) -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "smtp": url,
            "from": SENDER,
            "to": list(RECIPIENTS),
            "username": USER,
            "password": password,
            "ca_file": ca_file,
            "timeout": "5s",
            **extra,
        }
    )


@pytest.fixture(params=[SmtpSecurity.STARTTLS, SmtpSecurity.TLS])
def smtp(request: pytest.FixtureRequest, certs: Certs) -> Iterator[SmtpServer]:
    with SmtpServer(*certs.good, security=request.param, users={USER: PASSWORD}) as server:
        yield server


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    assert part.get_content_type() == f"text/{subtype}"
    content = part.get_content()
    assert isinstance(content, str)
    return content


@pytest.mark.integration
def test_a_notification_arrives_as_one_text_and_html_mail_after_login(
    smtp: SmtpServer, certs: Certs
) -> None:
    notification = _notification()
    notifier = EmailNotifier("mail", _config(smtp.url(), certs.root))

    notifier.send(notification)

    assert [(a.login, a.password, a.accepted) for a in smtp.logins] == [(USER, PASSWORD, True)]
    [mail] = smtp.received
    assert mail.tls
    assert mail.login == USER
    assert (mail.mail_from, mail.rcpt_to) == (SENDER, RECIPIENTS)
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert message["Subject"] == f"[apivigil] {notification.title}"
    assert message["From"] == SENDER
    assert message["To"] == ", ".join(RECIPIENTS)
    assert message["Message-ID"] == f"<{notification.dedup_key}@apivigil>"
    assert message["X-Apivigil-Fingerprint"] == "fp-0001, fp-0002"
    assert message["X-Apivigil-Dedup-Key"] == notification.dedup_key
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == notification.created_at
    text, html = _body(message, "plain"), _body(message, "html")
    for alert in notification.firing:
        for body in (text, html):
            assert alert.title in body
            assert alert.remediation in body


@pytest.mark.integration
def test_sending_the_same_notification_twice_keeps_its_message_id(
    smtp: SmtpServer, certs: Certs
) -> None:
    notifier = EmailNotifier("mail", _config(smtp.url(), certs.root))

    notifier.send(_notification())
    notifier.send(_notification())

    first, second = (mail.message["Message-ID"] for mail in smtp.received)
    assert first == second == "<4f1c2a9be0d84d5c9a5f3c1d2e7b6a10@apivigil>"


@pytest.mark.integration
def test_a_notification_without_alerts_is_identified_by_its_group_key(
    smtp: SmtpServer, certs: Certs
) -> None:
    notification = _notification(kind=NotificationKind.TEST, firing=())

    EmailNotifier("mail", _config(smtp.url(), certs.root)).send(notification)

    [mail] = smtp.received
    assert mail.message["X-Apivigil-Fingerprint"] == notification.group_key
    assert mail.message["Subject"] == "[apivigil] [TEST] apivigil notification test"


@pytest.mark.integration
@BOTH_SECURITIES
def test_a_server_certificate_from_an_untrusted_ca_is_refused_before_login(
    security: SmtpSecurity, certs: Certs
) -> None:
    with SmtpServer(*certs.untrusted, security=security, users={USER: PASSWORD}) as smtp:
        notifier = EmailNotifier("mail", _config(smtp.url(), certs.root))

        with pytest.raises(NotifierError) as caught:
            notifier.send(_notification())

        assert str(caught.value).startswith(f"certificate of localhost:{smtp.port} not trusted: ")
        assert caught.value.permanent is False  # see alerts/email.py: an attacker may cause it
        assert smtp.logins == []
        assert smtp.received == []


@pytest.mark.integration
def test_a_server_certificate_for_another_host_name_is_not_trusted(
    smtp: SmtpServer, certs: Certs
) -> None:
    notifier = EmailNotifier("mail", _config(smtp.url(host="127.0.0.1"), certs.root))

    with pytest.raises(NotifierError) as caught:
        notifier.send(_notification())

    assert str(caught.value).startswith(f"certificate of 127.0.0.1:{smtp.port} not trusted: ")
    assert "mismatch" in str(caught.value).lower()
    assert smtp.logins == []


@pytest.mark.integration
def test_a_server_without_starttls_never_sees_the_credentials(certs: Certs) -> None:
    with SmtpServer(*certs.good, security=None) as smtp:
        notifier = EmailNotifier("mail", _config(smtp.url(), certs.root))

        with pytest.raises(NotifierError) as caught:
            notifier.send(_notification())

        assert "STARTTLS" in str(caught.value)
        assert caught.value.permanent is False
        assert smtp.logins == []
        assert smtp.received == []


@pytest.mark.integration
def test_a_wrong_password_is_a_permanent_error(smtp: SmtpServer, certs: Certs) -> None:
    notifier = EmailNotifier("mail", _config(smtp.url(), certs.root, password="wrong"))

    with pytest.raises(NotifierError) as caught:
        notifier.send(_notification())

    assert caught.value.permanent is True
    assert "login refused: 535" in str(caught.value)
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN)
    assert {(a.login, a.password, a.accepted) for a in smtp.logins} == {(USER, "wrong", False)}
    assert smtp.received == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("550 5.1.1 no such mailbox", True), ("450 4.2.1 mailbox busy, try later", False)],
)
def test_a_refused_recipient_is_permanent_only_for_a_5xx(
    reply: str, permanent: bool, certs: Certs
) -> None:
    refuse = dict.fromkeys(RECIPIENTS, reply)
    with SmtpServer(
        *certs.good, security=SmtpSecurity.STARTTLS, users={USER: PASSWORD}, refuse=refuse
    ) as smtp:
        notifier = EmailNotifier("mail", _config(smtp.url(), certs.root))

        with pytest.raises(NotifierError) as caught:
            notifier.send(_notification())

    assert caught.value.permanent is permanent
    assert f"{RECIPIENTS[0]}: {reply}" in str(caught.value)


@pytest.mark.integration
def test_a_partly_refused_mail_reaches_the_others_and_reports_the_refusal(certs: Certs) -> None:
    refuse = {RECIPIENTS[1]: "550 5.1.1 no such mailbox"}
    with SmtpServer(
        *certs.good, security=SmtpSecurity.TLS, users={USER: PASSWORD}, refuse=refuse
    ) as smtp:
        notifier = EmailNotifier("mail", _config(smtp.url(), certs.root))

        with pytest.raises(NotifierError) as caught:
            notifier.send(_notification())

        assert [mail.rcpt_to for mail in smtp.received] == [(RECIPIENTS[0],)]
    assert caught.value.permanent is True
    assert "delivered to 1, recipient(s) refused: security@example.test: 550" in str(caught.value)


@pytest.mark.integration
@BOTH_SECURITIES
def test_a_closed_port_is_a_temporary_error(security: SmtpSecurity, certs: Certs) -> None:
    scheme = "smtps" if security is SmtpSecurity.TLS else "smtp"
    port = free_port()
    notifier = EmailNotifier("mail", _config(f"{scheme}://localhost:{port}", certs.root))

    with pytest.raises(NotifierError) as caught:
        notifier.send(_notification())

    assert caught.value.permanent is False
    assert str(caught.value) == f"smtp localhost:{port}: connection refused"


@pytest.mark.unit
def test_the_subject_is_one_line_of_at_most_200_characters(tmp_path: Path, certs: Certs) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "email_subject.txt.j2").write_text(
        "{{ notification.title }}\nsecond line\r\nBcc: victim@example.test\n" + "x" * 300
    )
    config = _config("smtp://localhost:587", certs.root)

    message = compose(_notification(), config, templates_dir=templates)

    subject = message["Subject"]
    assert "\n" not in subject
    assert "\r" not in subject
    assert len(subject) == 200
    assert subject.startswith(f"{_notification().title} second line Bcc: victim@example.test x")
    assert subject.endswith("…")
    assert message["Bcc"] is None


@pytest.mark.unit
def test_a_broken_template_is_a_permanent_error(tmp_path: Path, certs: Certs) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "email_body.txt.j2").write_text("{{ notification.no_such_field }}")
    notifier = EmailNotifier(
        "mail", _config("smtp://localhost:587", certs.root), templates_dir=templates
    )

    with pytest.raises(NotifierError) as caught:
        notifier.send(_notification())

    assert caught.value.permanent is True
    assert "email_body.txt.j2" in str(caught.value)


@pytest.mark.integration
def test_a_missing_ca_file_is_a_permanent_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    notifier = EmailNotifier("mail", _config(f"smtps://localhost:{free_port()}", missing))

    with pytest.raises(NotifierError) as caught:
        notifier.send(_notification())

    assert caught.value.permanent is True
    assert str(missing) in str(caught.value)


@pytest.mark.unit
def test_the_date_header_is_the_creation_time_of_the_notification(certs: Certs) -> None:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

    message = compose(
        _notification(created_at=created), _config("smtp://localhost:587", certs.root)
    )

    assert message["Date"].datetime == created
