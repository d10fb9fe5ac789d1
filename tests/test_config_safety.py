"""Config files are safe YAML only: hostile documents are refused fast, by line, with no effect."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from monitor.settings import ConfigError, parse_yaml
from tests.support.config_errors import CONFIG_ERRORS_WITH_SECRETS
from tests.support.daemon_process import APIVIGIL, run_cli

pytestmark = pytest.mark.hostile_peer

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "",
    ]
)


def _hostile_documents(marker: Path) -> dict[str, tuple[str, str, int]]:
    """name -> (YAML text, words the error must contain, the line it must name)."""
    return {
        "billion-laughs": (BILLION_LAUGHS, "aliases expand to more than", 6),
        "python-object": (
            "listen: 127.0.0.1:9690\n"
            f'targets: !!python/object/apply:os.system ["touch {marker}"]\n',
            "python/object/apply:os.system",
            2,
        ),
        "custom-tag": ("listen: 127.0.0.1:9690\ntargets: !include x\n", "!include", 2),
        "duplicate-key": (
            "listen: 127.0.0.1:9690\nlog_level: info\nlisten: 0.0.0.0:80\n",
            "listen: duplicate key",
            3,
        ),
        "recursive-alias": ("targets: &loop [*loop]\n", "refers to the node that contains it", 1),
    }


@pytest.mark.e2e
@pytest.mark.parametrize(
    "name",
    ["billion-laughs", "python-object", "custom-tag", "duplicate-key", "recursive-alias"],
)
def test_config_check_refuses_hostile_yaml_fast_by_file_and_line_without_side_effects(
    tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "pwned"
    text, expected, line = _hostile_documents(marker)[name]
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)

    started = time.monotonic()
    checked = run_cli("config", "check", str(config), cwd=tmp_path, timeout=60)
    elapsed = time.monotonic() - started

    assert checked.returncode == 2, checked.stdout + checked.stderr
    output = checked.stdout + checked.stderr
    assert f"{config}: line {line}: " in output, output
    assert expected in output, output
    assert "Traceback" not in output
    assert elapsed < 10, f"{name} took {elapsed:.1f}s"
    assert not marker.exists(), "a YAML tag ran a command"


@pytest.mark.unit
def test_parse_yaml_counts_alias_expansions_before_building_anything() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        parse_yaml(BILLION_LAUGHS, "laughs.yaml")
    assert time.monotonic() - started < 2
    (problem,) = refused.value.problems
    assert problem.line == 6
    assert "aliases expand" in problem.message


@pytest.mark.unit
def test_anchors_and_merge_keys_of_an_ordinary_config_still_load() -> None:
    text = "defaults_for_checks: &every_15m {interval: 15m}\ntargets:\n" + "".join(
        f"  - name: api{index}\n    checks:\n      cert_expiry: {{<<: *every_15m}}\n"
        for index in range(500)
    )
    data, lines = parse_yaml(text, "anchors.yaml")
    assert data["targets"][499]["checks"]["cert_expiry"] == {"interval": "15m"}
    assert lines[("targets", 499, "name")] == 2 + 499 * 3 + 1


@pytest.mark.e2e
def test_config_check_refuses_a_huge_file_without_reading_it(tmp_path: Path) -> None:
    config = tmp_path / "huge.yaml"
    with config.open("w") as file:
        file.write("targets:\n")
        line = "  - {name: padding, labels: {note: " + "x" * 200 + "}}\n"
        file.write(line * (9 * 1024 * 1024 // len(line) + 1))

    started = time.monotonic()
    checked = run_cli("config", "check", str(config), cwd=tmp_path, timeout=60)

    assert checked.returncode == 2
    assert f"{config}: " in checked.stderr + checked.stdout
    assert "larger than 8388608 bytes" in checked.stderr + checked.stdout
    assert time.monotonic() - started < 10


def _block_nested(depth: int) -> str:
    return "targets:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth))


def _interval(value: str) -> str:
    return f"defaults:\n  interval: {value}\n"


# name -> (YAML text, APIVIGIL_* environment, what the error must name besides the file)
BAD_INPUTS: dict[str, tuple[str, dict[str, str], str]] = {
    "yaml 990 deep (flow)": ("targets: " + "[" * 990 + "]" * 990 + "\n", {}, "line 1: "),
    "yaml 990 deep (block)": (_block_nested(990), {}, "line "),
    "yaml 1000 deep (flow)": ("targets: " + "[" * 1000 + "]" * 1000 + "\n", {}, "line 1: "),
    "yaml 100k deep (flow)": ("targets: " + "[" * 100_000 + "]" * 100_000 + "\n", {}, "line 1: "),
    "interval 999999999999d": (_interval("999999999999d"), {}, "defaults.interval"),
    "interval 999999999d": (_interval("999999999d"), {}, "defaults.interval"),
    "interval 1e308 seconds": (_interval("1e308"), {}, "defaults.interval"),
    "interval 400 nines": (_interval("9" * 400), {}, "defaults.interval"),
    "interval 100000w": (_interval("100000w"), {}, "defaults.interval"),
    "interval .nan": (_interval(".nan"), {}, "defaults.interval"),
    "interval .inf": (_interval(".inf"), {}, "defaults.interval"),
    "timeout -1s": ("defaults:\n  timeout: -1s\n", {}, "defaults.timeout"),
    "APIVIGIL_TARGETS not JSON": ("{}\n", {"APIVIGIL_TARGETS": "api,billing"}, "APIVIGIL_TARGETS"),
    "APIVIGIL_TARGETS 30k deep": (
        "{}\n",
        {"APIVIGIL_TARGETS": "[" * 30_000 + "]" * 30_000},
        "APIVIGIL_",
    ),
    "APIVIGIL_ALERTS__RECEIVERS not JSON": (
        "{}\n",
        {"APIVIGIL_ALERTS__RECEIVERS": "chat"},
        "APIVIGIL_ALERTS__RECEIVERS",
    ),
    "store port not a number": (
        "store: postgresql+psycopg://apivigil@127.0.0.1:54x2/apivigil\n",
        {},
        "line 1: store: ",
    ),
}


def _bad_input_table(tmp_path: Path) -> dict[str, tuple[str, dict[str, str], str]]:
    """Every bad config input of these tests: the table above, the hostile YAML documents,
    and the configs whose errors must not show a secret."""
    table = dict(BAD_INPUTS)
    for name, (text, _, line) in _hostile_documents(tmp_path / "pwned").items():
        table[f"hostile yaml: {name}"] = (text, {}, f"line {line}: ")
    for name, (config, env, key, _) in CONFIG_ERRORS_WITH_SECRETS.items():
        table[f"secret in: {name}"] = (yaml.safe_dump(config), env, key)
    return table


@pytest.mark.e2e
def test_every_bad_config_input_is_a_clear_error_through_the_real_cli(tmp_path: Path) -> None:
    table = _bad_input_table(tmp_path)
    unclear = []
    for index, (name, (text, env, named)) in enumerate(table.items()):
        config = tmp_path / f"bad-{index}.yaml"
        config.write_text(text)
        checked = subprocess.run(
            [*APIVIGIL, "config", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, **env},
            check=False,
        )
        output = checked.stdout + checked.stderr
        clear = (
            checked.returncode == 2
            and "Traceback" not in output
            and f"{config}: " in output
            and named in output
        )
        if not clear:
            unclear.append(f"{name}: exit {checked.returncode}\n{output[-2000:]}")

    clear_count = len(table) - len(unclear)
    print(f"bad inputs tried with a clear error: {clear_count} of {len(table)}")
    assert not unclear, "\n\n".join(unclear)
