"""`apivigil alerts outbox`, `apivigil silence add|list|expire`, `apivigil notify test`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from monitor.cli_common import (
    ConfigOption,
    OutputFormat,
    StoreOption,
    err,
    load,
    opened_store,
    out,
)
from monitor.clock import SystemClock
from monitor.display import cell
from monitor.durations import parse_duration
from monitor.model import Severity, require_utc
from monitor.scan import EXIT_USAGE
from monitor.tables import Column, fitted_table

alerts_app = typer.Typer(help="Alert delivery: the outbox.", no_args_is_help=True)
silence_app = typer.Typer(help="Mute alerts for a while.", no_args_is_help=True)
notify_app = typer.Typer(help="Check receivers.", no_args_is_help=True)

OUTBOX_COLUMNS = (
    Column("created (UTC)", drop=2),
    Column("receiver", key=True),
    Column("kind", drop=1),
    Column("state"),
    Column("attempts", drop=3),
    Column("last error", key=True),
)
SILENCE_COLUMNS = (
    Column("id", key=True),
    Column("matchers", key=True),
    Column("starts (UTC)", drop=2),
    Column("ends (UTC)"),
    Column("by", drop=3),
    Column("comment", drop=1),
)

EXIT_NOT_DELIVERED = 1


@alerts_app.command("outbox")
def alerts_outbox(
    failed: Annotated[bool, typer.Option("--failed", help="only permanent failures")] = False,
    pending: Annotated[bool, typer.Option("--pending", help="only undelivered")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    config: ConfigOption = None,
    store: StoreOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
) -> None:
    """Notifications in the outbox, newest first: delivered, waiting, or failed for good."""
    from monitor.alert_records import AlertRecords

    with opened_store(config, store) as sql_store:
        entries = AlertRecords(sql_store).outbox_entries(
            failed_only=failed, pending_only=pending, limit=limit
        )
    if format is OutputFormat.JSON:
        print(
            json.dumps(
                [
                    {
                        "dedup_key": e.id,
                        "receiver": e.receiver,
                        "kind": e.kind,
                        "created_at": e.created_at.isoformat(),
                        "attempts": e.attempts,
                        "state": _state(e.delivered_at, e.permanent),
                        "next_attempt_at": e.next_attempt_at.isoformat(),
                        "last_error": e.last_error,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    rows: list[list[Text | str]] = [
        [
            f"{e.created_at:%Y-%m-%d %H:%M:%S}",
            cell(e.receiver),
            cell(e.kind),
            _state(e.delivered_at, e.permanent),
            str(e.attempts),
            cell(e.last_error or ""),
        ]
        for e in entries
    ]
    out.print(fitted_table(out.width, OUTBOX_COLUMNS, rows))


def _state(delivered_at: datetime | None, permanent: bool) -> str:
    if delivered_at is not None:
        return "delivered"
    return "failed" if permanent else "pending"


@silence_app.command("add")
def silence_add(
    match: Annotated[
        list[str], typer.Option("--match", help="label=value or label=~regex (repeatable)")
    ],
    comment: Annotated[str, typer.Option("--comment", help="why")],
    duration: Annotated[str | None, typer.Option(help="e.g. 2h [default: 1h]")] = None,
    until: Annotated[str | None, typer.Option(help="end, ISO 8601 with a UTC offset")] = None,
    by: Annotated[str | None, typer.Option("--by", help="creator [default: OS user]")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Mute alerts whose labels (check, target, rule_id, severity, subject, target labels)
    match every matcher, from now until the end."""
    from alerts.matchers import check_matchers
    from alerts.model import Silence
    from monitor.alert_records import AlertRecords
    from monitor.baselines import default_approver

    now = SystemClock().now()
    try:
        matchers = dict(_matcher(text) for text in match)
        check_matchers(matchers)
        if until is not None and duration is not None:
            raise ValueError("give --duration or --until, not both")
        ends = (
            require_utc(datetime.fromisoformat(until), "--until")
            if until is not None
            else now + parse_duration(duration or "1h")
        )
        if ends <= now:
            raise ValueError("the silence would end before it starts")
    except ValueError as error:
        err.print(f"[red]silence not added:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from None
    if not comment.strip():
        err.print("[red]silence not added:[/] a comment is required")
        raise typer.Exit(EXIT_USAGE)
    _warn_about_unknown_labels(matchers, config)
    silence = Silence(str(uuid.uuid4()), matchers, now, ends, by or default_approver(), comment)
    with opened_store(config, store) as sql_store:
        AlertRecords(sql_store).add_silence(silence, now)
    out.print(f"silence {silence.id} until {ends:%Y-%m-%d %H:%M} UTC", highlight=False)


def _warn_about_unknown_labels(matchers: dict[str, str], config: Path | None) -> None:
    """Warn about matcher labels that no alert carries: such a silence mutes nothing."""
    from alerts.rules import ALERT_OWN_LABELS

    settings, _ = load(config)
    target_labels = sorted({key for t in settings.targets for key in t.labels})
    known = set(ALERT_OWN_LABELS) | set(target_labels)
    for label in sorted(set(matchers) - known):
        err.print(
            f"warning: no alert carries the label {label!r}, so this silence mutes nothing "
            f"through it; alerts carry {', '.join(ALERT_OWN_LABELS)}"
            + (f" and the target labels {', '.join(target_labels)}" if target_labels else ""),
            markup=False,
            highlight=False,
        )


def _matcher(text: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not label.strip():
        raise ValueError(f"{text!r}: use label=value or label=~regex")
    return label.strip(), value


@silence_app.command("list")
def silence_list(
    all_: Annotated[bool, typer.Option("--all", help="include ended silences")] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Active silences (and ended ones with --all)."""
    from monitor.alert_records import AlertRecords

    with opened_store(config, store) as sql_store:
        silences = AlertRecords(sql_store).silences(SystemClock().now(), include_expired=all_)
    rows: list[list[Text | str]] = [
        [
            cell(s.id),
            cell(", ".join(f"{k}={v}" for k, v in s.matchers.items())),
            f"{s.starts_at:%Y-%m-%d %H:%M}",
            f"{s.ends_at:%Y-%m-%d %H:%M}",
            cell(s.created_by),
            cell(s.comment),
        ]
        for s in silences
    ]
    out.print(fitted_table(out.width, SILENCE_COLUMNS, rows))


@silence_app.command("expire")
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="silence id")],
    by: Annotated[str | None, typer.Option("--by", help="who [default: OS user]")] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """End a silence now."""
    from monitor.alert_records import AlertRecords
    from monitor.baselines import default_approver

    with opened_store(config, store) as sql_store:
        expired = AlertRecords(sql_store).expire_silence(
            silence_id, by or default_approver(), SystemClock().now()
        )
    if not expired:
        err.print(f"[red]no active silence {silence_id}[/]")
        raise typer.Exit(EXIT_USAGE)
    out.print(f"silence {silence_id} expired")


@notify_app.command("test")
def notify_test(
    receiver: Annotated[str, typer.Argument(help="receiver name from the config")],
    config: ConfigOption = None,
) -> None:
    """Send a test notification to RECEIVER now (not through the outbox) and report."""
    from alerts.interface import NotifierError
    from alerts.model import Alert, AlertState, Notification, NotificationKind
    from monitor.alerting import build_notifier

    settings, _ = load(config, required=True)
    configured = settings.alerts.receiver(receiver)
    if configured is None:
        names = ", ".join(r.name for r in settings.alerts.receivers) or "none configured"
        err.print(f"[red]unknown receiver {receiver!r}[/] (receivers: {names})")
        raise typer.Exit(EXIT_USAGE)
    now = SystemClock().now()
    alert = Alert(
        fingerprint="0" * 64,
        check="apivigil",
        target="apivigil",
        rule_id="APIVIGIL-TEST",
        severity=Severity.INFO,
        title="Test notification from apivigil",
        subject="notify test",
        evidence=f"sent by `apivigil notify test {receiver}`",
        remediation="Nothing to do: this receiver works.",
        state=AlertState.FIRING,
        started_at=now,
    )
    notification = Notification(
        dedup_key=uuid.uuid4().hex,
        receiver=receiver,
        route="test",
        group_key="{}",
        group_labels={"test": receiver},
        kind=NotificationKind.TEST,
        created_at=now,
        firing=(alert,),
        external_url=settings.alerts.external_url,
    )
    try:
        build_notifier(configured, settings.alerts).send(notification)
    except NotifierError as error:
        kind = "permanent" if error.permanent else "temporary"
        err.print(f"[red]{receiver}: not delivered ({kind}):[/] {error}", highlight=False)
        raise typer.Exit(EXIT_NOT_DELIVERED) from None
    out.print(f"{receiver}: test notification delivered")
