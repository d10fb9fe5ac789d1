"""Routes no longer have a hysteresis of their own: `config check` refuses a route
open_after/resolve_after above the global `hysteresis:` and warns about one at or below it
(deprecated and ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.settings import ConfigError, read_settings

pytestmark = pytest.mark.unit

RECEIVERS = """\
alerts:
  receivers:
    - name: hook
      webhook: {url: "http://127.0.0.1:9/h", secret: s}
  routes:
    - receivers: [hook]
"""


def write(tmp_path: Path, route: str, top: str = "") -> Path:
    path = tmp_path / "apivigil.yaml"
    path.write_text(top + RECEIVERS + route)
    return path


def test_a_route_resolve_after_above_the_global_one_is_an_error_naming_hysteresis(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "      resolve_after: 3\n")  # the global default is 2

    with pytest.raises(ConfigError) as raised:
        read_settings(path)

    (problem,) = raised.value.problems
    assert (problem.location, problem.line) == ("alerts.routes[0].resolve_after", 7)
    assert "more than hysteresis.resolve_after (2)" in problem.message
    assert "hysteresis: {resolve_after: 3}" in problem.message


def test_a_route_open_after_above_the_global_one_points_to_notify_after(tmp_path: Path) -> None:
    path = write(tmp_path, "      open_after: 2\n", top="hysteresis: {open_after: 1}\n")

    with pytest.raises(ConfigError) as raised:
        read_settings(path)

    (problem,) = raised.value.problems
    assert problem.location == "alerts.routes[0].open_after"
    assert "hysteresis: {open_after: 2}" in problem.message
    assert "notify_after: 2" in problem.message


def test_a_route_hysteresis_at_or_below_the_global_one_is_a_deprecation_warning(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "      open_after: 1\n      resolve_after: 1\n", top="hysteresis: {}\n")

    settings, warnings = read_settings(path)

    assert [(w.location, w.line) for w in warnings] == [
        ("alerts.routes[0].open_after", 8),
        ("alerts.routes[0].resolve_after", 9),
    ]
    assert all(w.message.startswith("deprecated and ignored") for w in warnings)
    assert settings.alerts.routes[0].notify_after == 1


def test_a_config_without_route_hysteresis_has_no_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, "      notify_after: 3\n")

    settings, warnings = read_settings(path)

    assert warnings == []
    assert settings.alerts.routes[0].notify_after == 3


def test_config_check_prints_the_warning_and_passes(tmp_path: Path) -> None:
    path = write(tmp_path, "      resolve_after: 2\n")

    result = CliRunner().invoke(app, ["config", "check", str(path)])

    assert result.exit_code == 0, result.output
    assert "warning: line 7: alerts.routes[0].resolve_after: deprecated and ignored" in (
        result.output
    )


def test_config_check_refuses_a_larger_route_hysteresis_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "      resolve_after: 4\n")

    result = CliRunner().invoke(app, ["config", "check", str(path)])

    assert result.exit_code == 2
    assert "alerts.routes[0].resolve_after: 4 is more than hysteresis.resolve_after" in (
        result.output
    )
