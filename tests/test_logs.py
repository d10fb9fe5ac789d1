"""monitor/logs.py: a one-off scan configures logging without importing structlog (and rich's
traceback with it) until something logs; what then logs goes to stderr as configured."""

from __future__ import annotations

import json
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


def _python(program: str) -> subprocess.CompletedProcess[str]:
    """Run `program` in a fresh interpreter over this tree, with nothing else on PATH."""
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        timeout=60,
        check=True,
    )


def test_structlog_is_imported_on_the_first_log_line_and_that_line_goes_to_stderr() -> None:
    done = _python(PROGRAM)

    assert done.stdout.splitlines() == ["before: False", "after: True"]
    assert "check crashed" in done.stderr
    assert "target" in done.stderr and "shop" in done.stderr  # noqa: PT018
    assert "not shown" not in done.stderr


LATER_CONFIGURED = """
from monitor.logs import configure_logging, configure_logging_on_first_use, logger
configure_logging_on_first_use("error", "console")  # deferred, nothing logged yet
configure_logging("info", "json")  # then configured outright: this one stands
logger("apivigil.runner").info("shown", target="shop")
"""


def test_a_configuration_made_after_a_deferred_one_is_not_undone_by_the_first_log_line() -> None:
    done = _python(LATER_CONFIGURED)

    line = json.loads(done.stderr.strip().splitlines()[-1])  # JSON, at info level
    assert line["event"] == "shown"
    assert line["target"] == "shop"
    assert line["level"] == "info"


ALREADY_IMPORTED = """
from monitor.logs import configure_logging_on_first_use
from monitor.store.engine import log  # a module logger the store (`scan --push-gateway`) imports
configure_logging_on_first_use("error", "console")
log.info("finding opened", rule_id="CERT-EXPIRES-SOON")  # below the scan's level
log.error("store failed", target="shop")
"""


def test_a_logger_of_a_module_imported_before_the_deferral_logs_as_configured() -> None:
    # `apivigil scan --push-gateway` imports the store (structlog with it) before logging is
    # configured; the store's "finding opened" lines must not reach stdout (the JSON document)
    done = _python(ALREADY_IMPORTED)

    assert done.stdout == ""
    assert "finding opened" not in done.stderr
    assert "store failed" in done.stderr
