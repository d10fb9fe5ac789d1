"""E-mail receiver: one multipart/alternative message (text + HTML) per notification, sent over
implicit TLS (smtps://, 465) or STARTTLS (smtp://, 587), always with a verified certificate.

Delivery errors become NotifierError. Permanent: the server refused our credentials, the
sender, a recipient or the message with a 5xx after the TLS session was verified. Everything
else is worth a retry, including a certificate that does not verify: anything said before the
verified handshake may come from an attacker on the path, who must not be able to make a
security alert drop for good; retries are bounded by the outbox's max_age and show the error,
and a corrected `ca_file` heals the pending notifications after a reload.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from alerts.config import EmailConfig, SmtpSecurity
from alerts.interface import NotifierError, TemplateFailed
from alerts.model import Notification
from alerts.templates import TemplateError, render
from monitor.bounded_files import read_limited

MAX_SUBJECT_CHARS = 200
_MAX_CA_BYTES = 4 * 1024 * 1024  # a large corporate CA bundle is well under 1 MiB
# RFC 5322 dot-atom-text: what the left part of a Message-ID may hold without quoting
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


class _Stage(StrEnum):
    CONNECT = "connect"
    STARTTLS = "STARTTLS"
    LOGIN = "login"
    SEND = "send"


# Only answers given inside the verified TLS session can be trusted to be final.
_VERIFIED_STAGES = frozenset({_Stage.LOGIN, _Stage.SEND})


class EmailNotifier:
    """Sends each notification as one e-mail to `config.to` (see the module docstring)."""

    def __init__(self, name: str, config: EmailConfig, templates_dir: Path | None = None) -> None:
        self.name = name
        self._config = config
        self._templates_dir = templates_dir

    def close(self) -> None:
        """Nothing to release: each send opens and closes its own connection."""

    def send(self, notification: Notification) -> None:
        """Deliver one e-mail. Returns when the server accepted it for every recipient; raises
        NotifierError (permanent when a retry cannot help) otherwise."""
        self._deliver(compose(notification, self._config, self._templates_dir))

    def _deliver(self, message: EmailMessage) -> None:
        config = self._config
        where = f"{config.host}:{config.port}"
        timeout = config.timeout.total_seconds()
        try:
            # read as every file is (a FIFO there would hold this receiver's lane forever)
            authorities = (
                None if config.ca_file is None else read_limited(config.ca_file, _MAX_CA_BYTES)
            )
            context = ssl.create_default_context(
                cadata=None if authorities is None else authorities.decode("ascii")
            )
        except (OSError, ValueError) as error:
            # Ours to fix, not the server's: a retry reads the same file.
            raise NotifierError(f"ca_file {config.ca_file}: {error}", permanent=True) from None
        stage = _Stage.CONNECT
        client: smtplib.SMTP | None = None
        watchdog = _Watchdog(timeout)
        try:
            if config.security is SmtpSecurity.TLS:
                client = _WatchedSmtpSsl(
                    watchdog, config.host, config.port, timeout=timeout, context=context
                )
            else:
                client = _WatchedSmtp(watchdog, config.host, config.port, timeout=timeout)
                stage = _Stage.STARTTLS
                client.starttls(context=context)
            stage = _Stage.LOGIN
            if config.username is not None and config.password is not None:
                client.login(config.username, config.password.get_secret_value())
            stage = _Stage.SEND
            refused = client.send_message(
                message, from_addr=config.sender, to_addrs=list(config.to)
            )
        except (OSError, UnicodeError) as error:  # smtplib and ssl errors are OSErrors
            watchdog.cancel()
            if client is not None:
                client.close()
            cause = TimeoutError() if watchdog.fired else error
            raise _notifier_error(cause, stage, where, timeout) from None
        watchdog.cancel()
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()  # the message is accepted: a failed goodbye changes nothing
        client.close()
        if refused:
            raise _refused_error(where, refused, accepted=len(config.to) - len(refused))


class _Watchdog:
    """Ends an SMTP session at its deadline. smtplib's timeout bounds each read, so a server
    that answers one byte at a time would otherwise hold the session as long as it likes:
    at the deadline the socket is shut down, which wakes the blocked read."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._client: smtplib.SMTP | None = None
        self._socket: socket.socket | None = None  # until the client holds it itself
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, client: smtplib.SMTP, sock: socket.socket) -> None:
        with self._lock:
            self._client, self._socket = client, sock
        if self.fired:
            self._fire()

    def cancel(self) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            # after STARTTLS the client holds the TLS socket (the plain one is detached)
            sock = (self._client.sock if self._client is not None else None) or self._socket
        if sock is not None:
            with contextlib.suppress(OSError):
                # the plain socket's shutdown: ssl's would drop its state under the reader
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched:
    """Tells the watchdog about the client's socket as soon as it is connected (before the
    greeting is read)."""

    def __init__(self, watchdog: _Watchdog, *args: Any, **kwargs: Any) -> None:
        self._watchdog = watchdog
        super().__init__(*args, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        assert isinstance(self, smtplib.SMTP)
        self._watchdog.watch(self, sock)
        return sock


class _WatchedSmtp(_Watched, smtplib.SMTP):
    pass


class _WatchedSmtpSsl(_Watched, smtplib.SMTP_SSL):
    pass


def compose(
    notification: Notification, config: EmailConfig, templates_dir: Path | None = None
) -> EmailMessage:
    """The e-mail for `notification`: text and HTML alternatives from the templates, with the
    headers that identify it. Raises NotifierError (permanent) when the templates fail or
    produce a header that cannot be sent."""
    try:
        subject = render("email_subject.txt.j2", templates_dir, notification=notification)
        text = render("email_body.txt.j2", templates_dir, notification=notification)
        html = render("email_body.html.j2", templates_dir, notification=notification)
    except TemplateError as error:
        raise TemplateFailed(f"e-mail {error}", error.name) from None
    fingerprints = [alert.fingerprint for alert in (*notification.firing, *notification.resolved)]
    message = EmailMessage(policy=SMTP)
    try:
        message["From"] = config.sender
        message["To"] = ", ".join(config.to)
        message["Subject"] = one_line(subject, MAX_SUBJECT_CHARS) or notification.title
        # The creation time, not the send time: a retried notification is the same message.
        message["Date"] = format_datetime(notification.created_at)
        message["Message-ID"] = message_id(notification.dedup_key)
        message["X-Apivigil-Fingerprint"] = ", ".join(fingerprints) or notification.group_key
        message["X-Apivigil-Dedup-Key"] = notification.dedup_key
        message["Auto-Submitted"] = "auto-generated"
    except ValueError as error:
        raise NotifierError(f"e-mail headers: {error}", permanent=True) from None
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def one_line(text: str, limit: int) -> str:
    """`text` with all whitespace runs (newlines included) collapsed to one space, cut to
    `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def message_id(dedup_key: str) -> str:
    """`<dedup_key@apivigil>`, the same for every retry; a key that is not a valid Message-ID
    left part is replaced by its SHA-256."""
    left = (
        dedup_key
        if _DOT_ATOM.fullmatch(dedup_key)
        else hashlib.sha256(dedup_key.encode()).hexdigest()
    )
    return f"<{left}@apivigil>"


def _notifier_error(
    error: OSError | UnicodeError, stage: _Stage, where: str, timeout: float
) -> NotifierError:
    match error:
        case ssl.SSLCertVerificationError():
            reason = error.verify_message or str(error)
            return NotifierError(f"certificate of {where} not trusted: {reason}")
        case ssl.SSLError():
            return NotifierError(f"smtp {where}: TLS handshake failed: {error.reason or error}")
        case smtplib.SMTPResponseException():
            permanent = stage in _VERIFIED_STAGES and error.smtp_code >= 500
            answer = f"{error.smtp_code} {_text(error.smtp_error)}"
            return NotifierError(f"smtp {where}: {stage} refused: {answer}", permanent=permanent)
        case smtplib.SMTPRecipientsRefused():
            return _refused_error(where, error.recipients, accepted=0)
        case smtplib.SMTPNotSupportedError():
            # "STARTTLS not offered" before TLS may be forged; AUTH or SMTPUTF8 missing after it
            # is the server's verified answer.
            permanent = stage in _VERIFIED_STAGES
            return NotifierError(f"smtp {where}: {stage}: {error}", permanent=permanent)
        case smtplib.SMTPServerDisconnected():
            return NotifierError(f"smtp {where}: {stage}: server closed the connection")
        case smtplib.SMTPException():
            # e.g. "No suitable authentication method found."
            permanent = stage in _VERIFIED_STAGES
            return NotifierError(f"smtp {where}: {stage}: {error}", permanent=permanent)
        case TimeoutError():
            return NotifierError(f"smtp {where}: {stage}: no answer within {timeout:g} s")
        case ConnectionRefusedError():
            return NotifierError(f"smtp {where}: connection refused")
        case OSError():
            return NotifierError(f"smtp {where}: {stage}: {error.strerror or error}")
        case _:  # a user name, password or address smtplib cannot encode
            return NotifierError(f"smtp {where}: {stage}: not ASCII: {error}", permanent=True)


def _refused_error(
    where: str, refused: dict[str, tuple[int, bytes]], *, accepted: int
) -> NotifierError:
    """Recipients refused: permanent only when every refusal is a 5xx (a 4xx may pass later;
    the retry then reaches the others again, under the same Message-ID)."""
    details = "; ".join(f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in refused.items())
    prefix = f"delivered to {accepted}, " if accepted else ""
    return NotifierError(
        f"smtp {where}: {prefix}recipient(s) refused: {details}",
        permanent=all(code >= 500 for code, _ in refused.values()),
    )


def _text(answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
    return one_line(text, 300)
