"""A receiver that answers slowly (headers, then one byte every few seconds) delays only its
own notifications: every POST and every SMTP session ends by a total deadline, receivers are
delivered in lanes of their own, and the alert loop never waits for a delivery. The proof:
a dripping webhook next to a real SMTP receiver, with a bad silence stored, and the e-mail
still arrives within its group interval."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.config import AlertsConfig, EmailConfig, SmtpSecurity, WebhookConfig
from alerts.email import EmailNotifier
from alerts.interface import NotifierError
from alerts.model import Silence
from alerts.outbox import Dispatcher
from alerts.webhook import WebhookNotifier
from monitor.alert_records import AlertRecords
from monitor.alerting import AlertLoop, run_tick
from monitor.certmaker import write_server_files
from monitor.clock import SystemClock
from monitor.model import Finding, Severity, Target
from monitor.store.sql import SqlStore
from tests.support.chains import Chain
from tests.support.clocks import ManualClock
from tests.support.hostile_servers import DribblingTlsServer, DrippingHttpServer, DrippingSmtpServer
from tests.support.notifications import make_notification
from tests.support.outbox_records import T0, RecordingNotifier, record, tls10
from tests.support.smtp_server import SmtpServer

pytestmark = [pytest.mark.integration, pytest.mark.hostile_peer]

DEADLINE = 2.0  # seconds: the receivers' timeout, now a total deadline
SLACK = 8.0  # generous: the machine is shared
GROUP_INTERVAL = 5.0


def ended_within(seconds: float, action: Callable[[], object]) -> NotifierError:
    started = time.monotonic()
    with pytest.raises(NotifierError) as raised:
        action()
    assert time.monotonic() - started < seconds, "the deadline did not end the delivery"
    return raised.value


@pytest.mark.parametrize("headers_first", [True, False], ids=["body-drips", "headers-drip"])
def test_a_post_to_a_receiver_that_drips_ends_by_its_total_deadline(headers_first: bool) -> None:
    # one byte every 0.5 s: never long enough for a per-read timeout to fire
    with DrippingHttpServer(0.5, headers_too=not headers_first) as server:
        config = WebhookConfig(url=server.url, secret="s", timeout=timedelta(seconds=DEADLINE))
        notifier = WebhookNotifier("slow", config)
        error = ended_within(DEADLINE + SLACK, lambda: notifier.send(make_notification()))
        notifier.close()

    assert f"no answer within {DEADLINE:g} s" in str(error)
    assert not error.permanent


def test_a_post_to_a_receiver_that_drips_its_tls_handshake_ends_by_its_total_deadline(
    tmp_path: Path, chain: Chain
) -> None:
    cert, key = write_server_files(
        tmp_path / "tls", "hook", chain.leaf("127.0.0.1"), chain.intermediate
    )
    with DribblingTlsServer(cert, key, interval=0.5) as server:
        url = f"https://{server.address}/hook"
        config = WebhookConfig(url=url, secret="s", timeout=timedelta(seconds=DEADLINE))
        notifier = WebhookNotifier("slow", config)
        error = ended_within(DEADLINE + SLACK, lambda: notifier.send(make_notification()))
        notifier.close()
        sent = server.bytes_sent

    assert f"no answer within {DEADLINE:g} s" in str(error)
    assert 0 < sent < 100, "the handshake was under way, byte by byte"


def test_an_smtp_server_that_drips_its_greeting_ends_by_the_total_deadline() -> None:
    with DrippingSmtpServer(0.5) as server:
        config = EmailConfig.model_validate(
            {
                "smtp": f"smtp://127.0.0.1:{server.port}",
                "from": "apivigil@example.test",
                "to": ["oncall@example.test"],
                "timeout": f"{DEADLINE:g}s",
            }
        )
        notifier = EmailNotifier("mail", config)
        error = ended_within(DEADLINE + SLACK, lambda: notifier.send(make_notification()))

    assert f"no answer within {DEADLINE:g} s" in str(error)
    assert not error.permanent


@pytest.fixture
def two_receivers(store: SqlStore) -> SqlStore:
    store.sync_targets([Target("payments"), Target("billing")], T0)
    return store


def two_receiver_config(slow_url: str) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "slow", "webhook": {"url": slow_url, "secret": "s", "timeout": "30s"}},
                {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}},
            ],
            "routes": [{"receivers": ["slow", "hook"], "group_wait": "0s"}],
        }
    )


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    ends = time.monotonic() + within
    while not condition():
        assert time.monotonic() < ends, f"{what} within {within} s"
        time.sleep(0.05)


def test_a_receiver_that_drips_does_not_delay_the_others(two_receivers: SqlStore) -> None:
    clock = ManualClock(T0)
    with DrippingHttpServer(2.0) as server:
        config = two_receiver_config(server.url)
        healthy = RecordingNotifier()
        slow = WebhookNotifier("slow", config.receivers[0].webhook)  # type: ignore[arg-type]
        dispatcher = Dispatcher(
            AlertRecords(two_receivers), {"slow": slow, "hook": healthy}, config.dispatcher, clock
        )
        record(two_receivers, clock, "payments", tls10())
        run_tick(two_receivers, config, clock)
        first = dispatcher.start_due()  # returns at once: the slow lane drips on its own
        wait_for(lambda: len(healthy.received) == 1, SLACK, "the healthy receiver served")
        wait_for(lambda: server.requests == 1, SLACK, "the slow receiver reached")
        record(two_receivers, clock, "billing", tls10("billing:443"))
        clock.current += timedelta(minutes=10)
        run_tick(two_receivers, config, clock)
        second = dispatcher.start_due()
        wait_for(lambda: len(healthy.received) == 2, SLACK, "the second notification served")
        slow_still_sending = any(not future.done() for future in first)
        requests = server.requests

    dispatcher.close()
    # the busy slow lane's newer row was not fetched again (nor sent twice)
    assert len(first) == 2
    assert len(second) == 1
    assert slow_still_sending
    assert requests == 1
    assert sorted(n.group_labels["target"] for n in healthy.received) == ["billing", "payments"]


def test_the_loop_ticks_on_while_a_delivery_hangs(two_receivers: SqlStore) -> None:
    clock = ManualClock(T0)
    with DrippingHttpServer(2.0) as server:
        config = two_receiver_config(server.url)
        loop = AlertLoop(two_receivers, config, clock)
        record(two_receivers, clock, "payments", tls10())
        loop._beat()
        wait_for(lambda: server.requests == 1, SLACK, "the slow receiver reached")
        clock.current += timedelta(seconds=5)
        began = time.monotonic()
        loop._beat()  # returns although the slow POST is still under way
        beat_took = time.monotonic() - began
        ticked_at = loop.health.snapshot().last_tick_at
        still_sending = server.bytes_sent
        time.sleep(2.5)  # one more drip: the POST was under way when the beat returned
        sent_later = server.bytes_sent
    loop.stop(flush_within=0)

    assert ticked_at == clock.now()
    assert sent_later > still_sending
    assert beat_took < 15  # a beat that waited would take the POST's 30 s deadline


def _run(store: SqlStore, target: str, finding: Finding) -> None:
    """A run that reports `finding`, recorded now (record() adds its one second)."""
    record(store, ManualClock(datetime.now(UTC) - timedelta(seconds=1)), target, finding)


@pytest.fixture
def smtp(tmp_path: Path, chain: Chain) -> Iterator[tuple[SmtpServer, Path]]:
    cert, key = write_server_files(
        tmp_path / "tls", "smtp", chain.leaf("127.0.0.1"), chain.intermediate
    )
    root = tmp_path / "tls" / "root.pem"
    root.write_bytes(chain.root.pem)
    with SmtpServer(cert, key, security=SmtpSecurity.STARTTLS) as server:
        yield server, root


def test_a_healthy_receiver_gets_its_alert_within_its_group_interval_next_to_a_slow_one(
    store: SqlStore, smtp: tuple[SmtpServer, Path]
) -> None:
    mail, root = smtp
    store.sync_targets([Target("payments")], datetime.now(UTC))
    now = datetime.now(UTC)
    bad = Silence("bad", {"target": "~("}, now, now + timedelta(days=1), "v0.9", "stored long ago")
    AlertRecords(store).add_silence(
        bad, now
    )  # as an older version, which did not validate, stored it
    with DrippingHttpServer(2.0) as slow:
        config = AlertsConfig.model_validate(
            {
                "receivers": [
                    {"name": "slow", "webhook": {"url": slow.url, "secret": "s", "timeout": "60s"}},
                    {
                        "name": "mail",
                        "email": {
                            "smtp": mail.url("127.0.0.1"),
                            "from": "apivigil@example.test",
                            "to": ["oncall@example.test"],
                            "ca_file": str(root),
                        },
                    },
                ],
                "routes": [
                    {
                        "receivers": ["slow", "mail"],
                        "group_wait": "1s",
                        "group_interval": f"{GROUP_INTERVAL:g}s",
                    }
                ],
            }
        )
        loop = AlertLoop(store, config, SystemClock(), interval=0.5)
        loop.start()
        try:
            _run(store, "payments", tls10())
            wait_for(lambda: len(mail.received) == 1, GROUP_INTERVAL + SLACK, "first e-mail")
            wait_for(lambda: slow.requests == 1, SLACK, "the slow receiver reached")
            changed_at = time.monotonic()
            _run(
                store,
                "payments",
                Finding(
                    "TLS-PROTOCOL-TLS11",
                    Severity.MEDIUM,
                    "TLS 1.1",
                    "payments:443",
                    "accepted",
                    "disable it",
                ),
            )
            # within its group interval, plus one loop interval and the e-mail's own round trip
            within = GROUP_INTERVAL + 3.0
            wait_for(lambda: len(mail.received) == 2, within, "the change by e-mail")
            latency = time.monotonic() - changed_at
            slow_requests = slow.requests
        finally:
            loop._stop.set()
    loop.stop(flush_within=0)

    print(
        f"alert latency for a healthy receiver next to a slow one: {latency:.1f} s "
        f"(group interval {GROUP_INTERVAL:g} s)"
    )
    assert slow_requests == 1, "the slow receiver's first POST was still dripping"
    body = mail.received[1].message.get_body(("plain",))
    assert body is not None
    assert "TLS 1.1" in str(body.get_content())
    assert loop.health.snapshot().tick_failures == 0
