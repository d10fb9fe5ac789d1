"""cert_expiry against real TLS servers on loopback, and hostile or broken inputs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from checks.cert_expiry.check import CertExpiryCheck
from checks.cert_expiry.params import CertExpiryParams
from checks.egress import EgressPolicy
from checks.registry import CHECKS
from monitor.certmaker import issue
from monitor.model import CheckKind, ErrorReason, RunStatus, Target
from monitor.runner import CheckJob, Runner
from tests.support.chains import Chain, ServeFactory
from tests.support.hostile_servers import (
    GarbageServer,
    HangUpThenGoneServer,
    ResettingServer,
    Tarpit,
)
from tests.support.ports import free_port


def run_job(target: Target, params: CertExpiryParams, timeout: float = 10):  # type: ignore[no-untyped-def]
    job = CheckJob(CheckKind.CERT_EXPIRY, target, params, timedelta(seconds=timeout))
    return Runner(egress=EgressPolicy()).run(job)


@pytest.mark.integration
def test_reads_the_whole_served_chain_with_positions(serve: ServeFactory, chain: Chain) -> None:
    leaf = chain.leaf("api.test", days_left=20)
    server = serve(leaf)
    run = run_job(Target("api", server.url), CertExpiryParams(server_name="api.test"))
    assert run.status is RunStatus.OK, run.error_message
    not_after = {
        o.labels["position"]: o.value
        for o in run.output.observations
        if o.name == "cert_not_after_timestamp_seconds"
    }
    assert not_after == {
        "leaf": leaf.certificate.not_valid_after_utc.timestamp(),
        "intermediate": chain.intermediate.certificate.not_valid_after_utc.timestamp(),
    }
    assert [(f.rule_id, f.severity.value) for f in run.output.findings] == [
        ("CERT-EXPIRES-SOON", "medium")
    ]


@pytest.mark.integration
def test_dates_are_read_from_expired_and_untrusted_certificates(
    serve: ServeFactory, chain: Chain
) -> None:
    self_signed_expired = issue(
        "old.test",
        not_before=time_ago(days=400),
        not_after=time_ago(days=35),
    )
    server = serve(self_signed_expired)
    run = run_job(Target("old", server.url), CertExpiryParams())
    assert run.status is RunStatus.OK, run.error_message
    assert {f.rule_id for f in run.output.findings} == {"CERT-EXPIRED"}


def time_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@pytest.mark.integration
def test_two_addresses_behind_one_name_with_different_certificates(
    serve: ServeFactory, chain: Chain
) -> None:
    port = free_port()
    first = chain.leaf("multi.test", days_left=200)
    second = chain.leaf("multi.test", days_left=100)
    serve(first, host="127.0.0.1", port=port)
    serve(second, host="127.0.0.2", port=port)
    params = CertExpiryParams(server_name="multi.test", addresses=("127.0.0.1", "127.0.0.2"))
    run = run_job(Target("multi", f"https://multi.test:{port}"), params)
    assert run.status is RunStatus.OK, run.error_message
    leaves = {
        o.labels["address"]: o.value
        for o in run.output.observations
        if o.name == "cert_not_after_timestamp_seconds" and o.labels["position"] == "leaf"
    }
    assert leaves == {
        "127.0.0.1": first.certificate.not_valid_after_utc.timestamp(),
        "127.0.0.2": second.certificate.not_valid_after_utc.timestamp(),
    }
    (mismatch,) = [f for f in run.output.findings if f.rule_id == "CERT-ADDRESS-MISMATCH"]
    assert "127.0.0.1" in mismatch.evidence
    assert "127.0.0.2" in mismatch.evidence


@pytest.mark.integration
def test_one_dead_address_of_two_is_reported_while_the_other_is_judged(
    serve: ServeFactory, chain: Chain
) -> None:
    port = free_port()
    serve(chain.leaf("half.test", days_left=3), host="127.0.0.1", port=port)
    params = CertExpiryParams(server_name="half.test", addresses=("127.0.0.1", "127.0.0.3"))
    run = run_job(Target("half", f"https://half.test:{port}"), params)
    assert run.status is RunStatus.OK, run.error_message
    assert {f.rule_id for f in run.output.findings} == {
        "CERT-EXPIRES-SOON",
        "CERT-ADDRESS-UNREACHABLE",
    }


@pytest.mark.integration
def test_tarpit_ends_within_the_connect_timeout_as_unreachable(tarpit: Tarpit) -> None:
    params = CertExpiryParams(connect_timeout=timedelta(seconds=1))
    started = time.monotonic()
    run = run_job(Target("pit", f"127.0.0.1:{tarpit.port}"), params, timeout=10)
    assert time.monotonic() - started < 5
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE)
    assert f"127.0.0.1:{tarpit.port}" in run.error_message
    assert "in time" in run.error_message


@pytest.mark.integration
def test_run_deadline_bounds_a_tarpit_even_with_a_long_connect_timeout(tarpit: Tarpit) -> None:
    params = CertExpiryParams(connect_timeout=timedelta(seconds=60))
    started = time.monotonic()
    run = run_job(Target("pit", f"127.0.0.1:{tarpit.port}"), params, timeout=1)
    assert time.monotonic() - started < 3
    assert run.status in (RunStatus.TIMEOUT, RunStatus.ERROR)
    assert run.error_reason is ErrorReason.UNREACHABLE


@pytest.mark.integration
def test_garbage_instead_of_tls_is_bad_input_naming_the_endpoint(
    garbage_server: GarbageServer,
) -> None:
    run = run_job(Target("junk", f"127.0.0.1:{garbage_server.port}"), CertExpiryParams())
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.BAD_INPUT)
    assert f"127.0.0.1:{garbage_server.port}" in run.error_message
    assert "TLS" in run.error_message


@pytest.mark.integration
def test_refused_connection_is_unreachable() -> None:
    port = free_port()
    run = run_job(Target("closed", f"127.0.0.1:{port}"), CertExpiryParams())
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE)
    assert "refused" in run.error_message.lower()


@pytest.mark.integration
@pytest.mark.hostile_peer
@pytest.mark.parametrize("read_first", [True, False], ids=["after_the_hello", "at_once"])
def test_a_handshake_reset_by_the_peer_is_unreachable(read_first: bool) -> None:
    with ResettingServer(read_first=read_first) as server:
        run = run_job(Target("reset", server.address), CertExpiryParams())
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE), run
    assert server.address in run.error_message
    assert "reset" in run.error_message


@pytest.mark.integration
@pytest.mark.hostile_peer
def test_a_server_stopped_mid_handshake_is_unreachable_not_bad_input() -> None:
    with HangUpThenGoneServer() as server:
        run = run_job(Target("stopped", server.address), CertExpiryParams())
    assert server.connections == 1
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.UNREACHABLE), run
    assert server.address in run.error_message
    assert "legacy ClientHello" in run.error_message  # the second attempt found no server


@pytest.mark.integration
def test_a_name_that_does_not_resolve_is_unreachable(tmp_path: Path) -> None:
    # Run in a network namespace of its own: the lookup fails there without any packet
    # leaving this machine (the real resolver is not on loopback).
    script = (
        "import json; from datetime import timedelta;"
        "from checks.cert_expiry.params import CertExpiryParams;"
        "from checks.egress import EgressPolicy;"
        "from monitor.model import CheckKind, Target;"
        "from monitor.runner import CheckJob, Runner;"
        "run = Runner(egress=EgressPolicy()).run(CheckJob(CheckKind.CERT_EXPIRY, Target('ghost', "
        "'https://no-such-host.invalid'), CertExpiryParams(), timedelta(seconds=20)));"
        "print(json.dumps([run.status, run.error_reason, run.error_message]))"
    )
    completed = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0 and "unshare" in completed.stderr:
        pytest.fail(f"unshare --net is needed for this test: {completed.stderr}")
    status, reason, message = json.loads(completed.stdout)
    assert (status, reason) == ("error", "unreachable")
    assert "no-such-host.invalid" in message
    assert "DNS lookup failed" in message


@pytest.mark.unit
def test_pem_file_that_is_not_a_certificate_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    run = run_job(Target("files"), CertExpiryParams(files=(str(bogus),)))
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.BAD_INPUT)
    assert str(bogus) in run.error_message


@pytest.mark.unit
def test_corrupt_pem_block_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    run = run_job(Target("files"), CertExpiryParams(files=(str(corrupt),)))
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.BAD_INPUT)
    assert str(corrupt) in run.error_message


@pytest.mark.unit
def test_pem_files_and_globs_are_read(tmp_path: Path, chain: Chain) -> None:
    (tmp_path / "a.pem").write_bytes(chain.leaf("a.test", days_left=2).pem)
    (tmp_path / "b.pem").write_bytes(
        chain.leaf("b.test", days_left=200).pem + chain.intermediate.pem
    )
    run = run_job(Target("files"), CertExpiryParams(files=(str(tmp_path / "*.pem"),)))
    assert run.status is RunStatus.OK, run.error_message
    addresses = {o.labels["address"] for o in run.output.observations}
    assert addresses == {f"file:{tmp_path / 'a.pem'}", f"file:{tmp_path / 'b.pem'}"}
    assert [f.rule_id for f in run.output.findings] == ["CERT-EXPIRES-SOON"]


@pytest.mark.unit
def test_glob_matching_nothing_is_bad_input(tmp_path: Path) -> None:
    pattern = str(tmp_path / "missing-*.pem")
    run = run_job(Target("files"), CertExpiryParams(files=(pattern,)))
    assert run.error_reason is ErrorReason.BAD_INPUT
    assert pattern in run.error_message


@pytest.mark.unit
def test_target_without_url_or_files_is_misconfigured() -> None:
    run = run_job(Target("nothing"), CertExpiryParams())
    assert run.error_reason is ErrorReason.MISCONFIGURED


@pytest.mark.unit
def test_check_class_is_registered_for_its_kind() -> None:
    assert CHECKS[CheckKind.CERT_EXPIRY] is CertExpiryCheck
