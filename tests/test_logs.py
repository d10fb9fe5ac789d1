"""monitor/logs.py: a one-off scan configures logging without importing structlog (and rich's
traceback with it) until something logs; what then logs goes to stderr as configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # a fresh interpreter: structlog not yet imported

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = """
import sys
from monitor.logs import configure_logging_on_first_use, logger
import monitor.runner
configure_logging_on_first_use("error", "console")
print("before:", "structlog" in sys.modules)
logger("apivigil.runner").info("not shown: below the level")
logger("apivigil.runner").error("check crashed", target="shop")
print("after:", "structlog" in sys.modules)
"""


def test_structlog_is_imported_on_the_first_log_line_and_that_line_goes_to_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=60,
        check=True,
    )

    assert done.stdout.splitlines() == ["before: False", "after: True"]
    assert "check crashed" in done.stderr
    assert "target" in done.stderr and "shop" in done.stderr  # noqa: PT018
    assert "not shown" not in done.stderr
