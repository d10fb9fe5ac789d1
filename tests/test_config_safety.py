"""Config files are safe YAML only: hostile documents are refused fast, by line, with no effect."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.settings import ConfigError, parse_yaml
from tests.daemon_process import run_cli

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


def test_parse_yaml_counts_alias_expansions_before_building_anything() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        parse_yaml(BILLION_LAUGHS, "laughs.yaml")
    assert time.monotonic() - started < 2
    (problem,) = refused.value.problems
    assert problem.line == 6
    assert "aliases expand" in problem.message


def test_anchors_and_merge_keys_of_an_ordinary_config_still_load() -> None:
    text = "defaults_for_checks: &every_15m {interval: 15m}\ntargets:\n" + "".join(
        f"  - name: api{index}\n    checks:\n      cert_expiry: {{<<: *every_15m}}\n"
        for index in range(500)
    )
    data, lines = parse_yaml(text, "anchors.yaml")
    assert data["targets"][499]["checks"]["cert_expiry"] == {"interval": "15m"}
    assert lines[("targets", 499, "name")] == 2 + 499 * 3 + 1


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
