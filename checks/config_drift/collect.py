"""Read every configured source into a flat, masked state; a source that fails is recorded
as a failure, never as an empty state (which would read as "everything was removed")."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from checks.config_drift import formats
from checks.config_drift.facts import DriftRaw, ReadAs, ReadNote, SourceFailure, SourceState
from checks.config_drift.flatten import flatten
from checks.config_drift.params import (
    CommandSource,
    ConfigDriftParams,
    DirectorySource,
    FileFormat,
    FileSource,
    HttpSource,
    Source,
)
from checks.config_drift.references import referenced_files
from checks.config_drift.secrets import SecretMasker
from checks.files import read_input_file, read_secret_input
from checks.http import fetch
from checks.interface import (
    BadInput,
    CheckContext,
    CheckError,
    CheckMisconfigured,
    TargetUnreachable,
)
from monitor.bounded_files import open_regular
from monitor.model import CheckKind, Target

SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "cache-control",
)
_HASH_CHUNK = 1 << 20
_DIRECTORY_TEXT_LIMIT = 1 << 20


def collect(target: Target, params: ConfigDriftParams, context: CheckContext) -> DriftRaw:
    history = context.history
    key = history.hash_key() if history is not None else secrets.token_bytes(32)
    masker = SecretMasker(key)
    states: list[SourceState] = []
    failures: list[SourceFailure] = []
    for source in params.sources:
        try:
            states.append(_read(source, target, params, context, masker))
        except CheckError as error:
            failures.append(SourceFailure(source.id, str(error)))
        except OSError as error:
            failures.append(SourceFailure(source.id, f"{error.strerror or error}"))
    baseline = history.approved_baseline(CheckKind.CONFIG_DRIFT, target.name) if history else None
    return DriftRaw(
        target=target.name, states=tuple(states), failures=tuple(failures), baseline=baseline
    )


def _read(
    source: Source,
    target: Target,
    params: ConfigDriftParams,
    context: CheckContext,
    masker: SecretMasker,
) -> SourceState:
    entries: dict[str, str]
    unreadable: tuple[tuple[str, str], ...] = ()
    notes: tuple[ReadNote, ...] = ()
    if source.file is not None:
        spec = source.file if isinstance(source.file, FileSource) else FileSource(path=source.file)
        entries, unreadable, notes = _read_file(spec, params)
    elif source.directory is not None:
        directory = source.directory
        spec_dir = (
            directory if isinstance(directory, DirectorySource) else DirectorySource(path=directory)
        )
        entries, unreadable, notes = _read_directory(spec_dir, params, context)
    elif source.http is not None:
        entries = _read_http(source.http, target, params, context)
    elif source.command is not None:
        entries = _read_command(source.command, params, context)
    else:
        assert source.snapshot is not None
        entries = _read_snapshot(source.snapshot, target, params, context)
    return SourceState(source.id, masker.mask_all(entries), unreadable, notes)


def _read_file(
    spec: FileSource, params: ConfigDriftParams
) -> tuple[dict[str, str], tuple[tuple[str, str], ...], tuple[ReadNote, ...]]:
    path = spec.path
    origin = str(path)
    data = read_input_file(path, params.max_bytes)
    notes: tuple[ReadNote, ...] = ()
    if spec.format is not FileFormat.AUTO:
        entries = formats.parse(data, spec.format, origin, params.max_keys, spec.list_keys)
    else:
        parsed = formats.parse_detected(data, path, origin, params.max_keys, spec.list_keys)
        entries = parsed.entries
        notes = (ReadNote("", parsed.note),) if parsed.note else ()
    users, unreadable = referenced_files(entries, path.parent, params.max_bytes)
    return entries | users, unreadable, notes


def _read_directory(
    spec: DirectorySource, params: ConfigDriftParams, context: CheckContext
) -> tuple[dict[str, str], tuple[tuple[str, str], ...], tuple[ReadNote, ...]]:
    root = spec.path
    if not root.is_dir():
        raise BadInput("not a directory", subject=str(root))
    entries: dict[str, str] = {}
    unreadable: list[tuple[str, str]] = []
    notes: list[ReadNote] = []
    count = 0

    def walk_error(error: OSError) -> None:
        relative = os.path.relpath(error.filename or root, root)
        if relative == ".":
            raise error
        unreadable.append((f"{relative}/", error.strerror or str(error)))

    for directory, subdirectories, files in os.walk(root, onerror=walk_error):
        subdirectories.sort()
        # a symlink to a directory is an entry (its target), never walked into: no loops
        links = [name for name in subdirectories if os.path.islink(os.path.join(directory, name))]
        for name in sorted(files + links):
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            if not _selected(relative, spec):
                continue
            count += 1
            if count > spec.max_files:
                raise BadInput(f"more than {spec.max_files} files", subject=str(root))
            try:
                read = _directory_file(path, relative, spec, params, context)
            except OSError as error:
                unreadable.append((relative, error.strerror or str(error)))
            except _FileOverLimit as error:
                unreadable.append((relative, str(error)))
            else:
                entries.update(read.entries)
                notes.extend((read.note,) if read.note else ())
                unreadable.extend(read.unreadable)
            if len(entries) > params.max_keys:
                raise BadInput(f"more than {params.max_keys} keys", subject=str(root))
    return entries, tuple(unreadable), tuple(notes)


def _selected(relative: str, spec: DirectorySource) -> bool:
    name = relative.rsplit("/", 1)[-1]

    def matches(patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(relative, p) for p in patterns)

    return matches(spec.include) and not matches(spec.exclude)


class _FileOverLimit(Exception):
    """A file in a watched directory larger than `max_bytes`: named as unreadable."""


@dataclass(frozen=True, slots=True)
class _FileRead:
    """A watched directory's file: its entries, how it was read when not in a format of
    its own, and the entries (password files it names) that could not be read."""

    entries: dict[str, str]
    note: ReadNote | None = None
    unreadable: tuple[tuple[str, str], ...] = ()


def _directory_file(
    path: Path,
    relative: str,
    spec: DirectorySource,
    params: ConfigDriftParams,
    context: CheckContext,
) -> _FileRead:
    """A file's digest and, when it is text, its content; the note says when that content
    was not read in a format of its own (never a silent downgrade)."""
    if path.is_symlink():
        return _FileRead({f"{relative}#link": os.readlink(path)})
    digest = hashlib.sha256()
    head = b""
    read = 0
    with open_regular(path) as handle:  # a FIFO or a device is refused, never waited on
        while chunk := handle.read(_HASH_CHUNK):
            read += len(chunk)
            if read > params.max_bytes:  # whatever stat() said (a /proc file says 0)
                raise _FileOverLimit(f"more than {params.max_bytes} bytes")
            if context.remaining() <= 0:
                raise TargetUnreachable(
                    "the run's deadline passed while hashing", subject=str(path)
                )
            if len(head) <= _DIRECTORY_TEXT_LIMIT:
                head += chunk
            digest.update(chunk)
    entries = {f"{relative}#sha256": digest.hexdigest()}
    if len(head) > _DIRECTORY_TEXT_LIMIT:
        reason = f"over {_DIRECTORY_TEXT_LIMIT} bytes: its content is not compared key by key"
        return _FileRead(entries, ReadNote(relative, reason, ReadAs.DIGEST))
    try:
        text = formats.decode_text(head, relative)
    except BadInput:
        return _FileRead(entries)  # binary content: its digest is what there is to compare
    explicit = _explicit_format(relative, spec)
    note: str | None = None
    try:
        if explicit is not None:
            content = formats.parse(head, explicit, relative, params.max_keys, spec.list_keys)
        else:
            parsed = formats.parse_detected(head, path, relative, params.max_keys, spec.list_keys)
            content, note = parsed.entries, parsed.note
    except BadInput as error:  # not valid in its explicit format, or too many keys
        try:
            content = formats.text_lines(text, relative, params.max_keys)
        except BadInput as again:
            return _FileRead(entries, ReadNote(relative, again.message, ReadAs.DIGEST))
        note = f"{error.message}; compared as text lines"
    users, unreadable = referenced_files(content, path.parent, params.max_bytes)
    entries.update((f"{relative}:{key}", value) for key, value in (content | users).items())
    return _FileRead(
        entries,
        ReadNote(relative, note) if note else None,
        tuple((f"{relative}:{key}", why) for key, why in unreadable),
    )


def _explicit_format(relative: str, spec: DirectorySource) -> FileFormat | None:
    name = relative.rsplit("/", 1)[-1]
    for pattern, file_format in spec.formats.items():
        if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(relative, pattern):
            return None if file_format is FileFormat.AUTO else file_format
    return None


def _read_http(
    spec: HttpSource, target: Target, params: ConfigDriftParams, context: CheckContext
) -> dict[str, str]:
    if spec.url is not None:
        url = spec.url
    elif target.url is not None:
        url = target.url.rstrip("/") + spec.path
    else:
        raise CheckMisconfigured("an http source needs a url, or a target with a url")
    request_headers = {}
    if spec.auth_header_file is not None:
        request_headers["Authorization"] = read_secret_input(
            spec.auth_header_file, "auth_header_file"
        )
    response = fetch(
        url,
        timeout=context.io_timeout(spec.timeout.total_seconds()),
        max_bytes=params.max_bytes,
        verify=spec.verify_tls,
        headers=request_headers,
        read_body=spec.json_keys is not None,
        egress=context.egress,
        deadline=context.deadline,
    )
    if response.status >= 500:
        raise BadInput(f"answered HTTP {response.status}", subject=url)
    entries = {"status": str(response.status)}
    for index, redirect in enumerate(response.redirects):
        # without the query: tokens travel in redirect URLs (?access_token=...)
        location = redirect.location.split("?", 1)[0].split("#", 1)[0]
        entries[f"redirect[{index}]"] = f"{redirect.status} {location}"
    wanted = spec.headers if spec.headers is not None else SECURITY_HEADERS
    for name, value in response.header_values().items():
        if "*" in wanted or name in wanted:
            entries[f"header.{name}"] = value
    if spec.json_keys is not None:
        try:
            body = json.loads(formats.decode_text(response.body, url))
        except (json.JSONDecodeError, RecursionError, ValueError) as error:
            raise BadInput(f"body is not JSON: {error}", subject=url) from None
        for key, value in flatten(body, params.max_keys, url).items():
            if any(fnmatch.fnmatchcase(key, pattern) for pattern in spec.json_keys):
                entries[f"body.{key}"] = value
    return entries


def _read_command(
    spec: CommandSource, params: ConfigDriftParams, context: CheckContext
) -> dict[str, str]:
    origin = f"command {spec.argv[0]!r}"
    try:
        completed = subprocess.run(
            spec.argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=context.io_timeout(spec.timeout.total_seconds()),
            check=False,
        )
    except FileNotFoundError:
        raise CheckMisconfigured("program not found", subject=origin) from None
    except subprocess.TimeoutExpired as expired:
        raise BadInput(f"did not finish within {expired.timeout:g} s", subject=origin) from None
    if completed.returncode != 0:
        # stderr is not quoted: a failing command may print secrets there.
        lines = len(completed.stderr.splitlines())
        raise BadInput(
            f"exited with status {completed.returncode} ({lines} lines on stderr, not shown)",
            subject=origin,
        )
    if len(completed.stdout) > params.max_bytes:
        raise BadInput(f"output is over {params.max_bytes} bytes", subject=origin)
    return formats.parse(completed.stdout, spec.format, origin, params.max_keys)


def _read_snapshot(
    kind: CheckKind, target: Target, params: ConfigDriftParams, context: CheckContext
) -> dict[str, str]:
    origin = f"{kind} snapshot"
    if context.history is None:
        raise BadInput(
            "snapshots of other checks need the store (not in one-off scans)", subject=origin
        )
    document = context.history.latest_snapshot(kind, target.name)
    if document is None:
        raise BadInput(f"no {kind} run has kept a snapshot of this target yet", subject=origin)
    return flatten(document, params.max_keys, origin)
