"""Access logs read from real files, route matching and the traffic summary."""

from __future__ import annotations

import gzip
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from checks.api_inventory.access_log import (
    LineParser,
    LogCursor,
    LogFormat,
    LogKind,
    Request,
    Skip,
    normalise_path,
    read_new,
)
from checks.api_inventory.routes import RouteMatcher
from checks.api_inventory.templates import infer_template
from checks.api_inventory.traffic import (
    TrafficAggregator,
    TrafficSummary,
    UnmatchedPath,
    ZombieReason,
    summarise,
)
from checks.api_inventory.traffic_json import from_json, to_json
from checks.interface import BadInput
from checks.openapi.inventory import Operation

pytestmark = pytest.mark.unit

UA = '"-" "curl/8.5.0"'


def line(request: str, status: str = "200") -> str:
    return f'10.0.0.1 - - [01/Jun/2024:10:00:00 +0200] "{request}" {status} 12 {UA}\n'


def op(method: str, path: str, **fields: Any) -> Operation:
    return Operation(method, path, re.sub(r"\{[^}]*\}", "{}", path), **fields)


def paths(requests: list[Request]) -> list[str]:
    return [request.path for request in requests]


# ---------------------------------------------------------------------------- parsing


def test_combined_lines_with_odd_request_lines_are_parsed_or_counted_never_raised(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        line("GET /a HTTP/1.1")
        + line("-", "400")
        + line(r"GET /say\"hi\" HTTP/1.1")
        + line(r"\x16\x03\x01\x00\xa5\x01\x00 HTTP/1.1", "400")
        + line("G@T /x HTTP/1.1", "400")
        + line("GET /caf\\xC3\\xA9 HTTP/1.1")
        + line("POST /users?token=secret HTTP/2.0", "201")
        + line("GET http://api.example/v1//users/%7Ejo%2Fx?q=1 HTTP/1.1")
        + line("GET /old-style")
        + "this is not an access log line\n"
        + "\n"
        + '1.2.3.4 - - [01/Jun/2024:10:00:00 +0000] "GET /common HTTP/1.1" 200 -\n'
    )

    requests, _, stats = read_new(log, None)

    assert [(r.method, r.path, r.status) for r in requests] == [
        ("GET", "/a", 200),
        ("GET", '/say"hi"', 200),
        ("GET", "/café", 200),
        ("POST", "/users", 201),
        ("GET", "/v1/users/~jo%2Fx", 200),
        ("GET", "/old-style", 200),
    ]
    assert requests[0].time == datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    # TLS bytes sent to the HTTP port, an invalid method, a stray line, a common-format line
    assert (stats.lines, stats.requests, stats.no_request, stats.malformed) == (11, 6, 1, 4)


def test_common_format_accepts_missing_sizes_and_rejects_combined_lines() -> None:
    parser = LineParser(LogFormat(kind=LogKind.COMMON))
    parsed = parser.parse('::1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 304 -')
    assert parsed == Request("GET", "/a.gif", 304, datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC))
    assert parser.parse(line("GET /a HTTP/1.1").rstrip("\n")) is Skip.MALFORMED
    assert parser.parse('h - - [bad time] "GET /a HTTP/1.1" - -') == Request("GET", "/a", 0, None)


def test_json_lines_use_the_configured_fields_and_skip_bad_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.json"
    rows: list[Any] = [
        {"http": {"verb": "GET", "uri": "/users/7?x=1"}, "code": 200, "ts": "2024-06-01T08:00Z"},
        {"http": {"verb": "DELETE", "uri": "/users/7"}, "code": "204", "ts": 1717228800},
        {"http": {"verb": "GET", "uri": "/x"}, "code": "abc"},
        {"http": {"verb": "GET"}, "code": 200},
        [1, 2],
    ]
    log.write_text("\n".join(json.dumps(row) for row in rows) + "\n{not json\n")
    log_format = LogFormat(
        kind=LogKind.JSON,
        method_field="http.verb",
        path_field="http.uri",
        status_field="code",
        time_field="ts",
    )

    requests, _, stats = read_new(log, None, log_format=log_format)

    when = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    assert requests == [
        Request("GET", "/users/7", 200, when),
        Request("DELETE", "/users/7", 204, when),
    ]
    assert (stats.requests, stats.malformed) == (2, 4)


def test_json_lines_with_a_request_line_field() -> None:
    parser = LineParser(LogFormat(kind=LogKind.JSON, request_field="request", time_field=None))
    assert parser.parse('{"request": "PUT /a//b/ HTTP/1.1", "status": 200}') == Request(
        "PUT", "/a/b/", 200, None
    )
    assert parser.parse('{"request": "-", "status": 400}') is Skip.NO_REQUEST


def test_paths_keep_reserved_escapes_and_decode_unreserved_ones() -> None:
    assert normalise_path("/a%2fb/%41%2D%5f%7e/x%20y") == "/a%2Fb/A-_~/x%20y"
    assert normalise_path("https://h:8443?q=/x") == "/"
    assert normalise_path("*") == "*"


# ---------------------------------------------------------------------------- incremental reading


def test_appended_lines_are_read_once_and_a_partial_line_waits(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("GET /1 HTTP/1.1") + line("GET /2 HTTP/1.1")[:30])

    first, cursor, _ = read_new(log, None)
    with log.open("a") as writer:
        writer.write(line("GET /2 HTTP/1.1")[30:] + line("GET /3 HTTP/1.1"))
    second, cursor, _ = read_new(log, LogCursor.from_json(json.loads(json.dumps(cursor.to_json()))))
    third, _, stats = read_new(log, cursor)

    assert (paths(first), paths(second), paths(third)) == (["/1"], ["/2", "/3"], [])
    assert stats.bytes_read == 0


def test_rename_rotation_loses_nothing_and_reads_nothing_twice(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with log.open("a", buffering=1) as old_handle:
        old_handle.write(line("GET /1 HTTP/1.1") + line("GET /2 HTTP/1.1"))
        first, cursor, _ = read_new(log, None)
        log.rename(tmp_path / "access.log.1")  # logrotate's "create" mode
        old_handle.write(line("GET /3 HTTP/1.1"))  # the server still writes to the old file
        # rotated but no new file yet: the rest of the old one is read, the cursor follows it
        between, cursor, _ = read_new(log, cursor)
        old_handle.write(line("GET /4 HTTP/1.1"))
    log.write_text(line("GET /5 HTTP/1.1"))  # the server reopened its log

    second, cursor, stats = read_new(log, cursor)
    third, _, _ = read_new(log, cursor)

    assert (paths(first), paths(between), paths(second)) == (["/1", "/2"], ["/3"], ["/4", "/5"])
    assert (stats.rotated_rest_read, stats.rotated_rest_missing, third) == (True, False, [])


def test_copytruncate_rotation_reads_the_copy_then_the_file_from_the_start(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("GET /1 HTTP/1.1"))
    _, cursor, _ = read_new(log, None)
    with log.open("a") as writer:
        writer.write(line("GET /2 HTTP/1.1"))
    (tmp_path / "access.log.1").write_bytes(log.read_bytes())  # copy, then truncate in place
    with log.open("r+") as writer:
        writer.truncate(0)
    with log.open("a") as writer:
        writer.write(line("GET /3 HTTP/1.1"))

    requests, cursor, stats = read_new(log, cursor)

    assert paths(requests) == ["/2", "/3"]
    assert stats.rotated_rest_read
    assert read_new(log, cursor)[0] == []


def test_truncation_without_a_copy_reads_the_new_content_and_says_lines_may_be_lost(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("GET /1 HTTP/1.1") + line("GET /2 HTTP/1.1"))
    _, cursor, _ = read_new(log, None)
    log.write_text(line("GET /3 HTTP/1.1"))  # same inode, shorter

    requests, _, stats = read_new(log, cursor)

    assert paths(requests) == ["/3"]
    assert stats.rotated_rest_missing


def test_rewritten_file_of_the_same_size_is_told_apart_by_its_head(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("GET /1 HTTP/1.1"))
    _, cursor, _ = read_new(log, None)
    log.write_text(line("GET /2 HTTP/1.1"))

    assert paths(read_new(log, cursor)[0]) == ["/2"]


def test_gzip_rotated_files_are_ignored(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("GET /1 HTTP/1.1"))
    _, cursor, _ = read_new(log, None)
    (tmp_path / "access.log.1").write_bytes(gzip.compress(log.read_bytes() + b"x\n"))
    log.unlink()
    log.write_text(line("GET /2 HTTP/1.1"))

    requests, _, stats = read_new(log, cursor)

    assert paths(requests) == ["/2"]
    assert stats.rotated_rest_missing


def test_max_bytes_bounds_each_read_and_the_rest_comes_next_time(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("".join(line(f"GET /{n} HTTP/1.1") for n in range(10)))
    size = len(line("GET /0 HTTP/1.1"))

    seen: list[str] = []
    cursor, reads = None, 0
    while True:
        requests, cursor, stats = read_new(log, cursor, max_bytes=size * 3 + 5)
        seen += paths(requests)
        reads += 1
        assert stats.bytes_read <= size * 3 + 5
        if not stats.more:
            break

    assert seen == [f"/{n}" for n in range(10)]
    assert reads == 4


def test_a_line_longer_than_max_bytes_is_skipped_not_stuck(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("x" * 500 + "\n" + line("GET /after HTTP/1.1"))

    first, cursor, stats = read_new(log, None, max_bytes=200)
    rest: list[str] = []
    while stats.more:
        requests, cursor, stats = read_new(log, cursor, max_bytes=200)
        rest += paths(requests)

    assert first == []
    assert rest == ["/after"]


def test_a_missing_log_and_a_bad_cursor_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        read_new(tmp_path / "absent.log", None)
    with pytest.raises(BadInput, match="not a log cursor"):
        LogCursor.from_json({"path": "x", "inode": "1", "offset": 0, "head": ""})


def test_a_cursor_of_another_log_is_not_applied(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(line("GET /1 HTTP/1.1"))
    stat = os.stat(log)
    foreign = LogCursor(str(tmp_path / "other.log"), stat.st_ino, stat.st_size, "")

    assert paths(read_new(log, foreign)[0]) == ["/1"]


# ---------------------------------------------------------------------------- matching

USERS = op("get", "/users/{userId}")
ME = op("get", "/users/me")
DELETE_USER = op("delete", "/users/{id}")
FILE = op("get", "/files/{name}.json")
ORDERS = op("get", "/users/{id}/orders/{orderId}")


def test_literal_segments_beat_parameters_and_fall_back_by_method() -> None:
    matcher = RouteMatcher([USERS, ME, DELETE_USER, ORDERS])

    assert matcher.match("GET", "/users/me") is ME
    assert matcher.match("GET", "/users/42") is USERS
    assert matcher.match("DELETE", "/users/me") is DELETE_USER
    assert matcher.match("GET", "/users/me/orders/9") is ORDERS
    assert matcher.match("POST", "/users/42") is None


def test_parameter_names_do_not_matter() -> None:
    as_written = Operation("get", "/users/{userId}", "/users/{userId}")  # template not normalised
    same = op("get", "/users/{id}")
    matcher = RouteMatcher([as_written, same])

    assert matcher.match("GET", "/users/7") is as_written
    assert same.key == op("get", "/users/{userId}").key == "GET /users/{}"


def test_base_paths_are_stripped_when_present() -> None:
    matcher = RouteMatcher([USERS, op("get", "/")], ["/api/v1/", "/v2"])

    assert matcher.match("GET", "/api/v1/users/1") is USERS
    assert matcher.match("GET", "/v2/users/1") is USERS
    assert matcher.match("GET", "/users/1") is USERS
    assert matcher.match("GET", "/api/v1") is not None
    assert matcher.match("GET", "/v2x/users/1") is None


def test_head_matches_get_unless_head_is_documented() -> None:
    head = op("head", "/files/{name}.json")
    assert RouteMatcher([USERS]).match("HEAD", "/users/1") is USERS
    assert RouteMatcher([FILE, head]).match("HEAD", "/files/a.json") is head


def test_trailing_slash_is_tolerated_unless_configured_not_to_be() -> None:
    assert RouteMatcher([USERS]).match("GET", "/users/1/") is USERS
    assert RouteMatcher([op("get", "/users/")]).match("GET", "/users") is not None
    strict = RouteMatcher([USERS, ME], trailing_slash_tolerant=False)
    assert strict.match("GET", "/users/1/") is None
    assert strict.match("GET", "/users/") is None  # a parameter is never empty


def test_partial_parameters_and_query_templates() -> None:
    by_query = Operation("get", "/search?type=user", "/search?type=user")
    plain = op("get", "/search")
    matcher = RouteMatcher([by_query, plain, FILE])

    assert matcher.match("GET", "/files/report.json") is FILE
    assert matcher.match("GET", "/files/report.xml") is None
    assert matcher.match("get", "/search") is plain
    assert RouteMatcher([by_query]).match("GET", "/search") is by_query


@pytest.mark.parametrize(
    ("path", "grouped"),
    [
        ("/users/12345/orders", "/users/{param}/orders"),
        ("/jobs/3f2b8c1e-9d4a-4c5b-8e7f-0a1b2c3d4e5f", "/jobs/{param}"),
        ("/blobs/5f3a2b1c9d8e", "/blobs/{param}"),
        ("/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/events/{param}"),
        ("/share/dGhpcyBpcyBhIHRva2Vu", "/share/{param}"),
        ("/t/Xk9_mQ2-vL8zR4tY1wB6nA", "/t/{param}"),
        ("/articles/my-first-post", "/articles/{param}"),
        ("/orders/order-2024-0042/items", "/orders/{param}/items"),
        ("/reports/2024-06-01", "/reports/{param}"),
        ("/people/jane.doe@example.com", "/people/{param}"),
        ("/tags/caf%C3%A9", "/tags/{param}"),
        ("/prices/12.50", "/prices/{param}"),
        ("/reset/" + "a1B2c3D4e5" * 5, "/reset/{param}"),
        ("/user-preferences/getUserPreferencesById", "/user-preferences/getUserPreferencesById"),
        ("/deadbeef/accepted/facade", "/deadbeef/accepted/facade"),
        ("/v2/oauth2/authorize", "/v2/oauth2/authorize"),
        ("/wp-login.php", "/wp-login.php"),
        ("/.well-known/security.txt", "/.well-known/security.txt"),
        ("/", "/"),
        ("www.google.com:443", "www.google.com:443"),
    ],
)
def test_identifier_segments_become_one_param_but_route_names_stay(path: str, grouped: str) -> None:
    assert infer_template(path) == grouped


# ---------------------------------------------------------------------------- summary

T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


def test_summary_counts_documented_served_shadow_refused_and_zombie_traffic() -> None:
    legacy = op("get", "/users/{id}/export")  # removed since the previous document
    old_me = op("get", "/users/me", deprecated=True)
    current = [USERS, old_me, DELETE_USER]
    requests = [
        Request("GET", "/users/1", 200, T0),
        Request("HEAD", "/users/2", 200, T1),
        Request("OPTIONS", "/users/2", 204, T1),  # a CORS preflight
        Request("GET", "/users/me", 200, T0),
        Request("GET", "/users/3/export", 200, T0),
        Request("GET", "/users/4/export", 500, T1),
        Request("GET", "/admin/7", 200, T0),
        Request("GET", "/admin/8", 404, T1),
        Request("GET", "/v1/admin/9", 302, None),
        Request("GET", "/internal/x", 403, T0),
        Request("GET", "/.env", 404, T0),
        Request("GET", "/.env", 404, T1),
        Request("POST", "/users/1", 405, T0),
        Request("CONNECT", "www.google.com:443", 400, T0),
        Request("OPTIONS", "/v1/anything", 204, T0),  # middleware answers any preflight
    ]
    zombies = {old_me.key: old_me, legacy.key: legacy}

    summary = summarise(requests, RouteMatcher(current, ["/v1"]), zombies)

    assert summary.requests == 15
    assert summary.documented == {USERS.key: 3, old_me.key: 1}
    admin, internal = summary.shadow
    assert (admin.method, admin.path, admin.count, admin.served_count) == (
        "GET",
        "/admin/{param}",
        3,
        2,
    )
    assert admin.examples == ("/admin/{param}", "/v1/admin/{param}")
    assert (admin.first_seen, admin.last_seen) == (T0, T1)
    assert (internal.path, internal.served, internal.auth_count) == ("/internal/x", False, 1)
    assert summary.unmatched == {"2xx": 1, "4xx": 5}
    assert summary.unmatched_top == (
        UnmatchedPath("GET", "/.env", 2),
        UnmatchedPath("CONNECT", "www.google.com:443", 1),
        UnmatchedPath("GET", "/admin/{param}", 1),
        UnmatchedPath("OPTIONS", "/anything", 1),
        UnmatchedPath("POST", "/users/{param}", 1),
    )
    assert [(z.key, z.reason, z.count, z.success_count, z.last_seen) for z in summary.zombie] == [
        (legacy.key, ZombieReason.REMOVED, 2, 1, T1),
        (old_me.key, ZombieReason.DEPRECATED, 1, 1, T0),
    ]
    assert (summary.first_seen, summary.last_seen) == (T0, T1)
    restored = from_json(json.loads(json.dumps(to_json(summary))))
    assert restored == summary
    assert isinstance(restored, TrafficSummary)


def test_a_full_tally_evicts_refused_noise_before_served_endpoints_and_counts_it() -> None:
    scan = [Request("GET", f"/scan-{n}.php", 404, T1) for n in range(500)]
    served = [Request("GET", "/hidden/a", 200, T0), Request("GET", "/hidden/b", 200, T0)]
    requests = served[:1] + scan[:250] + served[1:] + scan[250:]

    summary = summarise(requests, RouteMatcher([]), {}, max_templates=50)

    assert [s.path for s in summary.shadow] == ["/hidden/a", "/hidden/b"]
    assert 502 - 50 <= summary.evicted < 502 - 2  # the table stayed within its bound
    assert summary.evicted_served == 0
    assert summary.unmatched == {"4xx": 500}


def test_templates_already_reported_are_never_evicted() -> None:
    reported = ("GET", "/reported/{param}")
    requests = [Request("GET", "/reported/1", 200, T0)] + [
        Request("GET", f"/served-{n}.html", 200, T1) for n in range(200)
    ]
    aggregator = TrafficAggregator(RouteMatcher([]), {}, max_templates=20, pinned=[reported])
    for request in requests:
        aggregator.add(request)

    summary = aggregator.summary()

    assert reported in {(s.method, s.path) for s in summary.shadow}
    assert summary.evicted_served == summary.evicted > 150  # answered ones, counted as lost


def test_options_preflight_and_head_map_to_the_documented_operation_of_the_path() -> None:
    create = op("post", "/orders")
    matcher = RouteMatcher([USERS, create])

    assert matcher.match("OPTIONS", "/users/7") is USERS
    assert matcher.match("OPTIONS", "/orders") is create
    assert matcher.match("HEAD", "/users/7") is USERS
    assert matcher.match("OPTIONS", "/nowhere") is None
