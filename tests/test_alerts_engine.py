"""The alert engine with an injected clock: grouping, waits, repeats, resolution,
hysteresis, escalation, silences and maintenance windows. No sleeps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from alerts.check_failing import check_failing_candidate
from alerts.config import AlertsConfig
from alerts.engine import tick
from alerts.model import (
    AlertCandidate,
    FailingCheck,
    GroupState,
    Notification,
    NotificationKind,
    Silence,
)
from monitor.model import Severity
from tests.support.alert_candidates import T0, alerts_config, candidate

pytestmark = pytest.mark.unit


class Engine:
    """Keeps group states between ticks the way the store does."""

    def __init__(self, config: AlertsConfig, overrides: dict[str, timedelta] | None = None) -> None:
        self.config = config
        self.states: dict[str, GroupState] = {}
        self.silences: list[Silence] = []
        self.handled: set[str] = set()
        self.overrides = overrides

    def at(self, moment: datetime, *candidates: AlertCandidate) -> list[Notification]:
        pending = [s for s in self.silences if s.id not in self.handled]
        result = tick(
            self.config, candidates, list(self.states.values()), pending, moment, self.overrides
        )
        for state in result.upserts:
            self.states[state.id] = state
        for gid in result.deleted:
            del self.states[gid]
        self.handled.update(result.handled_silences)
        return list(result.notifications)


def firing(notifications: Sequence[Notification]) -> list[set[str]]:
    return [{a.fingerprint for a in n.firing} for n in notifications]


def test_alerts_of_one_target_wait_group_wait_and_arrive_together() -> None:
    engine = Engine(alerts_config())
    a, b, other = candidate("a"), candidate("b"), candidate("c", target="billing")

    assert engine.at(T0, a) == []
    assert engine.at(T0 + timedelta(seconds=10), a, b, other) == []
    sent = engine.at(T0 + timedelta(seconds=30), a, b, other)

    assert [n.kind for n in sent] == [NotificationKind.FIRING]
    assert firing(sent) == [{"a", "b"}]
    assert sent[0].group_labels == {"target": "payments"}
    later = engine.at(T0 + timedelta(seconds=40), a, b, other)
    assert firing(later) == [{"c"}]


def test_changes_wait_for_group_interval_and_reminders_for_repeat_interval() -> None:
    engine = Engine(alerts_config(group_wait="0s"))
    a, b = candidate("a"), candidate("b")
    assert firing(engine.at(T0, a)) == [{"a"}]

    assert engine.at(T0 + timedelta(minutes=4), a, b) == []
    update = engine.at(T0 + timedelta(minutes=5), a, b)
    assert firing(update) == [{"a", "b"}]
    assert update[0].kind is NotificationKind.FIRING

    assert engine.at(T0 + timedelta(hours=4), a, b) == []
    reminder = engine.at(T0 + timedelta(minutes=5, hours=4), a, b)
    assert reminder[0].kind is NotificationKind.REMINDER
    assert engine.at(T0 + timedelta(minutes=6, hours=4), a, b) == []


def test_resolution_is_announced_once_then_the_group_is_gone() -> None:
    engine = Engine(alerts_config(group_wait="0s"))
    engine.at(T0, candidate("a"), candidate("b"))

    partial = engine.at(
        T0 + timedelta(minutes=5), candidate("a"), candidate("b", open=False, missing=2)
    )
    assert firing(partial) == [{"a"}]
    assert [r.fingerprint for r in partial[0].resolved] == ["b"]

    done = engine.at(T0 + timedelta(minutes=10))
    assert [n.kind for n in done] == [NotificationKind.RESOLVED]
    assert [r.fingerprint for r in done[0].resolved] == ["a"]
    assert engine.states == {}
    assert engine.at(T0 + timedelta(hours=5)) == []


def test_without_send_resolved_nothing_is_said_when_alerts_end() -> None:
    engine = Engine(alerts_config(group_wait="0s", send_resolved=False))
    engine.at(T0, candidate("a"), candidate("b"))

    assert engine.at(T0 + timedelta(minutes=5), candidate("a")) == []
    assert engine.at(T0 + timedelta(minutes=10)) == []
    assert engine.states == {}


def test_notify_after_waits_for_sightings_and_the_store_alone_resolves() -> None:
    engine = Engine(alerts_config(group_wait="0s", notify_after=3))

    assert engine.at(T0, candidate("a", seen=1)) == []
    assert engine.at(T0 + timedelta(minutes=1), candidate("a", seen=2)) == []
    assert firing(engine.at(T0 + timedelta(minutes=2), candidate("a", seen=3))) == [{"a"}]

    gone = candidate("a", open=False, seen=0, missing=2)  # resolved in the store after 2
    resolved = engine.at(T0 + timedelta(minutes=20), gone)
    assert [n.kind for n in resolved] == [NotificationKind.RESOLVED]
    assert engine.at(T0 + timedelta(minutes=30), candidate("a", open=False, missing=3)) == []


def test_a_route_notify_after_above_check_failing_after_does_not_mute_a_failing_check() -> None:
    engine = Engine(alerts_config(group_wait="0s", notify_after=5))
    failing = check_failing_candidate(
        FailingCheck("tls_posture", "payments", failed_runs=3, since=T0, last_error="refused")
    )

    assert firing(engine.at(T0, failing)) == [{failing.alert.fingerprint}]


@pytest.mark.parametrize("route", [{"resolve_after": 5}, {"open_after": 1, "resolve_after": 1}])
def test_a_route_hysteresis_is_ignored_a_resolved_finding_never_fires(
    route: dict[str, int],
) -> None:
    engine = Engine(alerts_config(group_wait="0s", **route))
    assert firing(engine.at(T0, candidate("a", seen=1))) == [{"a"}]

    resolved = engine.at(T0 + timedelta(minutes=10), candidate("a", open=False, missing=1))

    assert [n.kind for n in resolved] == [NotificationKind.RESOLVED]
    assert engine.states == {}


def test_a_rising_severity_alerts_once_per_threshold() -> None:
    engine = Engine(alerts_config(group_wait="0s", group_interval="1m"))
    expiring = "cert"
    sent: list[Notification] = []
    for minute, severity in enumerate(
        [Severity.MEDIUM] * 3 + [Severity.HIGH] * 3 + [Severity.CRITICAL] * 3
    ):
        sent += engine.at(
            T0 + timedelta(minutes=minute),
            candidate(expiring, severity=severity, rule="CERT-EXPIRES-SOON"),
        )

    assert [n.severity for n in sent] == [Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def test_routes_match_severity_rule_labels_and_continue() -> None:
    config = AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": name, "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}}
                for name in ("pager", "team", "all")
            ],
            "routes": [
                {
                    "match": {"severity": "critical"},
                    "receivers": ["pager"],
                    "group_wait": "0s",
                    "continue": True,
                },
                {
                    "match": {"rule": "TLS-*", "labels": {"team": "web"}},
                    "receivers": ["team"],
                    "group_wait": "0s",
                },
                {"receivers": ["all"], "group_wait": "0s"},
            ],
        }
    )
    engine = Engine(config)
    critical_web = candidate("a", severity=Severity.CRITICAL, labels={"team": "web"})
    high_web = candidate("b", labels={"team": "web"})
    high_db = candidate("c", target="db", labels={"team": "db"})

    sent = engine.at(T0, critical_web, high_web, high_db)

    by_receiver = {n.receiver: {a.fingerprint for a in n.firing} for n in sent}
    assert by_receiver == {"pager": {"a"}, "team": {"a", "b"}, "all": {"c"}}


def test_a_silenced_alert_is_quiet_and_its_end_is_announced_once_while_it_fires() -> None:
    engine = Engine(alerts_config(group_wait="0s"))
    engine.silences = [
        Silence(
            "s1",
            {"rule_id": "~TLS-.*", "target": "payments"},
            T0,
            T0 + timedelta(hours=1),
            "alice",
            "maintenance CHG-9",
        )
    ]
    a = candidate("a")

    assert engine.at(T0, a) == []
    assert engine.at(T0 + timedelta(minutes=30), a) == []
    ended = engine.at(T0 + timedelta(hours=1), a)

    assert [n.kind for n in ended] == [NotificationKind.SILENCE_EXPIRED]
    assert "s1" in (ended[0].note or "")
    assert "alice" in (ended[0].note or "")
    assert engine.at(T0 + timedelta(hours=1, minutes=10), a) == []


def test_silencing_a_notified_alert_sends_no_resolved_notice() -> None:
    engine = Engine(alerts_config(group_wait="0s"))
    engine.at(T0, candidate("a"))
    engine.silences = [
        Silence("s2", {"fingerprint": "a"}, T0, T0 + timedelta(days=1), "bob", "known")
    ]

    assert engine.at(T0 + timedelta(minutes=10), candidate("a")) == []
    assert engine.at(T0 + timedelta(hours=5), candidate("a")) == []  # no reminders either


def test_a_weekly_maintenance_window_across_midnight_in_its_time_zone_mutes_alerts() -> None:
    config = alerts_config(
        group_wait="0s",
        top={
            "maintenance_windows": [
                {
                    "name": "sat-night",
                    "matchers": {"env": "prod"},
                    "timezone": "Europe/Berlin",
                    "weekly": {"days": ["sat"], "start": "23:00", "end": "02:00"},
                }
            ]
        },
    )
    engine = Engine(config)
    saturday_2330_berlin = datetime(2026, 11, 28, 22, 30, tzinfo=UTC)
    sunday_0130_berlin = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    sunday_0200_berlin = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)

    assert engine.at(saturday_2330_berlin, candidate("a")) == []
    assert engine.at(sunday_0130_berlin, candidate("a")) == []
    assert firing(engine.at(sunday_0200_berlin, candidate("a"))) == [{"a"}]


def test_a_cron_maintenance_window_mutes_for_its_duration() -> None:
    config = alerts_config(
        group_wait="0s",
        top={
            "maintenance_windows": [
                {
                    "name": "patch-tuesday",
                    "cron": "0 3 * * tue",
                    "duration": "2h",
                    "timezone": "UTC",
                    "matchers": {"target": "payments"},
                }
            ]
        },
    )
    engine = Engine(config)
    tuesday = datetime(2026, 12, 1, tzinfo=UTC)

    assert engine.at(tuesday + timedelta(hours=3, minutes=1), candidate("a")) == []
    assert engine.at(tuesday + timedelta(hours=4, minutes=59), candidate("a")) == []
    assert firing(engine.at(tuesday + timedelta(hours=5), candidate("a"))) == [{"a"}]


def test_alertmanager_receivers_are_resent_while_firing() -> None:
    engine = Engine(alerts_config(group_wait="0s"), overrides={"hook": timedelta(minutes=1)})
    engine.at(T0, candidate("a"))

    again = engine.at(T0 + timedelta(minutes=1), candidate("a"))

    assert [n.kind for n in again] == [NotificationKind.REMINDER]


def test_ten_thousand_findings_make_one_notification_per_group() -> None:
    engine = Engine(alerts_config(group_wait="0s"))
    many = [candidate(f"f{i}", target=f"t{i % 250}") for i in range(10_000)]

    sent = engine.at(T0, *many)

    assert len(sent) == 250
    assert sum(len(n.firing) for n in sent) == 10_000
