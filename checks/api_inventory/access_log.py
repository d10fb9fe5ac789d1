"""Access logs: nginx/Apache "combined" or "common" lines, or JSON lines, read incrementally.

`LineParser.parse` turns one line into a `Request` or a `Skip` reason (never an exception);
`read_stream` hands on what was appended since a `LogCursor`, following logrotate's rename
(`access.log` -> `access.log.1`) and copytruncate rotations.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, BinaryIO

from checks.interface import BadInput
from monitor.bounded_files import UnsafeFile, open_regular

DEFAULT_MAX_BYTES = 256 * 2**20
HEAD_BYTES = 1024  # the cursor's digest covers this much of the file's start
_CHUNK_BYTES = 2**20
_GZIP_MAGIC = b"\x1f\x8b"


class LogKind(StrEnum):
    COMBINED = "combined"
    COMMON = "common"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class LogFormat:
    """How lines are written. The field names apply to JSON lines only; a dotted name
    (`http.request.method`) reaches into nested objects when no key has the whole name."""

    kind: LogKind = LogKind.COMBINED
    method_field: str = "method"
    path_field: str = "path"  # the request target; a query string is stripped
    request_field: str | None = None  # a whole request line, used instead of method + path
    status_field: str = "status"
    time_field: str | None = "time"  # ISO 8601, CLF time or epoch seconds


@dataclass(frozen=True, slots=True)
class Request:
    method: str  # as sent: GET, POST ...
    path: str  # see normalise_path; no query string
    status: int  # 0 when the log has none ("-")
    time: datetime | None  # UTC


class Skip(StrEnum):
    """Why a line gave no request."""

    BLANK = "blank"
    MALFORMED = "malformed"  # not a line of the format, or an unreadable request line
    NO_REQUEST = "no_request"  # request line "-": the client closed before sending one


# ---------------------------------------------------------------------------- one line

_CLF = re.compile(r'\S+ \S+ .*? \[([^\]]+)\] "([^"\\]*(?:\\.[^"\\]*)*)" (\d{3}|-) (?:\d+|-)')
# the usual line (no escapes, HTTP/1.x) in one match; the others go through _CLF
_USUAL_CLF = re.compile(
    r'\S+ \S+ \S+ \[([^\]]+)\] "([A-Z]{1,32}) ([^ "\\]+) HTTP/\d\.\d" (\d{3}) (?:\d+|-)'
)
_ESCAPE = re.compile(r"(?:\\x[0-9A-Fa-f]{2})+|\\([^x])")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_SCHEME_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(r"//+")
_CLF_TIME = re.compile(
    r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\.\d+)? ([+-]\d{4})"
)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_MONTHS = {month: number for number, month in enumerate(_MONTH_NAMES, 1)}
# shared strings and ints: a million requests hold one copy of each method and status
_METHODS = {m: m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")}
_STATUSES = {str(code): code for code in range(100, 600)} | {"-": 0}
_TIME_CACHE_SIZE = 4096


# Request(...) without the frozen dataclass's object.__setattr__ calls: half the time, and a
# read makes a million of them
_SET_FIELDS = tuple(vars(Request)[name].__set__ for name in ("method", "path", "status", "time"))


def _new_request(method: str, path: str, status: int, time: datetime | None) -> Request:
    request = object.__new__(Request)
    set_method, set_path, set_status, set_time = _SET_FIELDS
    set_method(request, method)
    set_path(request, path)
    set_status(request, status)
    set_time(request, time)
    return request


def normalise_path(target: str) -> str:
    """The path of a request target, as matched against templates: scheme and authority of an
    absolute URI dropped, query and fragment stripped, `%XX` of unreserved characters decoded
    (other escapes kept, hex upper-cased), runs of `/` collapsed. Targets that are no path
    (`*`, `host:443`) come back unchanged."""
    if not target.startswith("/"):
        authority = _SCHEME_AUTHORITY.match(target)
        if authority is None:
            return target
        target = target[authority.end() :]
        if not target.startswith("/"):
            target = "/" + target
    for mark in "?#":
        if mark in target:
            target = target[: target.index(mark)]
    if "%" in target:
        target = _PERCENT.sub(_decode_unreserved, target)
    if "//" in target:
        target = _SLASHES.sub("/", target)
    return target


def _decode_unreserved(escape: re.Match[str]) -> str:
    char = chr(int(escape[1], 16))
    return char if char in _UNRESERVED else "%" + escape[1].upper()


def _unescape(field: str) -> str:
    """Undo Apache's `\\"` / `\\\\` and nginx's `\\xHH` escapes of a quoted field; runs of
    `\\xHH` are bytes, decoded as UTF-8."""

    def unescape(escape: re.Match[str]) -> str:
        if escape[1] is not None:
            return escape[1]
        return bytes.fromhex(escape[0].replace("\\x", "")).decode("utf-8", errors="replace")

    return _ESCAPE.sub(unescape, field)


class LineParser:
    """Parses lines of one `LogFormat`. Keeps a small cache of parsed timestamps."""

    def __init__(self, log_format: LogFormat = LogFormat()) -> None:
        self.log_format = log_format
        self._json = log_format.kind is LogKind.JSON
        # combined: the referer's quote must follow (its content and later fields are unused)
        self._combined = log_format.kind is LogKind.COMBINED
        self._times: dict[str, datetime | None] = {}

    def parse(self, line: str) -> Request | Skip:
        """One line, without its newline."""
        if self._json:
            return self._parse_json(line)
        fields = _USUAL_CLF.match(line)
        if fields is not None and self._tail_fits(line, fields.end()):
            stamp, method, target, status = fields.groups()
            request: tuple[str, str] | Skip = (_METHODS.get(method, method), _path(target))
        else:
            fields = _CLF.match(line)
            if fields is None or not self._tail_fits(line, fields.end()):
                return Skip.BLANK if not line or line.isspace() else Skip.MALFORMED
            stamp, request_line, status = fields.groups()
            if "\\" in request_line:
                request_line = _unescape(request_line)
            request = _split_request_line(request_line)
            if isinstance(request, Skip):
                return request
        try:
            when = self._times[stamp]
        except KeyError:
            when = self._remember(stamp, _clf_time(stamp))
        code = _STATUSES.get(status)
        return _new_request(request[0], request[1], int(status) if code is None else code, when)

    def _tail_fits(self, line: str, end: int) -> bool:
        return line.startswith(' "', end) if self._combined else not line[end:].strip()

    def _remember(self, stamp: str, when: datetime | None) -> datetime | None:
        if len(self._times) >= _TIME_CACHE_SIZE:
            self._times.clear()
        self._times[stamp] = when
        return when

    def _parse_json(self, line: str) -> Request | Skip:
        if not line or line.isspace():
            return Skip.BLANK
        try:
            document = json.loads(line)
        except (ValueError, RecursionError):
            return Skip.MALFORMED
        if not isinstance(document, dict):
            return Skip.MALFORMED
        log_format = self.log_format
        if log_format.request_field is not None:
            request_line = _field(document, log_format.request_field)
            if request_line is None:
                return Skip.NO_REQUEST
            if not isinstance(request_line, str):
                return Skip.MALFORMED
            request = _split_request_line(request_line)
        else:
            method = _field(document, log_format.method_field)
            target = _field(document, log_format.path_field)
            if not isinstance(method, str) or not isinstance(target, str) or not target:
                return Skip.MALFORMED
            request = _request(method, target)
        if isinstance(request, Skip):
            return request
        status = _status(_field(document, log_format.status_field))
        if status is None:
            return Skip.MALFORMED
        when = None if log_format.time_field is None else _field(document, log_format.time_field)
        return _new_request(request[0], request[1], status, self._json_time(when))

    def _json_time(self, value: object) -> datetime | None:
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            return _epoch(value)
        if not isinstance(value, str):
            return None
        if value in self._times:
            return self._times[value]
        when = _clf_time(value) or _epoch(value) or _iso_time(value)
        return self._remember(value, when)


def _path(target: str) -> str:
    """normalise_path, skipped for a plain path: the usual target."""
    if "?" in target or "%" in target or "//" in target or "#" in target or target[:1] != "/":
        return normalise_path(target)
    return target


def _split_request_line(line: str) -> tuple[str, str] | Skip:
    if line in ("-", ""):
        return Skip.NO_REQUEST
    parts = line.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        return _request(parts[0], parts[1])
    if len(parts) == 2:  # HTTP/0.9
        return _request(parts[0], parts[1])
    return Skip.MALFORMED


def _request(method: str, target: str) -> tuple[str, str] | Skip:
    known = _METHODS.get(method)
    if known is None:
        if _TOKEN.fullmatch(method) is None:
            return Skip.MALFORMED
        known = method
    if not target:
        return Skip.MALFORMED
    return known, normalise_path(target)


def _field(document: Mapping[str, Any], name: str) -> Any:
    if name in document:
        return document[name]
    value: Any = document
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _status(value: object) -> int | None:
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in _STATUSES:
            return _STATUSES[value]
        if value.isdigit():
            return int(value)
    return None


def _clf_time(stamp: str) -> datetime | None:
    parts = _CLF_TIME.fullmatch(stamp)
    if parts is None or parts[2] not in _MONTHS:
        return None
    day, month, year, hour, minute, second, zone = parts.groups()
    try:
        when = datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError:
        return None
    if zone != "+0000":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:]))
        when = when - offset if zone[0] == "+" else when + offset
    return when


def _epoch(value: float | str) -> datetime | None:
    try:
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _iso_time(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---------------------------------------------------------------------------- incremental reading


@dataclass(frozen=True, slots=True)
class LogCursor:
    """Where the last read of the log `path` stopped: after the last complete line of the file
    `inode`. The head digest tells a file truncated and rewritten, or a reused inode, from the
    one that was read."""

    path: str
    inode: int
    offset: int
    head: str  # SHA-256 (hex) of the file's first min(offset, HEAD_BYTES) bytes

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "inode": self.inode, "offset": self.offset, "head": self.head}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> LogCursor:
        """Raises BadInput for anything but what to_json wrote."""
        path, inode, offset, head = (
            document.get(key) for key in ("path", "inode", "offset", "head")
        )
        if isinstance(path, str) and isinstance(head, str) and type(inode) is type(offset) is int:
            return cls(path, inode, offset, head)
        raise BadInput(f"not a log cursor: {document!r:.200}")


@dataclass(frozen=True, slots=True)
class ReadStats:
    lines: int  # complete lines read (blank ones not counted)
    requests: int
    malformed: int
    no_request: int
    bytes_read: int
    rotated_rest_read: bool  # the file was replaced or truncated; the rest of path.1 was read
    rotated_rest_missing: bool  # ... and path.1 was not the file last read: lines may be lost
    more: bool  # max_bytes stopped the read; the rest is left for the next one


class _Reader:
    """One read_new call: parsed requests and counters, bounded by the byte budget."""

    def __init__(self, parser: LineParser, budget: int, sink: Callable[[Request], None]) -> None:
        self.parser = parser
        self.budget = budget
        self.sink = sink
        self.requests = 0
        self.skipped = dict.fromkeys(Skip, 0)
        self.bytes_read = 0
        self.more = False

    def read(self, file: BinaryIO, start: int, *, finished: bool) -> int:
        """Parses complete lines from `start` on; returns the offset after the last one. A
        `finished` (rotated) file's last line counts even without its newline."""
        if self.budget <= 0:
            self.more = self.more or os.fstat(file.fileno()).st_size > start
            return start
        file.seek(start)
        offset, pending = start, b""
        while self.budget > 0:
            chunk = file.read(min(_CHUNK_BYTES, self.budget))
            if not chunk:
                break
            self.budget -= len(chunk)
            data = pending + chunk if pending else chunk
            end = data.rfind(b"\n") + 1
            if end:
                self._parse(data[:end])
            offset, pending = offset + end, data[end:]
        else:
            self.more = bool(file.read(1))
            if self.more and offset == start:  # one line longer than max_bytes: skip it
                self.skipped[Skip.MALFORMED] += 1
                offset, pending = offset + len(pending), b""
        if pending and finished and not self.more:
            self._parse(pending)
            offset += len(pending)
        self.bytes_read += offset - start
        return offset

    def _parse(self, block: bytes) -> None:
        parse, sink, skipped = self.parser.parse, self.sink, self.skipped
        lines = block.decode("utf-8", errors="replace").split("\n")
        if not lines[-1]:
            lines.pop()
        requests = 0
        for line in lines:
            request = parse(line)
            if isinstance(request, Request):
                sink(request)
                requests += 1
            else:
                skipped[request] += 1
        self.requests += requests

    def stats(self, rest_read: bool, rest_missing: bool) -> ReadStats:
        requests = self.requests
        malformed, no_request = self.skipped[Skip.MALFORMED], self.skipped[Skip.NO_REQUEST]
        return ReadStats(
            lines=requests + malformed + no_request,
            requests=requests,
            malformed=malformed,
            no_request=no_request,
            bytes_read=self.bytes_read,
            rotated_rest_read=rest_read,
            rotated_rest_missing=rest_missing,
            more=self.more,
        )


def read_new(
    path: str | os.PathLike[str],
    cursor: LogCursor | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    log_format: LogFormat = LogFormat(),
) -> tuple[list[Request], LogCursor, ReadStats]:
    """read_stream's requests as a list (tests and small logs)."""
    requests: list[Request] = []
    cursor, stats = read_stream(path, requests.append, cursor, max_bytes, log_format=log_format)
    return requests, cursor, stats


def read_stream(
    path: str | os.PathLike[str],
    sink: Callable[[Request], None],
    cursor: LogCursor | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    *,
    log_format: LogFormat = LogFormat(),
) -> tuple[LogCursor, ReadStats]:
    """Hands `sink` each request logged at `path` since `cursor` (all of the file without
    one), at most `max_bytes` of it, and returns the cursor for the next call; nothing is held
    beyond one chunk. When the file was replaced or truncated, the rest of the previous file
    is read first if it is at `path.1` (logrotate's name; a `.gz` is never read), then the new
    file from its start. Raises BadInput when neither the file nor the rest of the previous
    one can be read."""
    if max_bytes < 1:
        raise ValueError("max_bytes must be positive")
    name = os.fspath(path)
    if cursor is not None and cursor.path != name:
        cursor = None  # another log: start over
    reader = _Reader(LineParser(log_format), max_bytes, sink)
    try:
        current = open_regular(name)  # a FIFO or a device is refused, never waited on
    except FileNotFoundError:
        current = None
    except UnsafeFile as error:
        raise BadInput(error.problem, subject=name) from None
    except OSError as error:
        raise BadInput(f"cannot read: {error.strerror}", subject=name) from None
    try:
        if current is not None and cursor is not None and _continues(current, cursor):
            offset = reader.read(current, cursor.offset, finished=False)
            return _cursor(name, current, offset), reader.stats(False, False)
        rest_read = False
        if cursor is not None:
            rotated = _open_rotated(name + ".1", cursor)
            if rotated is not None:
                with rotated:
                    offset = reader.read(rotated, cursor.offset, finished=True)
                    if reader.more or current is None:
                        # not finished with it, or nothing else to read yet
                        return _cursor(name, rotated, offset), reader.stats(True, False)
                rest_read = True
        if current is None:
            raise BadInput("no such file", subject=name)
        offset = reader.read(current, 0, finished=False)
        stats = reader.stats(rest_read, cursor is not None and not rest_read)
        return _cursor(name, current, offset), stats
    finally:
        if current is not None:
            current.close()


def _head_digest(file: BinaryIO, offset: int) -> str:
    file.seek(0)
    return hashlib.sha256(file.read(min(offset, HEAD_BYTES))).hexdigest()


def _continues(file: BinaryIO, cursor: LogCursor) -> bool:
    """The open file is the one the cursor points into, grown or not."""
    status = os.fstat(file.fileno())
    return (
        status.st_ino == cursor.inode
        and status.st_size >= cursor.offset
        and _head_digest(file, cursor.offset) == cursor.head
    )


def _open_rotated(name: str, cursor: LogCursor) -> BinaryIO | None:
    """path.1 when it holds what the cursor read: renamed (same inode) or, for copytruncate,
    a copy (same head; an empty head proves nothing, so then only the inode counts)."""
    try:
        rotated = open_regular(name)
    except OSError:
        return None
    status = os.fstat(rotated.fileno())
    usable = (
        (status.st_ino == cursor.inode or cursor.offset > 0)
        and status.st_size >= cursor.offset
        and rotated.read(2) != _GZIP_MAGIC
        and _head_digest(rotated, cursor.offset) == cursor.head
    )
    if not usable:
        rotated.close()
        return None
    return rotated


def _cursor(name: str, file: BinaryIO, offset: int) -> LogCursor:
    inode = os.fstat(file.fileno()).st_ino
    return LogCursor(name, inode, offset, _head_digest(file, offset))
