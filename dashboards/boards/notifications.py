"""Alerts: whether the alert engine ticks, and notifications that failed for good and those
waiting in the outbox, per receiver."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board

from dashboards.layout import (
    Cell,
    Row,
    assemble,
    label_dashboard,
    label_variable,
    notification_annotation,
)
from dashboards.panels import (
    Query,
    problem_count_stat,
    series,
    stat_panel,
    thresholds,
    timeseries_panel,
)
from monitor.metric_names import (
    ALERTING_LAST_TICK,
    ALERTING_ROUTES,
    ALERTING_SKIPPED,
    ALERTING_TICK_FAILURES,
    NOTIFICATIONS_DELIVERED,
    NOTIFICATIONS_FAILED,
    NOTIFICATIONS_PENDING,
)

UID = "apivigil-alerts"

_RECEIVER = 'receiver=~"$receiver"'


def dashboard() -> board.Dashboard:
    receivers = f"{NOTIFICATIONS_FAILED.name} or {NOTIFICATIONS_PENDING.name}"
    receiver = label_variable(
        "receiver",
        "Receiver",
        f"query_result(group by (receiver) ({receivers}))",
        regex='/receiver="([^"]+)"/',
    )
    result = label_dashboard(
        UID,
        "apivigil / Alerts",
        "Delivery of apivigil's notifications (Slack, e-mail, webhook, Alertmanager, "
        "Grafana): what was sent, what failed for good and what is waiting in the outbox.",
        receiver,
        notification_annotation(),
    )
    return assemble(result, [*_engine_panels(), *_panels()])


def _engine_panels() -> list[Row | Cell]:
    """If apivigil cannot alert, these say so (and the ApivigilAlerting* rules fire)."""
    return [
        Row("Alert engine"),
        Cell(
            stat_panel(
                "Since the last alert tick",
                "Time since the instance that ticks the alert engine last completed a tick "
                "(ticks run every second). Empty when no instance ticks: see the routes.",
                Query(f"time() - max({series(ALERTING_LAST_TICK)})", "", True),
                unit="s",
            ).thresholds(thresholds("green", (60, "orange"), (300, "red"))),
            width=6,
            height=5,
        ),
        Cell(
            stat_panel(
                "Alert routes",
                "Routes in the configuration. With routes, one instance (the leader in a "
                "cluster) must tick the engine.",
                Query(f"max({series(ALERTING_ROUTES)})", "", True),
            ).thresholds(thresholds("green")),
            width=6,
            height=5,
        ),
        Cell(
            timeseries_panel(
                "Failed ticks and skipped inputs",
                "Alert engine ticks that failed (usually the store), and bad inputs left out "
                "so the other alerts still flow, by kind: a silence or maintenance window "
                "that cannot be used, a failing route or template. The daemon's log names "
                "each once.",
                Query(
                    f"sum(increase({series(ALERTING_TICK_FAILURES)}[$__rate_interval]))",
                    "failed ticks",
                ),
                Query(
                    f"sum by (kind) (increase({series(ALERTING_SKIPPED)}[$__rate_interval]))",
                    "skipped {{kind}}",
                ),
            ),
            width=12,
            height=5,
        ),
    ]


def _panels() -> list[Row | Cell]:
    failed = series(NOTIFICATIONS_FAILED, _RECEIVER)
    sent = series(NOTIFICATIONS_DELIVERED, _RECEIVER)
    pending = series(NOTIFICATIONS_PENDING, _RECEIVER)
    return [
        Row("Delivery"),
        Cell(
            problem_count_stat(
                "Failed in the time range",
                "Notifications that failed for good (permanent error or past their maximum "
                "age) during the dashboard's time range; `apivigil alerts outbox --failed` "
                "lists them.",
                f"sum by (receiver) (increase({failed}[$__range]))",
                legend="{{receiver}}",
            ).decimals(0),
            width=12,
            height=5,
        ),
        Cell(
            stat_panel(
                "Waiting for delivery",
                "Notifications in the outbox waiting for a (re)try, per receiver.",
                Query(f"sum by (receiver) ({pending})", "{{receiver}}", True),
            ).thresholds(thresholds("green", (1, "orange"), (20, "red"))),
            width=12,
            height=5,
        ),
        Cell(
            timeseries_panel(
                "Sent",
                "Notifications per receiver that the receiver accepted, per interval.",
                Query(f"sum by (receiver) (increase({sent}[$__rate_interval]))", "{{receiver}}"),
                stacked=True,
            ),
            width=24,
        ),
        Cell(
            timeseries_panel(
                "Failed for good",
                "Notifications per receiver that failed for good, per interval.",
                Query(f"sum by (receiver) (increase({failed}[$__rate_interval]))", "{{receiver}}"),
                stacked=True,
            ),
        ),
        Cell(
            timeseries_panel(
                "Outbox backlog",
                "Notifications waiting for delivery, per receiver; a backlog that grows "
                "means a receiver is down.",
                Query(f"sum by (receiver) ({pending})", "{{receiver}}"),
            ),
        ),
        Cell(
            timeseries_panel(
                "Failed for good, total",
                "All failed notifications kept in the outbox, per receiver.",
                Query(f"sum by (receiver) ({failed})", "{{receiver}}"),
            ),
            width=24,
        ),
    ]
