"""deploy/prometheus and deploy/grafana: promtool accepts the config and the rules, the rule
unit tests pass, and the files agree with each other and with the metric table."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import JSON_DIR
from monitor.metric_names import SAMPLE_NAMES

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES = PROMETHEUS_DIR / "rules" / "apivigil.rules.yml"
RULE_TESTS = PROMETHEUS_DIR / "tests" / "apivigil.rules.test.yml"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(tool).exists():
        pytest.fail("promtool is missing: run tests/install-dashboard-test-deps.sh")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120, check=False)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.integration
def test_promtool_checks_the_scrape_config_and_its_rule_files() -> None:
    checked = promtool("check", "config", str(CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


@pytest.mark.integration
def test_promtool_checks_the_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@pytest.mark.integration
def test_the_rule_unit_tests_pass() -> None:
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.unit
def test_every_alert_rule_has_a_unit_test_and_uses_exported_metrics() -> None:
    rules = [rule for group in _yaml(RULES)["groups"] for rule in group["rules"]]
    alerts = {rule["alert"] for rule in rules}
    assert {
        "ApivigilCertificateExpiring",
        "ApivigilCheckFailing",
        "ApivigilPostureDrop",
        "ApivigilNotificationsFailing",
        "ApivigilAlertingStalled",
        "ApivigilAlertingNotTicking",
    } <= alerts
    tested = {
        case["alertname"]
        for test in _yaml(RULE_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == alerts
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        used = set(re.findall(r"\bapivigil_[A-Za-z0-9_]+", rule["expr"]))
        assert used <= set(SAMPLE_NAMES), f"{rule['alert']}: {used - set(SAMPLE_NAMES)}"


@pytest.mark.unit
def test_grafana_provisioning_points_at_the_dashboards_and_the_prometheus() -> None:
    (source,) = _yaml(PROVISIONING / "datasources" / "apivigil.yaml")["datasources"]
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    scrape = {job["job_name"]: job for job in _yaml(CONFIG)["scrape_configs"]}["apivigil"]
    # $__rate_interval is sized from timeInterval: it must be the scrape interval
    assert source["jsonData"]["timeInterval"] == scrape["scrape_interval"]
    (provider,) = _yaml(PROVISIONING / "dashboards" / "apivigil.yaml")["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "apivigil"
    assert provider["options"]["path"].startswith("/")
    text = (PROVISIONING / "dashboards" / "apivigil.yaml").read_text()
    assert "dashboards/json" in text
    assert any(JSON_DIR.glob("*.json"))
