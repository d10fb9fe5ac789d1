"""Commands that read the store never create one: without a config or store they say what was
not found and how to point at one (--config, $APIVIGIL_CONFIG, --store), and leave no file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon_process import APIVIGIL, write_config

pytestmark = pytest.mark.e2e

READERS = [
    ("findings",),
    ("report",),
    ("baseline", "history", "api"),
    ("alerts", "outbox"),
    ("silence", "list"),
    ("inventory", "diff", "api"),
]


def run_in(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIVIGIL_")}
    return subprocess.run(
        [*APIVIGIL, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**env, "COLUMNS": "250"},
        check=False,
    )


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c[:2]))
def test_a_reader_in_an_empty_directory_creates_no_store_and_says_how_to_point_at_one(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    completed = run_in(tmp_path, *command)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert list(tmp_path.iterdir()) == []
    message = " ".join(completed.stderr.split())
    assert "no store found" in message, message
    assert "apivigil.db" in message, message
    for way in ("--config", "$APIVIGIL_CONFIG", "--store"):
        assert way in message, message
    assert "db upgrade" not in message, message


def test_a_reader_with_a_config_whose_store_is_missing_names_it_and_creates_nothing(
    tmp_path: Path,
) -> None:
    store_file = tmp_path / "data" / "apivigil.db"
    store_file.parent.mkdir()
    config = write_config(tmp_path / "apivigil.yaml", {"store": f"sqlite:///{store_file}"})
    completed = run_in(tmp_path, "findings", "--config", str(config))
    assert completed.returncode == 2
    assert not store_file.exists()
    message = " ".join(completed.stderr.split())
    assert f"{store_file} (the store of {config}) does not exist" in message, message
    assert "apivigil db upgrade" in message, message  # the way to create it, on purpose


def test_a_reader_pointed_at_a_missing_store_file_creates_nothing(tmp_path: Path) -> None:
    store_file = tmp_path / "elsewhere.db"
    completed = run_in(tmp_path, "silence", "list", "--store", f"sqlite:///{store_file}")
    assert completed.returncode == 2
    assert list(tmp_path.iterdir()) == []
    assert "(--store) does not exist" in " ".join(completed.stderr.split())
