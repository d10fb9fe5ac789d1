"""What auth_posture remembers between runs lives in the store: a key's first sighting (its
rotation age, in the run's snapshot) and the last rate-limit burst (its claim and its result).
A restart of the daemon (a new store connection) forgets neither, so the burst stays once a
day."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from checks.auth_posture.params import AuthPostureParams
from checks.egress import EgressPolicy
from checks.interface import CheckContext
from checks.registry import create_check
from monitor.metrics import build_registry
from monitor.model import CheckKind, CheckRun, FindingStatus, RunStatus, Target
from monitor.report.build import build_report_data
from monitor.report.formats import ReportFormat
from monitor.report.model import ReportPeriod
from monitor.report.render import render_report
from monitor.runner import CheckJob, Runner
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.auth_servers import Answer, RecordingServer, Seen
from tests.support.clocks import ManualClock
from tests.support.jwk_keys import rsa_jwk, rsa_key

pytestmark = pytest.mark.integration

STRICT = HysteresisPolicy(open_after=1, resolve_after=1)
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ED_KEY = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "paths": {"/status": {"get": {"responses": {"200": {"description": "ok"}}}}},
}


class Daemon:
    """The runner and a store connection: `restart()` opens a new one on the same database."""

    def __init__(self, store_url: str, target: Target, params: dict[str, Any]) -> None:
        self.url = store_url
        self.store = SqlStore(store_url)
        self.store.upgrade_schema()
        self.clock = ManualClock(START)
        self.target = target
        self.params = AuthPostureParams.model_validate(params)
        self.store.sync_targets([target], START)

    def restart(self) -> None:
        self.store.close()
        self.store = SqlStore(self.url)

    def run(self) -> CheckRun:
        job = CheckJob(CheckKind.AUTH_POSTURE, self.target, self.params, timedelta(seconds=60))
        run = Runner(clock=self.clock, history=self.store, egress=EgressPolicy()).run(job)
        assert run.status is RunStatus.OK, run.error_message
        self.store.record(run, STRICT)
        return run

    def open_rules(self) -> set[tuple[str, str]]:
        query = FindingQuery(target=self.target.name, statuses=frozenset({FindingStatus.OPEN}))
        return {(f.rule_id, f.subject) for f in self.store.findings(query)}


@pytest.fixture
def jwks() -> Iterator[RecordingServer]:
    body = json.dumps({"keys": [ED_KEY | {"kid": "main", "alg": "Ed25519", "use": "sig"}]})
    with RecordingServer(lambda seen: Answer(200, {}, body.encode())) as server:
        yield server


def test_a_key_older_than_a_year_becomes_stale_and_its_age_survives_a_restart(
    store_url: str, jwks: RecordingServer
) -> None:
    daemon = Daemon(store_url, Target("idp"), {"jwks_url": f"{jwks.url}/jwks.json"})
    first = daemon.run()
    assert first.output is not None
    assert [o.value for o in first.output.observations if o.name == "jwks_key_age_seconds"] == [0]

    daemon.restart()
    daemon.clock.current = START + timedelta(days=366)
    later = daemon.run()

    assert later.output is not None
    (age,) = [o for o in later.output.observations if o.name == "jwks_key_age_seconds"]
    assert age.labels == {"kid": "main"}
    assert age.value == timedelta(days=366).total_seconds()
    assert ("JWKS-ROTATION-STALE", "kid=main") in daemon.open_rules()
    daemon.store.close()


class Throttling:
    """An API that answers 429 (with Retry-After) from the `limit`+1-th GET of /status on;
    limit None never throttles."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.bursts = 0

    def __call__(self, seen: Seen) -> Answer:
        if seen.path == "/openapi.json":
            return Answer(200, {"Content-Type": "application/json"}, json.dumps(SPEC).encode())
        self.bursts += seen.probe == "rate-limit-burst"
        if self.limit is not None and self.bursts > self.limit:
            return Answer(429, {"Retry-After": "30"})
        return Answer(200, {"Content-Type": "application/json"}, b'{"status": "ok"}')


def burst_requests(server: RecordingServer) -> int:
    return sum(1 for seen in server.requests if seen.probe == "rate-limit-burst")


def test_an_unthrottled_burst_is_a_finding_sent_at_most_once_a_day_even_across_restarts(
    store_url: str,
) -> None:
    with RecordingServer(Throttling(None)) as api:
        params = {"spec_path": "/openapi.json", "rate_limit_burst": {"path": "/status"}}
        daemon = Daemon(store_url, Target("shop", url=api.url), params)

        daemon.run()
        assert burst_requests(api) == 30
        assert {s.method for s in api.requests} == {"GET"}
        assert ("RATELIMIT-NOT-OBSERVED", "/status") in daemon.open_rules()

        daemon.restart()
        daemon.clock.current = START + timedelta(hours=23, minutes=59)
        second = daemon.run()
        assert burst_requests(api) == 30  # no second burst within the day, restart or not
        assert ("RATELIMIT-NOT-OBSERVED", "/status") in daemon.open_rules()  # carried
        assert second.output is not None
        assert second.output.snapshot is not None
        assert second.output.snapshot["burst_ran"] is False

        daemon.clock.current = START + timedelta(days=1, minutes=1)
        daemon.run()
        assert burst_requests(api) == 60
        daemon.store.close()


def test_a_burst_stops_at_the_first_429_and_a_throttling_api_has_no_finding(
    store_url: str,
) -> None:
    with RecordingServer(Throttling(5)) as api:
        params = {"spec_path": "/openapi.json", "rate_limit_burst": {"path": "/status"}}
        daemon = Daemon(store_url, Target("shop", url=api.url), params)

        run = daemon.run()

        assert burst_requests(api) == 6
        assert run.output is not None
        assert run.output.snapshot is not None
        assert run.output.snapshot["burst"]["throttled_after"] == 6
        assert run.output.snapshot["burst"]["retry_after"] is True
        assert not {rule for rule, _ in daemon.open_rules() if rule.startswith("RATELIMIT-")}
        daemon.store.close()


def test_a_burst_is_refused_for_an_operation_the_spec_does_not_document(store_url: str) -> None:
    with RecordingServer(Throttling(None)) as api:
        params = {"spec_path": "/openapi.json", "rate_limit_burst": {"path": "/admin"}}
        daemon = Daemon(store_url, Target("shop", url=api.url), params)
        job = CheckJob(CheckKind.AUTH_POSTURE, daemon.target, daemon.params, timedelta(seconds=60))

        run = Runner(clock=daemon.clock, history=daemon.store, egress=EgressPolicy()).run(job)

        assert run.status is RunStatus.ERROR
        assert "rate_limit_burst.path /admin is not a documented GET operation" in (
            run.error_message or ""
        )
        assert burst_requests(api) == 0
        daemon.store.close()


def test_more_than_30_burst_requests_cannot_be_configured() -> None:
    with pytest.raises(ValueError, match="less than or equal to 30"):
        AuthPostureParams.model_validate(
            {"spec_path": "/openapi.json", "rate_limit_burst": {"path": "/s", "requests": 31}}
        )


def test_findings_reach_metrics_and_the_oscal_report_with_their_nist_controls(
    store_url: str,
) -> None:
    key_set = json.dumps({"keys": [rsa_jwk(rsa_key(1024), kid="old-rsa", alg="RS256")]})
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Shop", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/orders": {"get": {"responses": {"200": {"description": "ok"}}}},
            "/admin": {"get": {"responses": {"200": {"description": "ok"}}}},
        },
    }

    def route(seen: Seen) -> Answer:
        documents = {"/openapi.json": json.dumps(spec), "/jwks.json": key_set}
        if seen.path in documents:
            return Answer(200, {"Content-Type": "application/json"}, documents[seen.path].encode())
        if seen.path == "/orders":
            return Answer(200, {"Content-Type": "application/json"}, b'[{"id": 1}]')
        return Answer(401, {"WWW-Authenticate": "Bearer"}, b"")

    with RecordingServer(route) as api:
        params = {"spec_path": "/openapi.json", "jwks_url": f"{api.url}/jwks.json"}
        daemon = Daemon(store_url, Target("shop", url=api.url), params)
        daemon.run()

    registry = build_registry(daemon.store)
    for state, count in (("enforced", 1), ("not_enforced", 1), ("skipped", 0)):
        labels = {"target": "shop", "state": state}
        assert registry.get_sample_value("apivigil_auth_operations", labels) == count
    assert registry.get_sample_value("apivigil_jwks_keys", {"target": "shop", "alg": "RS256"}) == 1
    assert (
        registry.get_sample_value(
            "apivigil_jwks_key_age_seconds", {"target": "shop", "kid": "old-rsa"}
        )
        == 0
    )
    period = ReportPeriod.ending(daemon.clock.now() + timedelta(minutes=1), timedelta(days=1))
    document = json.loads(
        render_report(build_report_data(daemon.store, period, []), ReportFormat.OSCAL)
    )
    (result,) = document["assessment-results"]["results"]
    controls = {
        finding["title"].split(":")[0]: {
            prop["value"] for prop in finding.get("props", []) if prop["name"] == "control"
        }
        for finding in result["findings"]
    }
    assert {"NIST SP 800-53 AC-3", "NIST SP 800-53 IA-2"} <= controls["AUTH-NOT-ENFORCED"]
    assert {
        "NIST SP 800-53 IA-5",
        "NIST SP 800-53 SC-12",
        "NIST SP 800-53 SC-13",
    } <= controls["JWKS-WEAK-KEY"]
    daemon.store.close()


def test_a_budget_smaller_than_the_api_covers_it_over_runs_and_an_open_operation_stays_open(
    store_url: str,
) -> None:
    ok = {"responses": {"200": {"description": "ok"}}}
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Shop", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": {f"/{name}": {"get": ok} for name in ("a", "b", "c", "d", "e", "f")},
    }

    def route(seen: Seen) -> Answer:
        if seen.path == "/openapi.json":
            return Answer(200, {}, json.dumps(spec).encode())
        if seen.path == "/f":
            return Answer(200, {"Content-Type": "application/json"}, b'{"secret": 1}')
        return Answer(401, {"WWW-Authenticate": "Bearer"})

    with RecordingServer(route) as api:
        params = {"spec_path": "/openapi.json", "max_requests": 4}  # two operations a run
        daemon = Daemon(store_url, Target("shop", url=api.url), params)
        probed: list[list[str]] = []
        for hours in range(4):
            daemon.clock.current = START + timedelta(hours=hours)
            before = len(api.requests)
            daemon.run()
            probed.append(
                sorted({s.path for s in api.requests[before:] if s.probe == "auth-enforced"})
            )
            if hours == 2:
                daemon.restart()

        assert probed == [["/a", "/b"], ["/c", "/d"], ["/e", "/f"], ["/a", "/f"]]
        assert ("AUTH-NOT-ENFORCED", "GET /f") in daemon.open_rules()
        daemon.store.close()


def test_without_a_store_the_burst_is_not_sent_and_the_run_says_so() -> None:
    with RecordingServer(Throttling(None)) as api:
        params = AuthPostureParams.model_validate(
            {"spec_path": "/openapi.json", "rate_limit_burst": {"path": "/status"}}
        )
        context = CheckContext(
            started_at=START, deadline=time.monotonic() + 30, egress=EgressPolicy()
        )

        output = create_check(CheckKind.AUTH_POSTURE).run(
            Target("shop", url=api.url), params, context
        )

    assert burst_requests(api) == 0
    assert [(f.rule_id, f.severity.value) for f in output.findings] == [
        ("AUTH-NO-SECURED-OPERATIONS", "low"),  # this spec's /status is public
        ("RATELIMIT-BURST-NOT-SENT", "info"),
    ]


class HangingBurst(Throttling):
    """Never throttles; the `hang_at`-th burst request waits until `release` is set."""

    def __init__(self, hang_at: int) -> None:
        super().__init__(None)
        self.hang_at = hang_at
        self.release = threading.Event()

    def __call__(self, seen: Seen) -> Answer:
        answer = super().__call__(seen)
        if seen.probe == "rate-limit-burst" and self.bursts == self.hang_at:
            self.release.wait(30)
        return answer


def test_a_run_that_bursts_and_then_times_out_does_not_let_the_next_run_burst_again(
    store_url: str,
) -> None:
    route = HangingBurst(hang_at=3)
    with RecordingServer(route) as api:
        params = {
            "spec_path": "/openapi.json",
            "rate_limit_burst": {"path": "/status"},
            "network_timeout": "20s",
        }
        daemon = Daemon(store_url, Target("shop", url=api.url), params)
        job = CheckJob(CheckKind.AUTH_POSTURE, daemon.target, daemon.params, timedelta(seconds=2))
        timed_out = Runner(clock=daemon.clock, history=daemon.store, egress=EgressPolicy()).run(job)
        daemon.store.record(timed_out, STRICT)
        route.release.set()
        assert timed_out.status is RunStatus.TIMEOUT
        assert burst_requests(api) == 3

        daemon.restart()
        daemon.clock.current = START + timedelta(hours=1)
        second = daemon.run()
        assert burst_requests(api) == 3  # the burst of the run that timed out counted
        assert second.output is not None
        (told,) = [f for f in second.output.findings if f.rule_id == "RATELIMIT-BURST-NOT-SENT"]
        assert f"claimed at {START.isoformat()} by a run that did not finish" in told.evidence
        assert (START + timedelta(days=1)).isoformat() in told.evidence

        daemon.clock.current = START + timedelta(days=1, minutes=1)
        daemon.run()
        assert burst_requests(api) == 33
        assert {s.method for s in api.requests} == {"GET"}
        daemon.store.close()


def test_the_burst_claim_is_granted_once_a_day_per_target(store_url: str) -> None:
    store = SqlStore(store_url)
    store.upgrade_schema()
    claims = [
        store.claim_action(CheckKind.AUTH_POSTURE, "shop", "rate_limit_burst", START, DAY)
        for _ in range(2)
    ]
    later = store.claim_action(CheckKind.AUTH_POSTURE, "shop", "rate_limit_burst", START + DAY, DAY)
    other_target = store.claim_action(CheckKind.AUTH_POSTURE, "idp", "rate_limit_burst", START, DAY)
    store.close()

    assert claims == [None, START]
    assert later is None  # a day later the claim is granted again
    assert other_target is None


@pytest.mark.parametrize("claimed_before", [None, START - DAY])
def test_runs_claiming_the_burst_at_the_same_moment_let_exactly_one_send_it(
    store_url: str, claimed_before: datetime | None
) -> None:
    store = SqlStore(store_url)
    store.upgrade_schema()
    if claimed_before is not None:  # the row exists and is due: the UPDATE path races
        store.claim_action(CheckKind.AUTH_POSTURE, "shop", "rate_limit_burst", claimed_before, DAY)
    ready = threading.Barrier(6)
    results: list[datetime | None] = []

    def claim() -> None:
        ready.wait()
        results.append(
            store.claim_action(CheckKind.AUTH_POSTURE, "shop", "rate_limit_burst", START, DAY)
        )

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()

    assert sorted(results, key=lambda r: r is not None) == [None] + [START] * 5


class Unanswered(HangingBurst):
    """Never throttles; from the `hang_at`-th burst request on, answers nothing until released."""

    def __call__(self, seen: Seen) -> Answer:
        answer = Throttling.__call__(self, seen)
        if seen.probe == "rate-limit-burst" and self.bursts >= self.hang_at:
            self.release.wait(30)
        return answer


def test_a_burst_that_stops_getting_answers_is_told_not_stored_silently(store_url: str) -> None:
    route = Unanswered(hang_at=4)
    with RecordingServer(route) as api:
        params = {
            "spec_path": "/openapi.json",
            "rate_limit_burst": {"path": "/status"},
            "network_timeout": "1s",
        }
        daemon = Daemon(store_url, Target("shop", url=api.url), params)

        run = daemon.run()
        route.release.set()

        assert burst_requests(api) == 4
        assert run.output is not None
        (told,) = [f for f in run.output.findings if f.rule_id.startswith("RATELIMIT-BURST")]
        assert (told.rule_id, told.subject) == ("RATELIMIT-BURST-INCOMPLETE", "/status")
        assert "stopped after 4 request(s) without a 429" in told.evidence
        assert ("RATELIMIT-NOT-OBSERVED", "/status") not in daemon.open_rules()
        daemon.store.close()


def test_a_burst_remembered_only_by_the_snapshot_still_counts_for_the_day(store_url: str) -> None:
    with RecordingServer(Throttling(None)) as api:
        params = {"spec_path": "/openapi.json", "rate_limit_burst": {"path": "/status"}}
        daemon = Daemon(store_url, Target("shop", url=api.url), params)
        daemon.run()
        with daemon.store.engine.begin() as connection:  # as in a store from before claims
            connection.execute(sa.text("DELETE FROM action_claim"))

        daemon.clock.current = START + timedelta(hours=2)
        daemon.run()

        assert burst_requests(api) == 30
        assert ("RATELIMIT-NOT-OBSERVED", "/status") in daemon.open_rules()
        daemon.store.close()
