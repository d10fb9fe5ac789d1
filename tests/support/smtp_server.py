"""A real SMTP server on 127.0.0.1 for the e-mail receiver tests (aiosmtpd, a context manager).

    with SmtpServer(cert, key, security=SmtpSecurity.STARTTLS, users={"alice": "s3cret"}) as smtp:
        ...  # smtp.port, smtp.received, smtp.logins

`security`: STARTTLS required before anything else (port-587 style), implicit TLS from the
first byte (port-465 style), or None for a plaintext server that offers no STARTTLS at all (to
prove a client never gives it credentials or mail). With `users`, AUTH is required and only
offered inside TLS.
`refuse` maps recipient addresses to the reply their RCPT TO gets (e.g. "550 5.1.1 ...").
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from alerts.config import SmtpSecurity
from tests.support.ports import HOST, free_port
from tests.support.tls_servers import ManagedServer


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One accepted message: the envelope, the parsed message and who had logged in."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    message: EmailMessage
    login: str | None
    tls: bool


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    mechanism: str
    login: str
    password: str
    accepted: bool


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._server.refuse.get(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        auth_data: object = session.auth_data  # what _authenticate returned on success
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        transport = server.transport
        self._server._record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_to=tuple(envelope.rcpt_tos),
                message=parsed,
                login=login,
                tls=transport is not None and transport.get_extra_info("ssl_object") is not None,
            )
        )
        return "250 Message accepted for delivery"


class SmtpServer(ManagedServer):
    """aiosmtpd on 127.0.0.1 with TLS from `cert` (chain, leaf first) and `key` (unused when
    `security` is None)."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        security: SmtpSecurity | None,
        users: Mapping[str, str] | None = None,
        refuse: Mapping[str, str] | None = None,
    ) -> None:
        self.security = security
        self.users = dict(users or {})
        self.refuse = dict(refuse or {})
        self.port = free_port()
        self.received: list[ReceivedMail] = []
        self.logins: list[LoginAttempt] = []
        self._lock = threading.Lock()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        options: dict[str, Any] = {}
        if self.users:
            options |= {
                "authenticator": self._authenticate,
                "auth_required": True,
                # aiosmtpd 1.4 counts only STARTTLS as TLS and would never offer AUTH on an
                # implicit-TLS listener (aio-libs/aiosmtpd#281); that listener is all TLS anyway.
                "auth_require_tls": security is not SmtpSecurity.TLS,
            }
        if security is SmtpSecurity.STARTTLS:
            options |= {"tls_context": tls, "require_starttls": True}
        self._controller = Controller(
            _Handler(self),
            hostname=HOST,
            port=self.port,
            ssl_context=tls if security is SmtpSecurity.TLS else None,
            **options,
        )

    def url(self, host: str = "localhost") -> str:
        """The `smtp` setting of an EmailConfig that reaches this server as `host`."""
        scheme = "smtps" if self.security is SmtpSecurity.TLS else "smtp"
        return f"{scheme}://{host}:{self.port}"

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: object,
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        accepted = self.users.get(login) == password
        with self._lock:
            self.logins.append(LoginAttempt(mechanism, login, password, accepted))
        # handled=False: aiosmtpd answers 235 or 535 itself (its default assumes we did)
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self.received.append(mail)

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
