"""Configuration: strict validation with key paths and lines, env overrides, secret files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.durations import format_duration, parse_duration
from monitor.jobs import scheduled_checks
from monitor.model import CheckKind
from monitor.settings import ConfigError, load_settings

pytestmark = pytest.mark.unit

GOOD = """\
store: sqlite:///x.db
defaults: {interval: 1h, timeout: 60s}
targets:
  - name: payments
    url: https://payments.example.test
    labels: {env: prod, team: payments}
    checks:
      cert_expiry:
        interval: 15m
        thresholds: {medium: 45d, high: 20d, critical: 10d}
  - name: billing
    url: billing.example.test:8443
    checks:
      cert_expiry: {}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "apivigil.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    return [str(p) for p in caught.value.problems]


def test_good_config_gives_effective_schedules(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    planned = {p.job.target.name: p for p in scheduled_checks(settings)}
    assert planned["payments"].interval == timedelta(minutes=15)
    assert planned["billing"].interval == timedelta(hours=1)
    assert planned["billing"].job.timeout == timedelta(seconds=60)
    assert planned["payments"].jitter == timedelta(seconds=45)  # 5% of 15m
    assert planned["payments"].job.target.labels == {"env": "prod", "team": "payments"}
    assert planned["payments"].job.check is CheckKind.CERT_EXPIRY


def test_unknown_key_is_named_with_its_path_and_line(tmp_path: Path) -> None:
    text = GOOD.replace("        interval: 15m\n", "        intervall: 15m\n")
    assert problems(tmp_path, text) == [
        "line 9: targets[0].checks.cert_expiry.intervall: unknown key"
    ]


def test_bad_duration_is_named(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("interval: 15m", "interval: soon"))
    assert len(found) == 1
    assert found[0].startswith("line 9: targets[0].checks.cert_expiry.interval: not a duration")


def test_wrong_type_and_unknown_check_are_both_reported(tmp_path: Path) -> None:
    text = GOOD.replace("labels: {env: prod, team: payments}", "labels: [prod]").replace(
        "      cert_expiry: {}", "      tls_magic: {}"
    )
    found = problems(tmp_path, text)
    assert any(p.startswith("line 6: targets[0].labels:") for p in found), found
    assert any(p == "line 14: targets[1].checks.tls_magic: unknown key" for p in found), found


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    assert problems(tmp_path, "store: a\nstore: b\n") == ["line 2: store: duplicate key"]


def test_duplicate_target_names_are_errors(tmp_path: Path) -> None:
    text = GOOD.replace("name: billing", "name: payments")
    assert any("used twice" in p for p in problems(tmp_path, text))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "targets:\n  - name: [unclosed\n")
    assert found.startswith("line 3: (top level): not valid YAML")


def test_bad_url_is_rejected(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("https://payments.example.test", "ftp://x"))
    assert found == [
        "line 5: targets[0].url: unsupported URL scheme 'ftp' in 'ftp://x' (use https://)"
    ]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml")


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIVIGIL_LISTEN", "127.0.0.1:9999")
    monkeypatch.setenv("APIVIGIL_DEFAULTS__TIMEOUT", "5s")
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.listen == "127.0.0.1:9999"
    assert settings.defaults.timeout == timedelta(seconds=5)


def test_bad_environment_value_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIVIGIL_LOG_LEVEL", "loud")
    found = problems(tmp_path, GOOD)
    assert len(found) == 1
    assert "APIVIGIL_LOG_LEVEL" in found[0]


def test_store_url_can_come_from_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "store-url"
    secret.write_text("postgresql+psycopg://apivigil:s3cret@db/apivigil\n")
    settings = load_settings(write(tmp_path, f"store_file: {secret}\n"))
    assert settings.store == "postgresql+psycopg://apivigil:s3cret@db/apivigil"


def test_unsafe_yaml_tags_are_rejected(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "store: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in found


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h30m", 5400), ("7d", 604800), ("250ms", 0.25), (30, 30)],
)
def test_durations_parse(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "soon", "10 parsecs", "5x", "1h-3m"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_durations_format_readably() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"


@pytest.mark.parametrize(
    "duration", ["999999999999d", "1e308", "9" * 400, 10**30, 1e308, "100000w", ".inf", ".nan"]
)
def test_a_duration_beyond_any_calendar_is_a_problem_naming_the_key(
    tmp_path: Path, duration: str | int | float
) -> None:
    shown = f'"{duration}"' if isinstance(duration, str) and duration[0] != "." else duration
    (found,) = problems(tmp_path, f"defaults:\n  interval: {shown}\n")
    assert found.startswith("line 2: defaults.interval: "), found


def test_yaml_nested_a_thousand_deep_is_refused_by_line(tmp_path: Path) -> None:
    flow = "targets: " + "[" * 990 + "]" * 990 + "\n"
    block = "targets:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(990))
    for text in (flow, block):
        (found,) = problems(tmp_path, text)
        assert "nested deeper than 64 levels" in found or "nesting depth" in found, found
        assert found.startswith("line "), found


def test_a_list_key_from_the_environment_that_is_not_json_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APIVIGIL_TARGETS", "payments,billing")
    (found,) = problems(tmp_path, GOOD)
    assert "APIVIGIL_TARGETS: not valid JSON" in found
    monkeypatch.setenv("APIVIGIL_TARGETS", "[" * 50_000 + "]" * 50_000)
    (found,) = problems(tmp_path, GOOD)
    assert "nested too deeply" in found


@pytest.mark.parametrize("key", ["store", "store_file"])
def test_a_store_url_with_a_port_that_is_not_a_number_is_a_problem_without_its_password(
    tmp_path: Path, key: str
) -> None:
    url = "postgresql+psycopg://apivigil:pw-Zt61@127.0.0.1:54x2/apivigil"
    value = url
    if key == "store_file":
        value = str(tmp_path / "store-url")
        Path(value).write_text(url + "\n")
    (found,) = problems(tmp_path, f"{key}: {value}\n")
    assert "the port of the store URL is not a number" in found, found
    assert found.startswith("line 1: "), found
    assert "pw-Zt61" not in found


def test_retention_has_defaults_and_refuses_evidence_shorter_than_raw(tmp_path: Path) -> None:
    retention = load_settings(write(tmp_path, GOOD)).retention
    assert (retention.raw, retention.evidence, retention.outbox) == (
        timedelta(days=30),
        timedelta(days=400),
        timedelta(days=30),
    )
    assert problems(tmp_path, GOOD + "retention:\n  raw: 90d\n  evidence: 30d\n") == [
        "line 15: retention: retention.evidence must be at least retention.raw"
    ]
    assert problems(tmp_path, GOOD + "retention:\n  raw: 1h\n") == [
        "line 16: retention.raw: Input should be greater than or equal to 1 day"
    ]
