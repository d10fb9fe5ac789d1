"""The SQLite store holds the key that masks secrets: a new database file, and the -wal and
-shm files SQLite makes beside it, are readable by their owner only whatever the umask; an
existing file open to other users is reported when the store is opened."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from monitor.store.interface import HysteresisPolicy
from monitor.store.sql import SqlStore
from tests.support.check_runs import finding, ok_run

pytestmark = [pytest.mark.unit, pytest.mark.hostile_peer]


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default outside systemd: files come out 0644
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_store_and_its_wal_and_shm_are_readable_by_their_owner_only(
    tmp_path: Path, permissive_umask: None
) -> None:
    database = tmp_path / "state" / "apivigil.db"
    store = SqlStore(f"sqlite:///{database}")
    try:
        store.upgrade_schema()
        store.record(ok_run("api", datetime.now(UTC), finding()), HysteresisPolicy())
        with store.engine.connect():  # WAL mode: -wal and -shm exist while a connection is open
            files = [
                database,
                *(database.with_name(database.name + end) for end in ("-wal", "-shm")),
            ]
            modes = {path.name: mode(path) for path in files}
    finally:
        store.close()
    assert modes == {
        "apivigil.db": 0o600,
        "apivigil.db-wal": 0o600,
        "apivigil.db-shm": 0o600,
    }


def test_an_existing_sqlite_store_open_to_other_users_is_reported_when_opened(
    tmp_path: Path,
) -> None:
    database = tmp_path / "apivigil.db"
    database.touch()
    database.chmod(0o644)
    with capture_logs() as logs:
        SqlStore(f"sqlite:///{database}").close()
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [(w["file"], w["mode"]) for w in warnings] == [(str(database), "0644")]
    assert "chmod 600" in warnings[0]["event"]
    assert mode(database) == 0o644  # reported, not changed behind the operator's back


def test_a_private_sqlite_store_is_opened_without_a_warning(tmp_path: Path) -> None:
    database = tmp_path / "apivigil.db"
    SqlStore(f"sqlite:///{database}").close()
    with capture_logs() as logs:
        SqlStore(f"sqlite:///{database}").close()
    assert [entry for entry in logs if entry["log_level"] == "warning"] == []
