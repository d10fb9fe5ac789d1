"""The YAML fast path (yaml-rs) reads a plain document exactly as the PyYAML path does, and
leaves to PyYAML every document on which the two could differ or that could hurt it."""

from __future__ import annotations

import math
import random
import textwrap
from pathlib import Path
from typing import Any

import pytest

from checks.openapi import fast_yaml, loading
from checks.openapi.loading import LoadLimits, SpecUnparseable, load_document
from tests.support.openapi_specs import SpecChanges, resource_count, write_multi_file_spec

pytestmark = pytest.mark.unit

LIMITS = LoadLimits()


def pyyaml(data: bytes) -> Any:
    return loading._load_pyyaml(data, "spec.yaml", LIMITS)


def fast(data: bytes) -> fast_yaml.Parsed | None:
    return fast_yaml.load_plain(data, pyyaml)


def typed(value: Any) -> Any:
    """`value` with every scalar's type, NaN equal to itself, and key order kept."""
    if isinstance(value, list):
        return ["list", *[typed(item) for item in value]]
    if isinstance(value, dict):
        return ["dict", *[(typed(key), typed(item)) for key, item in value.items()]]
    if isinstance(value, float) and math.isnan(value):
        return (float, "nan")
    return (type(value), value)


REAL_SHAPED = b"""\
openapi: 3.0.3
info:
  title: "Payments \\u00e9 API \\"v2\\""
  version: 1.0.0
  description: |
    Multi-line *markdown*, with `code`, a ratio 16:9 and "quotes".
      Indented line; trailing spaces kept\x20\x20

    Tabs\tinside text are fine. Emoji: \xf0\x9f\x9a\x80, accents: \xc3\xa9t\xc3\xa9.
  summary: >-
    Folded text
    over lines

    with a paragraph.
  x-keep: |+
    kept newlines

servers:
  - url: https://api.example.test/v2   # a comment
    description: 'It''s quoted'
paths:
  /payments/{paymentId}/refunds:
    get:
      operationId: listRefunds
      parameters:
        - {name: paymentId, in: path, required: true, schema: {type: string, format: uuid}}
        - name: limit
          in: query
          schema: {type: integer, minimum: 1, maximum: 100, default: 20, multipleOf: 1.5}
        - name: since
          in: query
          schema: {type: string, format: date-time, example: 2024-01-01T10:00:00Z}
        - name: flags
          in: query
          schema:
            type: array
            items: [a, "b", 'c']
            enum: [yes, no, on, off, true, false, null, ~, 1.0.0, -1, +2, 0.5, 1.5e+3]
      responses:
        200:
          description: ok
        '404': {description: missing}
        default:
          description: >
            Any other
            error
      x-empty:
      x-null: null
      x-list: []
      x-map: {}
      x-neg: -0.25
      x-big: 123456789012345678901234567890
      x-inf: [.inf, -.Inf, .NAN]
      x-dup: first
      x-dup: second
      x-url: https://x.test/?a=1&b=2#frag
      x-star: '*/*'
      x-escapes: "tab\\tnewline\\nslash\\/bell\\x41\\u263A"
      x-single: 'a ''b'' c'
      x-plain-multi: this plain
        scalar spans lines
"""


def test_a_real_shaped_document_takes_the_fast_path_with_the_pyyaml_result() -> None:
    parsed = fast(REAL_SHAPED)

    assert parsed is not None
    assert typed(parsed.value) == typed(pyyaml(REAL_SHAPED))
    assert typed(load_document(REAL_SHAPED, "spec.yaml", LIMITS)) == typed(parsed.value)


@pytest.mark.parametrize(
    "text",
    [
        b"---\na: 1\n",
        b"\xef\xbb\xbfa: 1\n",
        b"a: 1\r\nb: |\r\n  x\r\n  y\r\n",
        b"",
        b"# only a comment\n",
        # number-like text in quotes or prose is a string to both
        b"a: '017'\nb: '08'\nc: \"1:30\"\nd: ratio 16:9 at 10:30\n",
        b"- x = y\n- a < b\n- =\n",
        b"a: |-\n  x\n\nb: >+\n  y\n\nc: |2\n    z\nd: >\n  folded\n  text\n\n  more\n",
        b"- " * 90 + b"deep\n",
    ],
)
def test_plain_documents_take_the_fast_path_with_the_pyyaml_result(text: bytes) -> None:
    parsed = fast(text)

    assert parsed is not None
    assert typed(parsed.value) == typed(pyyaml(text))


def test_every_file_of_a_multi_file_spec_reads_the_same_both_ways(tmp_path: Path) -> None:
    root = write_multi_file_spec(
        tmp_path / "spec",
        resource_count(200),
        changes=SpecChanges(insert_variant=True, public_resources=3),
    )
    files = sorted(root.parent.rglob("*.yaml"))
    assert len(files) > 150

    for path in files:
        data = path.read_bytes()
        parsed = fast(data)
        assert parsed is not None, path
        assert typed(parsed.value) == typed(pyyaml(data)), path


@pytest.mark.parametrize(
    "text",
    [
        b"a: 017\n",  # octal to YAML 1.1, decimal to 1.2
        b"a: 0o17\n",
        b"a: 08\n",
        b"a: 1:30\n",  # sexagesimal
        b"a: 1e3\n",
        b"a: 1.0e3\n",
        b"a: [.iNf, _1]\n",
        b"a: !!binary aGVsbG8=\n",
        b"a: !custom x\n",
        b"a: &anchor [1, 2]\nb: *anchor\n",
        b"a: &anchor 1\n",
        b"<<: {a: 1}\nb: 2\n",
        b"? [1, 2]\n: x\n",
        b"[1, 2]: x\n",
        b"{a: 1}: x\n",
        b"k: {[a]: x}\n",
        b"--- 1\n--- 2\n",
        b"a: 1\n...\n",
        b"%YAML 1.1\n---\na: 1\n",
        b"\t- x\n",
        b"a: x\xc2\x85y\n",  # NEL breaks a line in YAML 1.1 only
        b'a: "x\xe2\x80\xa8y"\n',
        b"a: \x01\n",
        b"a: x\xef\xbb\xbfy\n",
        b"a: \xff\xfe\n",
        b"- " * 201 + b"deep\n",
        b"a: [1, 2\n",
        b'a: "\\ud83d\\ude00"\n',  # a surrogate pair: one character to yaml-rs, an error to PyYAML
        b"a: 1\nb: |\n",  # an empty block scalar last: "" to PyYAML, "\n" to yaml-rs
        b"a: |+\n  x",  # no line break at the end: yaml-rs adds one
    ],
)
def test_documents_the_two_could_read_differently_are_left_to_pyyaml(text: bytes) -> None:
    assert fast(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"a: 017\nb: 0o17\nc: 1:30\nd: 1e3\n", {"a": 15, "b": "0o17", "c": 90, "d": "1e3"}),
        (b"a: &x [1, 2]\nb: *x\n", {"a": [1, 2], "b": [1, 2]}),
        (b"<<: {a: 1}\nb: 2\n", {"a": 1, "b": 2}),
        (b"a: =\n", {"a": "="}),
    ],
)
def test_load_document_keeps_the_pyyaml_meaning(text: bytes, expected: Any) -> None:
    assert typed(load_document(text, "spec.yaml", LIMITS)) == typed(expected)


def test_block_nesting_that_would_crash_yaml_rs_is_refused_by_pyyaml_instead() -> None:
    text = b"- " * 20_000 + b"x\n"  # yaml-rs overflows its stack near 11,000 levels

    assert fast(text) is None
    with pytest.raises(SpecUnparseable, match="nesting depth"):
        load_document(text, "spec.yaml", LIMITS)


def test_an_alias_bomb_is_left_to_pyyaml_and_still_refused() -> None:
    bomb = textwrap.dedent(
        """\
        a: &a [x, x, x, x, x, x, x, x, x, x]
        b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
        c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
        d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
        e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
        """
    ).encode()

    assert fast(bomb) is None
    with pytest.raises(SpecUnparseable, match="max_yaml_nodes"):
        load_document(bomb, "spec.yaml", LoadLimits(max_yaml_nodes=10_000))


def test_without_yaml_rs_every_document_is_read_by_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_yaml, "yaml_rs", None)

    assert fast(b"a: 1\n") is None
    assert load_document(b"a: 1\n", "spec.yaml", LIMITS) == {"a": 1}


ATOMS = [
    *("0", "1.5", "-1", "+1", "017", "08", "0o17", "0x1F", "1_000", "_1", "1:30", "1e3", "1.0e+3"),
    *(".5", "5.", "-.inf", ".iNf", ".NaN", "~", "null", "nULL", "true", "TRUE", "yes", "Off"),
    *("2024-01-01", "10:00:00", "=", "<", "-", "...", "a b", "a #c", "a#b", "'q'", "'it''s'"),
    *('"d\\tq"', '"\\u00e9"', '"\\/"', "''", "x\u00e9", "'*/*'", "**bold**", "a & b", "R&D"),
    *("[1, 2]", "{a: 1}", "[]", "{}", "/x/{id}", "a,b", "|", ">", "|-", ">+", '"a\n  b"'),
    *("'a\n\n  b'", "plain\n  continued", "[a,\n  b]", "{a: 1,\n  b: 2}", "k: v"),
]


def generated(rng: random.Random, depth: int = 0, indent: int = 0) -> list[str]:
    """A random block mapping or sequence of `ATOMS`, nested up to four levels."""
    pad = " " * indent
    lines: list[str] = []
    mapping = rng.random() < 0.6
    for _ in range(rng.randint(1, 4)):
        nested = depth < 3 and rng.random() < 0.4
        lead = f"{pad}{rng.choice(['k', 'k2', '1', 'x y'])}:" if mapping else f"{pad}-"
        if nested:
            lines += [lead, *generated(rng, depth + 1, indent + 2)]
        else:
            atom = rng.choice(ATOMS).replace("\n", "\n" + pad)
            lines.append(f"{lead} {atom}")
            if atom in ("|", ">", "|-", ">+") and rng.random() < 0.7:
                lines += [f"{pad}  line", "", f"{pad}    more"][: rng.randint(1, 3)]
    return lines


def test_generated_documents_read_by_the_fast_path_read_as_pyyaml_reads_them() -> None:
    rng = random.Random(20261207)
    taken = 0
    for _ in range(1500):
        text = ("\n".join(generated(rng)) + rng.choice(["\n", "\n\n", ""])).encode()
        parsed = fast(text)
        if parsed is None:
            continue
        taken += 1
        assert typed(parsed.value) == typed(pyyaml(text)), text

    assert taken > 300  # the sample reaches the fast path, not only PyYAML's


def test_more_distinct_number_like_tokens_than_the_check_takes_go_to_pyyaml() -> None:
    many = b"".join(b"- 0.%d\n" % index for index in range(fast_yaml._MAX_TOKENS + 1))
    few = b"".join(b"- 0.%d\n" % index for index in range(1000))

    assert fast(many) is None
    assert load_document(many, "spec.yaml", LIMITS)[-1] == float(f"0.{fast_yaml._MAX_TOKENS}")
    assert fast(few) is not None
