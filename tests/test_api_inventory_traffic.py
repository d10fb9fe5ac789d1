"""Shadow and zombie endpoints people can act on (issue 28): realistic generated access logs in
combined, common and JSON format across copytruncate and create rotations, read by the real
check through the real runner and store; the expected shadow and zombie templates are stated
exactly. Plus: logs that cannot be trusted say so, and a 20,000-path scan drops nothing real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from checks.api_inventory.params import ApiInventoryParams
from checks.egress import EgressPolicy
from monitor.baselines import accept
from monitor.model import CheckKind, CheckRun, Finding, FindingStatus, RunStatus, Severity, Target
from monitor.runner import CheckJob, Runner
from monitor.store.interface import FindingQuery, HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.api_traffic import (
    IGNORE_RULES,
    PATHS_A,
    PATHS_B,
    SHADOW_AUTH,
    SHADOW_SERVED,
    ZOMBIES_DEPRECATED,
    ZOMBIES_REMOVED,
    Line,
    Traffic,
    append,
    precision_recall,
    rotate,
    spec,
)
from tests.support.clocks import ManualClock
from tests.support.http_servers import Reply, ScriptedHttpServer

pytestmark = pytest.mark.integration

STRICT = HysteresisPolicy(open_after=1, resolve_after=1)
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Shop:
    """The spec server, one access log and the check run against them."""

    def __init__(
        self, store: SqlStore, web: ScriptedHttpServer, log: Path, **log_config: Any
    ) -> None:
        self.store, self.web, self.log = store, web, log
        self.clock = ManualClock(START)
        self.params = ApiInventoryParams.model_validate(
            {
                "spec_path": "/openapi.json",
                "access_logs": [{"path": str(log), **log_config}],
                "ignore": IGNORE_RULES,
            }
        )
        self.publish(PATHS_A)
        log.write_text("")

    def publish(self, paths: dict[str, Any]) -> None:
        self.web.replies["/openapi.json"] = Reply(
            200, {"Content-Type": "application/json"}, spec(paths)
        )

    def run(self, advance: timedelta = timedelta(hours=1)) -> CheckRun:
        self.clock.current += advance
        job = CheckJob(
            CheckKind.API_INVENTORY,
            Target("shop", url=self.web.url),
            self.params,
            timedelta(seconds=60),
        )
        run = Runner(clock=self.clock, history=self.store, egress=EgressPolicy()).run(job)
        assert run.status is RunStatus.OK, run.error_message
        self.store.record(run, STRICT)
        return run

    def open_findings(self) -> list[Finding]:
        query = FindingQuery(target="shop", statuses=frozenset({FindingStatus.OPEN}))
        return list(self.store.findings(query))

    def subjects(self, rule: str) -> set[str]:
        prefix = {"INVENTORY-SHADOW-ENDPOINT": "shadow|", "INVENTORY-ZOMBIE-ENDPOINT": "zombie|"}
        return {
            f.subject.removeprefix(prefix.get(rule, ""))
            for f in self.open_findings()
            if f.rule_id == rule
        }


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[SqlStore]:
    store = SqlStore(sqlite_url)
    store.upgrade_schema()
    yield store
    store.close()


def observation(run: CheckRun, name: str, **labels: str) -> float | None:
    assert run.output is not None
    for item in run.output.observations:
        if item.name == name and all(item.labels.get(k) == v for k, v in labels.items()):
            return item.value
    return None


@pytest.mark.parametrize("log_format", ["combined", "common", "json"])
@pytest.mark.parametrize("rotation", ["copytruncate", "create"])
def test_realistic_traffic_gives_exactly_the_real_shadow_and_zombie_endpoints(
    sqlite_store: SqlStore,
    web: ScriptedHttpServer,
    tmp_path: Path,
    log_format: str,
    rotation: str,
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log, format=log_format)
    traffic = Traffic(seed=28)
    append(log, traffic.batch(START, 100, removed=False), log_format)
    shop.run()  # the first inventory becomes the baseline

    # Given traffic across a rotation while the spec still documents every operation
    append(log, traffic.batch(START + timedelta(hours=1), 400, removed=False), log_format)
    rotate(log, rotation)
    append(
        log, traffic.batch(START + timedelta(hours=1, minutes=30), 400, removed=False), log_format
    )
    shop.run()
    # and a release that removes two operations, accepted by a person
    shop.publish(PATHS_B)
    append(log, traffic.batch(START + timedelta(hours=2), 400, removed=True), log_format)
    shop.run()
    accept(
        sqlite_store, CheckKind.API_INVENTORY, "shop", ["inventory"], "v2", "erin", shop.clock.now()
    )
    # When clients keep calling the removed operations, across another rotation
    append(log, traffic.batch(START + timedelta(hours=3), 400, removed=True), log_format)
    rotate(log, rotation)
    append(
        log, traffic.batch(START + timedelta(hours=3, minutes=30), 800, removed=True), log_format
    )
    last = shop.run()

    # Then the open findings are exactly the real shadow and zombie endpoints
    shadow = shop.subjects("INVENTORY-SHADOW-ENDPOINT")
    zombie = shop.subjects("INVENTORY-ZOMBIE-ENDPOINT")
    assert shadow == SHADOW_SERVED | SHADOW_AUTH
    assert zombie == ZOMBIES_DEPRECATED | ZOMBIES_REMOVED
    by_subject = {f.subject: f for f in shop.open_findings()}
    assert {s for s in shadow if by_subject[f"shadow|{s}"].severity is Severity.LOW} == SHADOW_AUTH
    assert by_subject["zombie|GET /users/{}/export"].severity is Severity.HIGH
    avatar = by_subject["shadow|PUT /users/{param}/avatar"].evidence
    assert "/v1/users/{param}/avatar" in avatar  # one endpoint with and without the base path
    assert re.search(r"(e\.g\. |, )/users/\{param\}/avatar", avatar)
    assert re.search(r"\d{2}", avatar.split("e.g.")[1].split("(")[0]) is None  # no user id
    assert not {f.rule_id for f in shop.open_findings()} & {"INVENTORY-TRAFFIC-UNRELIABLE"}
    # and refused scanner traffic is one aggregated number, no finding per path
    assert (observation(last, "inventory_unmatched_requests_total", status_class="4xx") or 0) > 100
    assert observation(last, "inventory_operations", state="documented") == 38  # 39 - deprecated
    assert observation(last, "inventory_operations", state="shadow") == len(SHADOW_SERVED)
    assert observation(last, "inventory_traffic_unreliable", log=str(log), reason="stale") == 0
    snapshot = sqlite_store.latest_snapshot(CheckKind.API_INVENTORY, "shop")
    assert snapshot is not None
    top = {(u["method"], u["path"]) for u in snapshot["traffic"]["unmatched_top"]}
    assert {("GET", "/.env"), ("CONNECT", "www.google.com:443"), ("PRI", "*")} <= top

    # And they stay open while the traffic continues
    append(log, traffic.batch(START + timedelta(hours=4), 400, removed=True), log_format)
    shop.run()
    assert shop.subjects("INVENTORY-ZOMBIE-ENDPOINT") == ZOMBIES_DEPRECATED | ZOMBIES_REMOVED

    shadow_p, shadow_r = precision_recall(shadow, SHADOW_SERVED | SHADOW_AUTH)
    zombie_p, zombie_r = precision_recall(zombie, ZOMBIES_DEPRECATED | ZOMBIES_REMOVED)
    print(
        f"shadow precision/recall: {shadow_p:.2f}/{shadow_r:.2f}, "
        f"zombie precision/recall: {zombie_p:.2f}/{zombie_r:.2f} ({log_format}, {rotation})"
    )


def test_two_rotations_between_reads_are_reported_not_silently_lost(
    sqlite_store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log)
    traffic = Traffic(seed=1)
    append(log, traffic.batch(START, 50, removed=False), "combined")
    shop.run()

    # rotated twice before the next read: what was not read yet is in access.log.2
    append(log, traffic.batch(START + timedelta(hours=1), 20, removed=False), "combined")
    rotate(log, "create")
    append(log, traffic.batch(START + timedelta(hours=2), 20, removed=False), "combined")
    (tmp_path / "access.log.1").rename(tmp_path / "access.log.2")
    rotate(log, "create")
    append(log, traffic.batch(START + timedelta(hours=3), 20, removed=False), "combined")
    run = shop.run(timedelta(hours=3))

    unreliable = [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]
    assert [f.subject for f in unreliable] == [f"traffic|{log}"]
    assert "lines were lost" in unreliable[0].evidence
    assert observation(run, "inventory_traffic_unreliable", log=str(log), reason="rotation_gap")


def test_copytruncate_of_a_log_last_read_empty_is_reported_not_silently_lost(
    sqlite_store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log)
    shop.run()  # the log is empty: the cursor sits at its start, same inode after truncation
    append(log, Traffic(seed=5).batch(START, 30, removed=False), "combined")
    rotate(log, "copytruncate")
    append(log, Traffic(seed=6).batch(START + timedelta(hours=1), 10, removed=False), "combined")

    run = shop.run()

    (finding,) = [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]
    assert "lines were lost" in finding.evidence
    assert observation(run, "inventory_traffic_unreliable", log=str(log), reason="rotation_gap")
    shop.run()  # a read without another rotation adds nothing new to report
    assert (
        observation(shop.run(), "inventory_traffic_unreliable", log=str(log), reason="stale") == 0
    )


def test_a_log_in_another_format_is_unreliable_not_ok_with_no_findings(
    sqlite_store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log)  # configured: combined
    append(log, Traffic(seed=2).batch(START, 100, removed=False), "json")

    run = shop.run()

    (finding,) = [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]
    assert "100% of the lines last read are not combined log lines" in finding.evidence
    assert observation(run, "inventory_traffic_unreliable", log=str(log), reason="unparseable")


def test_a_log_that_stopped_growing_past_stale_after_is_unreliable(
    sqlite_store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log, stale_after="6h")
    append(log, Traffic(seed=3).batch(START, 30, removed=False), "combined")
    shop.run()
    shop.run(timedelta(hours=5))
    assert not [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]

    run = shop.run(timedelta(hours=2))

    (finding,) = [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]
    assert "no new line since" in finding.evidence
    assert observation(run, "inventory_traffic_unreliable", log=str(log), reason="stale")
    append(log, Traffic(seed=4).batch(START + timedelta(hours=8), 5, removed=False), "combined")
    shop.run()
    assert not [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]


def test_a_20000_path_scan_drops_no_served_endpoint_requested_once(
    sqlite_store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log)
    scan = [Line("GET", f"/scan/{n}/x{n}.php", 404, START) for n in range(20_000)]
    once = [
        Line("GET", "/v1/internal/flags", 200, START + timedelta(seconds=1)),
        Line("DELETE", "/v1/cache/42", 200, START + timedelta(seconds=2)),
    ]
    append(log, scan[:10_000] + once + scan[10_000:], "combined")

    run = shop.run()

    assert shop.subjects("INVENTORY-SHADOW-ENDPOINT") == {
        "GET /internal/flags",
        "DELETE /cache/{param}",
    }
    assert observation(run, "inventory_unmatched_requests_total", status_class="4xx") == 20_000
    assert (observation(run, "inventory_templates_evicted_total") or 0) > 10_000
    assert not [f for f in shop.open_findings() if f.rule_id == "INVENTORY-TRAFFIC-UNRELIABLE"]
    snapshot = sqlite_store.latest_snapshot(CheckKind.API_INVENTORY, "shop")
    assert snapshot is not None
    assert len(json.dumps(snapshot["traffic"])) < 20_000  # a top-N, not every scanned path


def test_ignore_rules_hide_until_they_expire(
    sqlite_store: SqlStore, web: ScriptedHttpServer, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    shop = Shop(sqlite_store, web, log)
    shop.params = shop.params.model_copy(
        update={
            "ignore": ApiInventoryParams.model_validate(
                {
                    "spec_path": "/openapi.json",
                    "ignore": [
                        {"path": "/healthz", "reason": "LB"},
                        {"path": "/debug/*", "reason": "until the fix", "until": "2026-12-01"},
                    ],
                }
            ).ignore
        }
    )
    append(
        log,
        [Line("GET", "/healthz", 200, START), Line("GET", "/debug/vars", 200, START)],
        "combined",
    )
    shop.run()
    assert shop.subjects("INVENTORY-SHADOW-ENDPOINT") == set()

    shop.run(timedelta(days=1, hours=16))  # 2026-12-02: the debug rule has expired

    assert shop.subjects("INVENTORY-SHADOW-ENDPOINT") == {"GET /debug/vars"}
