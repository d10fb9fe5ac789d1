"""The `cluster:` section: validated offline, inert without a broker, and cluster code is
never imported by single-node commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.cluster.role import Role
from monitor.model import CheckKind
from monitor.settings import ConfigError, load_settings
from tests.support.daemon_process import write_config

PG = "postgresql+psycopg://apivigil@127.0.0.1/apivigil"


def load(tmp_path: Path, **config: Any) -> Any:
    return load_settings(write_config(tmp_path / "apivigil.yaml", config))


def problems(tmp_path: Path, **config: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **config)
    return [str(problem) for problem in caught.value.problems]


@pytest.mark.unit
def test_without_a_broker_apivigil_is_a_single_node(tmp_path: Path) -> None:
    assert not load(tmp_path).cluster.enabled


@pytest.mark.unit
def test_a_broker_with_a_sqlite_store_is_refused_with_a_readable_reason(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, store="sqlite:///x.db", cluster={"broker": "redis://127.0.0.1"})
    assert "cluster.broker needs a PostgreSQL store" in problem


@pytest.mark.unit
def test_only_redis_and_rabbitmq_brokers_are_accepted(tmp_path: Path) -> None:
    (problem,) = problems(tmp_path, store=PG, cluster={"broker": "kafka://127.0.0.1"})
    assert "cluster: broker: use a redis:// or rediss:// or amqp:// or amqps:// URL" in problem


@pytest.mark.unit
def test_rabbitmq_needs_a_redis_for_the_per_host_limit_or_no_limit(tmp_path: Path) -> None:
    broker = "amqp://guest:guest@127.0.0.1:5672/"
    (problem,) = problems(tmp_path, store=PG, cluster={"broker": broker})
    assert "politeness.per_host needs Redis" in problem
    settings = load(
        tmp_path, store=PG, cluster={"broker": broker, "politeness": {"per_host": None}}
    )
    assert settings.cluster.politeness_redis_url is None


@pytest.mark.unit
def test_the_broker_url_may_come_from_a_file_and_is_never_shown(tmp_path: Path) -> None:
    secret = tmp_path / "broker"
    secret.write_text("redis://:s3cret@127.0.0.1:6379/0\n")
    settings = load(tmp_path, store=PG, cluster={"broker_file": str(secret)})
    assert settings.cluster.broker_url == "redis://:s3cret@127.0.0.1:6379/0"
    assert settings.cluster.politeness_redis_url == settings.cluster.broker_url
    assert "s3cret" not in repr(settings)


@pytest.mark.unit
def test_time_limits_and_retries_are_set_per_check_kind(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        store=PG,
        cluster={
            "broker": "redis://127.0.0.1",
            "checks": {"tls_posture": {"time_limit": "10m", "max_retries": 1}},
        },
    )
    assert settings.cluster.limits(CheckKind.TLS_POSTURE).max_retries == 1
    assert settings.cluster.limits(CheckKind.TLS_POSTURE).time_limit.total_seconds() == 600
    assert settings.cluster.limits(CheckKind.CERT_EXPIRY).max_retries == 3


@pytest.mark.unit
def test_fencing_must_allow_at_least_two_heartbeats(tmp_path: Path) -> None:
    (problem,) = problems(
        tmp_path,
        store=PG,
        cluster={
            "broker": "redis://127.0.0.1",
            "election": {"heartbeat": "2s", "fence_after": "3s"},
        },
    )
    assert "fence_after must be at least two heartbeats" in problem


@pytest.mark.unit
def test_roles_are_the_words_readyz_reports() -> None:
    assert [role.value for role in Role] == ["single", "leader", "follower", "worker"]


@pytest.mark.integration
@pytest.mark.parametrize("module", ["monitor.cli", "monitor.daemon", "monitor.settings"])
def test_single_node_code_never_imports_dramatiq_redis_or_the_cluster(module: str) -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, {module}; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('dramatiq', 'redis', 'pika') "
            "or m.startswith('monitor.cluster.') and m != 'monitor.cluster.config'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"
