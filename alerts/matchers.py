"""Label matchers of silences and maintenance windows: `value` (equal) or `~regex` (the whole
value matches). Every edge that accepts matchers (API, CLI, config) validates them here, and
the engine checks stored ones again before use, so a regex that does not compile, or one that
could backtrack for minutes on a hostile label value, never reaches a tick.

Bounds: a regex has at most MAX_REGEX_CHARS characters, no backreferences, no repeat of
something that itself repeats or branches (`(a+)+`, `(a|ab)*`: the shapes whose matching time
grows exponentially with the value), and at most MAX_OPEN_REPEATS open-ended repeats (each
one more multiplies the time by the value's length: `.*a.*a.*b` takes 30 s on 4,096
characters). A label value longer than MAX_MATCHED_CHARS never matches a regex, so a hostile
value makes an alert go out rather than stall the tick. Alertmanager, whose matchers these
follow, uses RE2 and needs no such bound; Python's engine backtracks.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # the typed name of re._parser
    import sre_constants
    import sre_parse

MAX_MATCHERS = 32
MAX_LABEL_CHARS = 128
MAX_VALUE_CHARS = 1024
MAX_REGEX_CHARS = 256
MAX_OPEN_REPEATS = 2
MAX_MATCHED_CHARS = 4096
_OPEN_ENDED = 16  # a repeat allowing this many more copies than its minimum counts as open
REGEX_PREFIX = "~"

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)


class MatcherError(ValueError):
    """A matcher that cannot be used; the message names the label and the problem."""


def check_matchers(matchers: Mapping[str, str]) -> None:
    """Raise MatcherError unless `matchers` is a usable set of label matchers."""
    if not matchers:
        raise MatcherError("no matchers: they would match every alert")
    if len(matchers) > MAX_MATCHERS:
        raise MatcherError(f"{len(matchers)} matchers: at most {MAX_MATCHERS}")
    for label, expected in matchers.items():
        check_matcher(label, expected)


def check_matcher(label: object, expected: object) -> None:
    """Raise MatcherError unless `label` = `expected` is one usable matcher."""
    if not isinstance(label, str) or not label.strip():
        raise MatcherError(f"label {label!r}: a label name is required")
    if len(label) > MAX_LABEL_CHARS:
        raise MatcherError(f"label {label[:40]!r}...: longer than {MAX_LABEL_CHARS} characters")
    if not isinstance(expected, str):
        raise MatcherError(f"{label}: the value must be text, not {type(expected).__name__}")
    if len(expected) > MAX_VALUE_CHARS:
        raise MatcherError(f"{label}: the value is longer than {MAX_VALUE_CHARS} characters")
    if expected.startswith(REGEX_PREFIX):
        try:
            compiled_regex(expected[len(REGEX_PREFIX) :])
        except MatcherError as error:
            raise MatcherError(f"{label}={expected[:80]}: {error}") from None


def matches(matchers: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True when every matcher holds (an absent label is the empty string).
    Raises MatcherError for a matcher check_matchers would refuse."""
    for label, expected in matchers.items():
        value = labels.get(label, "")
        if expected.startswith(REGEX_PREFIX):
            regex = compiled_regex(expected[len(REGEX_PREFIX) :])
            if len(value) > MAX_MATCHED_CHARS or regex.fullmatch(value) is None:
                return False
        elif value != expected:
            return False
    return True


@lru_cache(maxsize=1024)
def compiled_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled, once. Raises MatcherError when it is invalid or out of bounds."""
    if len(pattern) > MAX_REGEX_CHARS:
        raise MatcherError(f"the regex is longer than {MAX_REGEX_CHARS} characters")
    try:
        parsed = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        raise MatcherError(f"invalid regex: {error}") from None
    _check_shape(parsed.data, inside_repeat=False)
    if (open_repeats := _open_repeats(parsed.data)) > MAX_OPEN_REPEATS:
        raise MatcherError(
            f"{open_repeats} open-ended repeats (like .* or +): at most {MAX_OPEN_REPEATS}"
        )
    return compiled


def _open_repeats(items: list[tuple[Any, Any]]) -> int:
    count = 0
    for opcode, argument in items:
        if opcode in _REPEATS:
            low, high, body = argument
            count += int(high - low >= _OPEN_ENDED) + _open_repeats(list(body))
        elif opcode is sre_constants.BRANCH:
            count += sum(_open_repeats(list(branch)) for branch in argument[1])
        elif opcode is sre_constants.SUBPATTERN:
            count += _open_repeats(list(argument[-1]))
        elif opcode in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            count += _open_repeats(list(argument[1]))
        elif opcode is sre_constants.ATOMIC_GROUP:
            count += _open_repeats(list(argument))
    return count


def _check_shape(items: list[tuple[Any, Any]], *, inside_repeat: bool) -> None:
    for opcode, argument in items:
        if opcode in (sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS):
            raise MatcherError("backreferences are not allowed")
        if opcode in _REPEATS:
            low, high, body = argument
            repeats = high != low
            if inside_repeat and repeats:
                raise MatcherError("a repeat inside a repeat (e.g. (a+)+) is not allowed")
            _check_shape(list(body), inside_repeat=inside_repeat or repeats)
        elif opcode is sre_constants.BRANCH:
            if inside_repeat:
                raise MatcherError("alternatives inside a repeat (e.g. (ab|cd)+) are not allowed")
            for branch in argument[1]:
                _check_shape(list(branch), inside_repeat=inside_repeat)
        elif opcode is sre_constants.SUBPATTERN:
            _check_shape(list(argument[-1]), inside_repeat=inside_repeat)
        elif opcode in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            _check_shape(list(argument[1]), inside_repeat=inside_repeat)
        elif opcode is sre_constants.ATOMIC_GROUP:
            _check_shape(list(argument), inside_repeat=inside_repeat)
