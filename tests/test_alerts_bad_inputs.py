"""One bad input never stops alerting: a silence with a regex that does not compile (or one
that could backtrack for minutes), a broken route, maintenance window or template is refused
at every edge (API 422, CLI exit 2, config check), and one that is already stored or
configured is skipped with a logged error and `apivigil_alerting_skipped_total`, while every
other alert still flows. The alerting metrics report even while the store is down."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from alerts.config import AlertsConfig, RouteMatch
from alerts.engine import tick
from alerts.matchers import MAX_MATCHED_CHARS, MatcherError, check_matchers, matches
from alerts.model import Silence, SkipKind
from monitor.alert_records import AlertRecords
from monitor.alerting import AlertLoop, build_notifier
from monitor.api_v1 import api_router
from monitor.metrics import build_registry
from monitor.model import Severity, Target
from monitor.settings import ApiScope, ApiToken
from monitor.store.sql import SqlStore
from tests.support.alert_candidates import alerts_config, candidate
from tests.support.clocks import ManualClock
from tests.support.daemon_process import run_cli, write_config
from tests.support.outbox_records import CONFIG, T0, RecordingNotifier, record, tls10

pytestmark = pytest.mark.hostile_peer

ADMIN_TOKEN = "admin-token-0123456789abcdef"
BAD_REGEXES = [
    "~(",
    "~[a-",
    "~(a+)+$",
    "~(x|xy)*z",
    r"~(a)\1",
    "~" + "a" * 300,
    "~.*a.*b.*c.*d",  # cubic and worse: seconds on a 1,000-character subject
    "~.+a.{0,100}b.*",
]


def skipped(loop: AlertLoop, store: SqlStore, kind: SkipKind) -> float | None:
    registry = build_registry(store, alerting=loop.health)
    return registry.get_sample_value("apivigil_alerting_skipped_total", {"kind": kind.value})


@pytest.fixture
def targets(store: SqlStore) -> SqlStore:
    store.sync_targets([Target("payments", labels={"env": "prod"}), Target("billing")], T0)
    return store


@pytest.mark.unit
@pytest.mark.parametrize("value", BAD_REGEXES)
def test_matchers_with_a_bad_or_unbounded_regex_are_refused_with_the_label_named(
    value: str,
) -> None:
    with pytest.raises(MatcherError, match=r"^target="):
        check_matchers({"target": value})


@pytest.mark.unit
def test_bounded_regexes_and_plain_values_are_accepted() -> None:
    check_matchers({"target": "~payments-.*", "rule_id": "~TLS-(PROTOCOL|CIPHER)-.*"})
    check_matchers({"subject": "~.*/admin/.*", "target": "~[a-z]{1,8}-prod"})
    check_matchers({"target": "(", "severity": "high"})  # no ~: compared as text


@pytest.mark.unit
def test_a_hostile_label_value_cannot_stall_matching_and_is_never_silenced_by_a_regex() -> None:
    # Given the slowest shape still allowed and a subject a target chose
    matchers = {"subject": "~.*a.*b"}
    check_matchers(matchers)
    near_limit = "a" * MAX_MATCHED_CHARS
    over_limit = "a" * (MAX_MATCHED_CHARS + 1) + "b"

    # Then an over-long value is not silenced (the alert goes out) and the rest match as usual
    assert not matches(matchers, {"subject": near_limit})
    assert not matches(matchers, {"subject": over_limit})
    assert matches(matchers, {"subject": "xaxb"})
    assert matches(matchers, {"subject": "a" * (MAX_MATCHED_CHARS - 1) + "b"})


@pytest.mark.integration
def test_the_api_refuses_a_bad_silence_regex_with_422_and_says_why(store: SqlStore) -> None:
    app = FastAPI()
    token = ApiToken.model_validate(
        {
            "name": "ops",
            "scope": ApiScope.ADMIN.value,
            "sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
        }
    )
    app.include_router(api_router(store, [token], ManualClock(T0)))
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    body: dict[str, Any] = {"matchers": {"target": "~("}, "duration": "1h", "comment": "CHG-1"}

    refused = client.post("/api/v1/silences", json=body, headers=headers)
    backtracking = client.post(
        "/api/v1/silences",
        json={**body, "matchers": {"subject": "~(a+)+$"}},
        headers=headers,
    )
    accepted = client.post(
        "/api/v1/silences",
        json={**body, "matchers": {"target": "~pay.*"}},
        headers=headers,
    )

    assert refused.status_code == 422
    assert "target=~(: invalid regex" in refused.text
    assert backtracking.status_code == 422
    assert "repeat inside a repeat" in backtracking.text
    assert accepted.status_code == 201
    assert [s.matchers for s in AlertRecords(store).silences(T0)] == [{"target": "~pay.*"}]


@pytest.mark.e2e
def test_silence_add_refuses_a_bad_regex_with_exit_2_and_config_check_a_bad_window(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path / "apivigil.yaml", {"store": f"sqlite:///{tmp_path / 'a.db'}"})
    assert run_cli("db", "upgrade", "--config", str(path)).returncode == 0
    added = run_cli(
        "silence", "add", "--match", "target=~(", "--comment", "x", "--config", str(path)
    )
    window = {
        "name": "patching",
        "matchers": {"target": "~(a|ab)*c"},
        "weekly": {"days": ["sat"], "start": "02:00", "end": "04:00"},
    }
    bad_config = write_config(
        tmp_path / "bad.yaml",
        {
            "store": f"sqlite:///{tmp_path / 'a.db'}",
            "alerts": {"maintenance_windows": [window]},
        },
    )
    checked = run_cli("config", "check", str(bad_config))

    assert added.returncode == 2
    assert "target=~(: invalid regex" in added.stderr
    assert "Traceback" not in added.stderr
    assert run_cli("silence", "list", "--all", "--config", str(path)).stdout.count("~(") == 0
    assert checked.returncode == 2
    assert "alternatives inside a repeat" in checked.stdout + checked.stderr
    assert "Traceback" not in checked.stdout + checked.stderr


@pytest.mark.integration
def test_a_bad_silence_stored_earlier_is_skipped_and_the_other_alerts_still_flow(
    targets: SqlStore,
) -> None:
    clock = ManualClock(T0)
    record(targets, clock, "payments", tls10())
    bad = Silence("bad-regex", {"target": "~("}, T0, T0 + timedelta(days=1), "old", "v0.9")
    unreadable = Silence("unreadable", {"target": "x"}, T0, T0 + timedelta(days=1), "old", "?")
    for silence in (bad, unreadable):
        AlertRecords(targets).add_silence(
            silence, T0
        )  # the store does not validate: an older version's rows
    with targets.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE silence SET matchers = '{not json' WHERE id = :id"),
            {"id": "unreadable"},
        )
    hook = RecordingNotifier()
    loop = AlertLoop(targets, CONFIG, clock, notifiers={"hook": hook})

    first = loop.step()
    AlertRecords(targets).expire_silence(
        "bad-regex", "dana", clock.now()
    )  # expiring it is handled too
    clock.current += timedelta(seconds=1)
    loop.step()
    clock.current += timedelta(seconds=1)
    loop.step()

    assert first.delivered == 1
    assert [n.group_labels["target"] for n in hook.received] == ["payments"]
    # bad-regex: two ticks (active, then expired and handled); unreadable: every tick
    assert skipped(loop, targets, SkipKind.SILENCE) == 5
    assert loop.health.snapshot().tick_failures == 0


@pytest.mark.unit
def test_a_broken_route_is_skipped_without_resolving_its_groups_and_others_still_fire() -> None:
    config = alerts_config(
        {
            "routes": [
                {"name": "broken", "receivers": ["hook"], "group_wait": "0s", "continue": True},
                {"name": "fine", "receivers": ["hook"], "group_wait": "0s"},
            ]
        }
    )
    first = tick(config, [candidate("a")], [], [], T0)
    broken_match = RouteMatch.model_construct(severity="urgent")  # what validation refuses
    routes = (config.routes[0].model_copy(update={"match": broken_match}), config.routes[1])
    broken = config.model_copy(update={"routes": routes})

    later = tick(
        broken,
        [candidate("a"), candidate("b", target="billing")],
        first.upserts,
        [],
        T0 + timedelta(hours=1),
    )

    assert sorted(n.route for n in first.notifications) == ["broken", "fine"]
    assert [(s.kind, s.name) for s in later.skipped] == [(SkipKind.ROUTE, "broken")]
    assert not later.deleted, "a skipped route's groups must not resolve"
    assert all(n.kind.value != "resolved" for n in later.notifications)
    assert {n.route for n in later.notifications} == {"fine"}


@pytest.mark.unit
def test_a_maintenance_window_that_cannot_be_evaluated_is_skipped() -> None:
    config = alerts_config(group_wait="0s")
    window = config.model_validate(
        {
            **config.model_dump(by_alias=True),
            "maintenance_windows": [
                {"name": "w", "weekly": {"days": ["sat"], "start": "00:00", "end": "23:59"}}
            ],
        }
    )
    gone = window.maintenance_windows[0].model_copy(update={"timezone": "Nowhere/Gone"})
    config = window.model_copy(update={"maintenance_windows": (gone,)})

    result = tick(config, [candidate("a", severity=Severity.CRITICAL)], [], [], T0)

    assert [(s.kind, s.name) for s in result.skipped] == [(SkipKind.MAINTENANCE_WINDOW, "w")]
    assert len(result.notifications) == 1


@pytest.mark.integration
def test_a_template_that_fails_is_skipped_and_counted_and_the_other_receiver_is_served(
    targets: SqlStore, tmp_path: Path
) -> None:
    (tmp_path / "slack_finding.md.j2").write_text("{{ alert.no_such_field }}")
    config = AlertsConfig.model_validate(
        {
            "receivers": [
                {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/h", "secret": "s"}},
                {"name": "chat", "slack": {"webhook_url": "http://127.0.0.1:9/services/x"}},
            ],
            "routes": [{"receivers": ["hook", "chat"], "group_wait": "0s"}],
            "templates_dir": str(tmp_path),
        }
    )
    clock = ManualClock(T0)
    record(targets, clock, "payments", tls10())
    hook = RecordingNotifier()
    chat = build_notifier(config.receivers[1], config)
    loop = AlertLoop(targets, config, clock, notifiers={"hook": hook, "chat": chat})

    report = loop.step()

    assert (report.delivered, report.failed) == (1, 1)
    assert len(hook.received) == 1
    assert skipped(loop, targets, SkipKind.TEMPLATE) == 1
    (failed,) = AlertRecords(targets).outbox_entries(failed_only=True)
    assert "slack_finding.md.j2" in (failed.last_error or "")


@pytest.mark.integration
def test_the_alerting_metrics_report_while_the_store_is_down() -> None:
    down = SqlStore("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    loop = AlertLoop(down, CONFIG, ManualClock(T0), notifiers={"hook": RecordingNotifier()})
    loop._beat()
    loop._beat()
    registry = build_registry(down, alerting=loop.health)

    assert registry.get_sample_value("apivigil_store_up") == 0
    assert registry.get_sample_value("apivigil_alerting_tick_failures_total") == 2
    # ticking began at T0 and never succeeded since: the last tick stays where it began
    assert registry.get_sample_value("apivigil_alerting_last_tick_timestamp_seconds") == (
        T0.timestamp()
    )


@pytest.mark.integration
def test_a_process_that_does_not_tick_reports_no_last_tick(store: SqlStore) -> None:
    delivery_only = CONFIG.model_copy(update={"routes": ()})
    loop = AlertLoop(store, delivery_only, ManualClock(T0), notifiers={})
    loop.step()
    registry = build_registry(store, alerting=loop.health)

    assert registry.get_sample_value("apivigil_alerting_last_tick_timestamp_seconds") is None
    assert registry.get_sample_value("apivigil_alerting_tick_failures_total") == 0
    loop.reconfigure(CONFIG)  # elected leader: ticking begins now
    assert (
        build_registry(store, alerting=loop.health).get_sample_value(
            "apivigil_alerting_last_tick_timestamp_seconds"
        )
        == T0.timestamp()
    )
