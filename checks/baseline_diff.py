"""Drift between two flat `path -> value` mappings, judged on the tree their paths spell.

Neutral ground: config_drift judges these items, and `monitor.baselines` shows them when a
user compares an approved baseline with what was observed (or two baseline versions).

A block that is new (or gone) as a whole is one item holding its settings as members, not
one item per setting: inserting a `location`, an INI `[section]`, a list element or a file
of a watched directory is exactly one ADDED. Siblings without a name of their own (list
positions `[3]`, same-identity blocks numbered `server :80 #2`) are aligned by content
before they are compared, so an insert or a removal among them shifts no number into a
cascade of changed and removed items on the siblings after it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from checks.interface import baseline_subject

SECRET_MARK = "<secret hmac:"  # noqa: S105 - a marker, not a password

_INDEX = re.compile(r"^\[\d+\]$")
_TWIN = re.compile(r"^(?P<base>.*) #(?P<number>\d+)$", re.DOTALL)
# a file of a directory source: `conf.d/a.conf:key`, `conf.d/a.conf#sha256`
_FILE_KEY = re.compile(r"^(?P<file>[^:#]+?)(?P<rest>#(?:sha256|link)|:.*)$", re.DOTALL)
_FILE_ENTRY = re.compile(r"#(?:sha256|link)$")
_PAIRING_BUDGET = 10_000  # candidate pairs compared by similarity in one group


class Change(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


def is_masked(value: str) -> bool:
    """Whether a stored value is (or holds) a secret replaced by its keyed digest."""
    return value.startswith(SECRET_MARK) or SECRET_MARK in value


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One difference. A block added or removed as a whole has its settings as `members`
    (paths relative to the block's) and a summary of them as its value."""

    source: str
    path: str
    change: Change
    before: str | None
    after: str | None
    members: tuple[DriftItem, ...] = field(default=())

    @property
    def subject(self) -> str:
        return baseline_subject(self.source, self.path)

    @property
    def is_block(self) -> bool:
        return bool(self.members)


def block_summary(members: tuple[DriftItem, ...], prefix: str) -> str:
    """`{listen 80; return 444}`: the members' settings, secrets shown only as <secret>."""
    parts = []
    for member in members:
        value = member.after if member.after is not None else member.before or ""
        shown = "<secret>" if is_masked(value) else value
        parts.append(f"{_relative(member.path, prefix)} {shown}".strip())
    return "{" + "; ".join(parts) + "}"


def block_name(item: DriftItem) -> str:
    """The block's own identity, as written in the file: `server c.example.test`, or the
    file of a watched directory."""
    path = item.path
    if any(member.path.startswith((f"{path}#", f"{path}:")) for member in item.members):
        return path
    tokens = tokens_of(path, frozenset())
    if not tokens:
        return path
    last = _name(tokens[-1])
    if len(tokens) > 1 and tokens[-1].startswith("[") and not tokens[-1].startswith('["'):
        return _name(tokens[-2]) + last  # a list item: `scrape_configs[job_name=node]`
    return last


def diff(source: str, approved: Mapping[str, str], observed: Mapping[str, str]) -> list[DriftItem]:
    if approved == observed:
        return []
    keys = approved.keys() | observed.keys()
    changed = {path for path in keys if approved.get(path) != observed.get(path)}
    files = frozenset(
        path[: -len(entry[0])]
        for path in keys
        if path.endswith(("#sha256", "#link")) and (entry := _FILE_ENTRY.search(path))
    )
    # only the top-level entries that hold a difference, with their unnamed siblings, are
    # built into trees: a large file or directory with one change costs one pass of slicing
    wanted = {_top(path, files) for path in changed}
    wanted_groups = {group for token in wanted if (group := _group(token)) is not None}

    prefixes = tuple(wanted)

    def relevant(path: str) -> bool:
        if not wanted_groups and not path.startswith(prefixes):  # the fast test, in C
            return False
        top = _top(path, files)
        return top in wanted or (bool(wanted_groups) and _group(top) in wanted_groups)

    before = _tree({p: v for p, v in approved.items() if relevant(p)}, files)
    after = _tree({p: v for p, v in observed.items() if relevant(p)}, files)
    try:
        items = list(_compare(source, "", "", before, after))
    except RecursionError:  # nested deeper than the tree walk goes: setting by setting
        items = _flat(source, approved, observed, changed)
    return sorted(items, key=lambda item: item.path)


def _flat(
    source: str, approved: Mapping[str, str], observed: Mapping[str, str], changed: set[str]
) -> list[DriftItem]:
    items: list[DriftItem] = []
    for path in changed:
        before, after = approved.get(path), observed.get(path)
        change = Change.ADDED if before is None else Change.REMOVED if after is None else None
        items.append(DriftItem(source, path, change or Change.CHANGED, before, after))
    return items


Signature = frozenset[tuple[str, str]]  # a node's settings, paths relative to it


@dataclass(slots=True)
class _Node:
    value: str | None = None
    children: dict[str, _Node] = field(default_factory=dict)

    def leaves(self, path: str) -> Iterator[tuple[str, str]]:
        if self.value is not None:
            yield path, self.value
        for token, child in self.children.items():
            yield from child.leaves(path + token)

    def signature(self) -> Signature:
        return frozenset(self.leaves(""))


def _tree(flat: Mapping[str, str], files: frozenset[str]) -> _Node:
    root = _Node()
    for path, value in flat.items():
        node = root
        for token in tokens_of(path, files):
            node = node.children.setdefault(token, _Node())
        node.value = value
    return root


def _top(path: str, files: frozenset[str]) -> str:
    """The first of `path`'s tokens (as `tokens_of` would cut it), found without the rest."""
    cut = len(path)
    for mark in (":", "#"):
        index = path.find(mark)
        if 0 <= index < cut:
            cut = index
    if cut < len(path) and path[:cut] in files:
        return path[:cut]
    if path.startswith(("line[", '["', "[")):
        return tokens_of(path, files)[0]
    ends = [index for mark in ".[" if (index := path.find(mark, 1)) > 0]
    return path[: min(ends)] if ends else path


def tokens_of(path: str, files: frozenset[str]) -> list[str]:
    """`a.b[0]["c.d"]` -> [a, .b, [0], ["c.d"]]: joined again they are the path. A
    directory source's file is one token, and so is a text line `line[...]`."""
    tokens: list[str] = []
    position = 0
    file_key = _FILE_KEY.match(path)
    if file_key and file_key["file"] in files:
        tokens.append(file_key["file"])
        position = file_key.start("rest")
        if path[position] == "#" or path.startswith("line[", position + 1):
            return [*tokens, path[position:]]
    elif path.startswith("line["):
        return [path]
    while position < len(path):
        if path.startswith('["', position):
            end = _quoted_end(path, position + 2)
            if end < 0:
                return [*tokens, path[position:]]
        elif path[position] == "[":
            end = path.find("]", position) + 1
            if end <= 0:
                return [*tokens, path[position:]]
        else:
            end = position + 1 if path[position] in ".:" else position
            while end < len(path) and path[end] not in ".[":
                end += 1
        tokens.append(path[position:end])
        position = end
    return tokens


def _quoted_end(path: str, position: int) -> int:
    """The index after `"]` that closes a JSON string begun before `position`, or -1."""
    while position < len(path):
        if path[position] == "\\":
            position += 2
        elif path[position] == '"':
            return position + 2 if path.startswith('"]', position) else -1
        else:
            position += 1
    return -1


def _name(token: str) -> str:
    if token.startswith('["'):
        try:
            return str(json.loads(token[1:-1]))
        except ValueError:
            return token[2:-2]
    return token.lstrip(".:")


def _group(token: str) -> str | None:
    """The group of siblings without a name of their own that `token` belongs to."""
    if _INDEX.match(token):
        return "[]"
    twin = _TWIN.match(_name(token))
    if twin is not None:
        return "twin:" + token[:1] + twin["base"]
    return None


def _order(token: str) -> int:
    if _INDEX.match(token):
        return int(token[1:-1])
    twin = _TWIN.match(_name(token))
    return int(twin["number"]) if twin else 0


def _compare(
    source: str, before_path: str, after_path: str, before: _Node | None, after: _Node | None
) -> Iterator[DriftItem]:
    if before is None or after is None:
        yield _whole(source, before_path, after_path, before, after)
        return
    if before.value != after.value:
        if before.value is None:
            yield DriftItem(source, after_path, Change.ADDED, None, after.value)
        elif after.value is None:
            yield DriftItem(source, before_path, Change.REMOVED, before.value, None)
        else:
            yield DriftItem(source, after_path, Change.CHANGED, before.value, after.value)
    renamed = _renamed(before, after)
    for was, now in renamed.items():
        yield from _compare(
            source, before_path + was, after_path + now, before.children[was], after.children[now]
        )
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for token in before.children.keys() | after.children.keys():
        if token in renamed or token in renamed.values():
            continue
        group = _group(token)
        if group is None:
            yield from _compare(
                source,
                before_path + token,
                after_path + token,
                before.children.get(token),
                after.children.get(token),
            )
            continue
        olds, news = groups.setdefault(group, ([], []))
        if token in before.children:
            olds.append(token)
        if token in after.children:
            news.append(token)
    for group, (olds, news) in groups.items():
        olds.sort(key=_order)
        news.sort(key=_order)
        pairs = _aligned(
            [before.children[t] for t in olds],
            [after.children[t] for t in news],
            ordered=group == "[]",
        )
        for old, new in pairs:
            yield from _compare(
                source,
                before_path + olds[old] if old is not None else "",
                after_path + news[new] if new is not None else "",
                before.children[olds[old]] if old is not None else None,
                after.children[news[new]] if new is not None else None,
            )


def _renamed(before: _Node, after: _Node) -> dict[str, str]:
    """Blocks whose key is made from their own settings (an nginx `server` by its first
    server_name, an Apache `VirtualHost` by its ServerName), re-keyed because such a setting
    changed: old token -> new token, for the pairs that share most of their settings. The
    setting that changed is the drift, not a block removed and another added."""
    olds = _content_keyed(before, after)
    news = _content_keyed(after, before)
    renamed: dict[str, str] = {}
    for family in olds.keys() & news.keys():
        old_leaves = {t: set(before.children[t].leaves("")) for t in olds[family]}
        new_leaves = {t: set(after.children[t].leaves("")) for t in news[family]}
        candidates = sorted(
            (-len(old_leaves[o] & new_leaves[n]), o, n) for o in old_leaves for n in new_leaves
        )
        for negative_shared, old, new in candidates:
            smaller = min(len(old_leaves[old]), len(new_leaves[new]))
            if -negative_shared * 2 < smaller or old in renamed or new in renamed.values():
                continue
            renamed[old] = new
    return renamed


def _content_keyed(side: _Node, other: _Node) -> dict[str, list[str]]:
    """The block tokens of `side` missing from `other` whose key comes from their own
    settings, by family (what the key is without that setting)."""
    families: dict[str, list[str]] = {}
    for token, node in side.children.items():
        if token in other.children or not node.children or _group(token) is not None:
            continue
        name = _name(token)
        if name == "server" or name.startswith("server "):
            families.setdefault("server", []).append(token)
        elif name.lower().startswith("virtualhost "):
            server_name = next(
                (
                    child.value
                    for child_token, child in node.children.items()
                    if _name(child_token).lower() == "servername" and child.value
                ),
                None,
            )
            if server_name and name.endswith(f" {server_name}"):
                family = name[: -len(server_name) - 1]
                families.setdefault(family, []).append(token)
    return families


def _whole(
    source: str, before_path: str, after_path: str, before: _Node | None, after: _Node | None
) -> DriftItem:
    """A node present on one side only: one item, a block when it holds several settings."""
    removed = after is None
    node, path = (before, before_path) if removed else (after, after_path)
    assert node is not None
    change = Change.REMOVED if removed else Change.ADDED

    def item(at: str, value: str, members: tuple[DriftItem, ...] = ()) -> DriftItem:
        was, now = (value, None) if removed else (None, value)
        return DriftItem(source, at, change, was, now, members)

    leaves = list(node.leaves(path))
    if len(leaves) == 1:  # one setting: itself, under its full path (`Host bastion.User`)
        return item(*leaves[0])
    members = tuple(item(leaf, value) for leaf, value in leaves)
    return item(path, block_summary(members, path), members)


def _aligned(
    olds: list[_Node], news: list[_Node], ordered: bool
) -> list[tuple[int | None, int | None]]:
    """Pairs (old index, new index) of siblings that are the same item; an unpaired one is
    added or removed. List items keep their order (a moved item is removed and added);
    same-identity blocks are matched whatever their order."""
    old_signatures = [node.signature() for node in olds]
    new_signatures = [node.signature() for node in news]
    pairs: list[tuple[int | None, int | None]] = []
    if ordered:
        matcher = difflib.SequenceMatcher(None, old_signatures, new_signatures, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
            else:
                pairs.extend(_similar(olds, news, list(range(i1, i2)), list(range(j1, j2))))
        return pairs
    unmatched_old: list[int] = []
    free: dict[Signature, list[int]] = {}
    for index, signature in enumerate(new_signatures):
        free.setdefault(signature, []).append(index)
    for index, signature in enumerate(old_signatures):
        if free.get(signature):
            pairs.append((index, free[signature].pop(0)))
        else:
            unmatched_old.append(index)
    unmatched_new = sorted(i for indexes in free.values() for i in indexes)
    pairs.extend(_similar(olds, news, unmatched_old, unmatched_new))
    return pairs


def _similar(
    olds: list[_Node], news: list[_Node], old_indexes: list[int], new_indexes: list[int]
) -> list[tuple[int | None, int | None]]:
    """Changed siblings paired with the most similar one (most settings in common; none in
    common: not the same item). Past the budget, paired in order."""
    if len(old_indexes) * len(new_indexes) > _PAIRING_BUDGET:
        return _in_order(old_indexes, new_indexes)
    pairs: list[tuple[int | None, int | None]] = []
    old_leaves = {i: set(olds[i].leaves("")) for i in old_indexes}
    new_leaves = {j: set(news[j].leaves("")) for j in new_indexes}
    candidates = sorted(
        (
            (-len(old_leaves[i] & new_leaves[j]), abs(i - j), i, j)
            for i in old_indexes
            for j in new_indexes
        ),
    )
    taken_old: set[int] = set()
    taken_new: set[int] = set()
    for shared, _, i, j in candidates:
        if shared == 0 or i in taken_old or j in taken_new:
            continue
        pairs.append((i, j))
        taken_old.add(i)
        taken_new.add(j)
    # what shares nothing with anything is paired in order (a list item rewritten in place)
    rest_old = [i for i in old_indexes if i not in taken_old]
    rest_new = [j for j in new_indexes if j not in taken_new]
    return pairs + _in_order(rest_old, rest_new)


def _in_order(
    old_indexes: list[int], new_indexes: list[int]
) -> list[tuple[int | None, int | None]]:
    paired = min(len(old_indexes), len(new_indexes))
    pairs: list[tuple[int | None, int | None]] = list(
        zip(old_indexes[:paired], new_indexes[:paired], strict=True)
    )
    pairs.extend((i, None) for i in old_indexes[paired:])
    pairs.extend((None, j) for j in new_indexes[paired:])
    return pairs


def _relative(path: str, prefix: str) -> str:
    return path[len(prefix) :].lstrip(".:") if path.startswith(prefix) else path
