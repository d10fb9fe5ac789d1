"""Files that are not what they say: a FIFO (opening it blocks until someone writes), a
symlink to /dev/zero (size 0, never ends) and a unix socket, wherever a regular file is
expected. Each is refused at once with an error naming the path and the problem; none
hangs a check, a config load or an alert tick, and none is read to gigabytes."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.config import EmailConfig
from alerts.email import EmailNotifier
from alerts.interface import NotifierError
from alerts.templates import TemplateError, render
from checks.api_inventory.access_log import read_new
from checks.api_inventory.reading import read_inventory_file
from checks.cert_expiry.params import CertExpiryParams
from checks.config_drift.check import ConfigDriftCheck
from checks.config_drift.params import ConfigDriftParams
from checks.egress import EgressPolicy
from checks.interface import BadInput, CheckContext
from checks.openapi.loading import LoadLimits
from checks.patch_level.eol import load_product
from checks.patch_level.sources.dpkg import read_dpkg_status
from checks.patch_level.sources.python import read_poetry_lock, read_requirements
from checks.patch_level.sources.sbom import read_sbom
from monitor.api_security import tls_context
from monitor.model import CheckKind, ErrorReason, RunStatus, Target
from monitor.runner import CheckJob, Runner
from monitor.secret_files import read_secret_file
from monitor.settings import ConfigError, load_settings
from tests.support.daemon_process import run_cli
from tests.support.notifications import make_alert, make_notification
from tests.support.ports import free_port

pytestmark = pytest.mark.hostile_peer

KINDS = ["fifo", "dev-zero-link", "socket"]
PROBLEM = {
    "fifo": "a FIFO (named pipe), not a regular file",
    "dev-zero-link": "a character device, not a regular file",
    "socket": "a socket, not a regular file",
}
GIVE_UP_SECONDS = 20.0  # far beyond a refusal; a blocked open never gets there


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a path short enough for a unix socket (108 bytes at most)."""
    directory = Path(tempfile.mkdtemp(prefix="hf-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for held_socket in held:
        held_socket.close()


@pytest.fixture
def make_hostile(short_dir: Path, sockets: list[socket.socket]) -> Callable[[str, str], Path]:
    def make(kind: str, name: str) -> Path:
        path = short_dir / name
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero-link":
            path.symlink_to("/dev/zero")
        else:
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(str(path))
            listener.listen(1)
            sockets.append(listener)
        return path

    return make


def within(call: Callable[[], Any], *fifos: Path) -> Any:
    """`call()`'s result or exception, failing the test if it is still blocked after
    GIVE_UP_SECONDS (a FIFO it waits on is then opened for writing, to release it)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(GIVE_UP_SECONDS)
    if worker.is_alive():
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"still blocked after {GIVE_UP_SECONDS:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def refusal(
    kind: str,
    call: Callable[[], Any],
    path: Path,
    *errors: type[Exception],
    problem: str | None = None,
) -> str:
    """The message of the error `call` raises for `path`, checked to name the path (or,
    for a reader that resolves symlinks first, what it links to) and the problem."""
    with pytest.raises(errors or (BadInput,)) as raised:
        within(call, path)
    message = str(raised.value)
    assert str(path) in message or os.path.realpath(path) in message, message
    assert (problem or PROBLEM[kind]) in message, message
    return message


def context() -> CheckContext:
    return CheckContext(
        started_at=datetime.now(UTC), deadline=time.monotonic() + 30, egress=EgressPolicy()
    )


# checks ----------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_a_drift_file_source_that_is_not_a_regular_file_is_a_failed_source(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "app.yaml")
    params = ConfigDriftParams.model_validate({"sources": [{"name": "app", "file": str(path)}]})
    raw = within(lambda: ConfigDriftCheck().collect(Target("api"), params, context()), path)
    (failure,) = raw.failures
    assert failure.source == "app"
    assert str(path) in failure.reason
    assert PROBLEM[kind] in failure.reason


@pytest.mark.unit
def test_a_fifo_or_socket_in_a_watched_directory_is_unreadable_and_a_device_link_an_entry(
    make_hostile: Callable[[str, str], Path], short_dir: Path
) -> None:
    (short_dir / "ok.conf").write_text("a = 1\n")
    fifo = make_hostile("fifo", "fifo.conf")
    make_hostile("socket", "socket.conf")
    make_hostile("dev-zero-link", "zero.conf")
    params = ConfigDriftParams.model_validate(
        {"sources": [{"name": "d", "directory": str(short_dir)}]}
    )
    raw = within(lambda: ConfigDriftCheck().collect(Target("api"), params, context()), fifo)
    (state,) = raw.states
    assert dict(state.unreadable) == {
        "fifo.conf": PROBLEM["fifo"],
        "socket.conf": PROBLEM["socket"],
    }
    assert state.entries["zero.conf#link"] == "/dev/zero"
    assert state.entries["ok.conf:a"] == "1"


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "reader",
    [
        read_dpkg_status,
        read_requirements,
        read_poetry_lock,
        read_sbom,
        load_product,
    ],
    ids=["dpkg-status", "requirements", "poetry-lock", "sbom", "eol-product"],
)
def test_patch_level_file_sources_refuse_what_is_not_a_regular_file(
    kind: str, reader: Callable[[Path], Any], make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "inventory")
    refusal(kind, lambda: reader(path), path)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_an_api_spec_file_that_is_not_a_regular_file_is_refused(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "openapi.yaml")
    refusal(kind, lambda: read_inventory_file(path, LoadLimits(max_bytes=1024)), path)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_a_ref_to_a_file_that_is_not_a_regular_file_is_refused(
    kind: str, make_hostile: Callable[[str, str], Path], short_dir: Path
) -> None:
    hostile = make_hostile(kind, "schemas.yaml")
    spec = short_dir / "openapi.yaml"
    spec.write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n"
        "  /a:\n    get:\n      responses:\n        '200':\n"
        "          $ref: 'schemas.yaml#/ok'\n"
    )
    # a link leaving the spec's directory is refused before anything is opened
    outside = "outside the spec's directory" if kind == "dev-zero-link" else None
    refusal(kind, lambda: read_inventory_file(spec), hostile, problem=outside)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_an_access_log_that_is_not_a_regular_file_is_refused(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "access.log")
    refusal(kind, lambda: read_new(path, None, 1024), path)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_a_pem_file_that_is_not_a_regular_file_is_bad_input_within_the_run(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "cert.pem")
    job = CheckJob(
        CheckKind.CERT_EXPIRY,
        Target("files"),
        CertExpiryParams(files=(str(path),)),
        timedelta(seconds=30),
    )
    run = within(lambda: Runner(egress=EgressPolicy()).run(job), path)
    assert (run.status, run.error_reason) == (RunStatus.ERROR, ErrorReason.BAD_INPUT), run
    assert str(path) in (run.error_message or "")
    assert PROBLEM[kind] in (run.error_message or "")


# the daemon's own files -------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_a_config_file_that_is_not_a_regular_file_is_a_config_error(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "apivigil.yaml")
    refusal(kind, lambda: load_settings(path), path, ConfigError)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_a_token_file_that_is_not_a_regular_file_is_a_config_error(
    kind: str, make_hostile: Callable[[str, str], Path], short_dir: Path
) -> None:
    secret = make_hostile(kind, "token")
    config = short_dir / "apivigil.yaml"
    config.write_text(f"api_tokens:\n  - {{name: ops, token_file: {secret}}}\n")
    refusal(kind, lambda: load_settings(config), secret, ConfigError)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_a_secret_file_that_is_not_a_regular_file_is_refused(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "webhook_secret")
    message = refusal(kind, lambda: read_secret_file(path, "secret_file"), path, ValueError)
    assert message.startswith("secret_file: ")


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
def test_an_alert_template_that_is_not_a_regular_file_fails_that_template_only(
    kind: str, make_hostile: Callable[[str, str], Path], short_dir: Path
) -> None:
    path = make_hostile(kind, "email_subject.txt.j2")
    refusal(kind, lambda: render("email_subject.txt.j2", short_dir), path, TemplateError)


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link"])
def test_config_check_on_a_fifo_or_dev_zero_exits_2_naming_the_problem(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "apivigil.yaml")
    completed = run_cli("config", "check", str(path), timeout=60)
    assert completed.returncode == 2, completed
    assert PROBLEM[kind] in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.integration
@pytest.mark.parametrize("kind", KINDS)
def test_an_e_mail_receivers_ca_file_that_is_not_a_regular_file_fails_at_once_for_good(
    kind: str, make_hostile: Callable[[str, str], Path]
) -> None:
    path = make_hostile(kind, "ca.pem")
    config = EmailConfig.model_validate(
        {
            "smtp": f"smtps://127.0.0.1:{free_port()}",
            "from": "a@example.test",
            "to": ["b@example.test"],
            "ca_file": path,
            "timeout": "5s",
        }
    )
    notification = make_notification((make_alert(1),))
    refusal(kind, lambda: EmailNotifier("mail", config).send(notification), path, NotifierError)


@pytest.mark.unit
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["cert", "key"])
def test_api_tls_files_that_are_not_regular_files_are_refused_without_blocking(
    kind: str, which: str, make_hostile: Callable[[str, str], Path], tmp_path: Path
) -> None:
    regular = tmp_path / "regular.pem"
    regular.write_text("not used: the other file is refused first\n")
    path = make_hostile(kind, f"api.{which}")
    files = (path, regular) if which == "cert" else (regular, path)
    refusal(kind, lambda: tls_context(*files), path, OSError)
