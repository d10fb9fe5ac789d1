"""Realistic, seeded API traffic for the api_inventory tests: a 41-operation spec under `/v1`,
access-log lines in combined, common or JSON format with real-looking identifiers (numbers,
UUIDs, hashes, slugs, dates, e-mail addresses, encoded characters), CORS preflights, HEAD,
query strings, scanner noise, undocumented endpoints that answer, health checks and static
assets, deprecated and removed operations; and the shadow and zombie endpoints each batch
must produce, stated exactly."""

from __future__ import annotations

import json
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def _op(**extra: Any) -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}}, **extra}


def _ops(*methods: str, **extra: Any) -> dict[str, Any]:
    return {method: _op(**extra) for method in methods}


# 41 operations; V_B removes GET /users/{userId}/export and DELETE /sessions/{sessionId}
PATHS_A: dict[str, Any] = {
    "/users": _ops("get", "post"),
    "/users/me": _ops("get", "patch"),
    "/users/{userId}": _ops("get", "put", "delete"),
    "/users/{userId}/orders": _ops("get"),
    "/users/{userId}/export": _ops("get"),
    "/orders": _ops("get", "post"),
    "/orders/{orderId}": _ops("get", "patch", "delete"),
    "/orders/{orderId}/items": _ops("get", "post"),
    "/orders/{orderId}/items/{itemId}": _ops("get", "delete"),
    "/articles": _ops("get", "post"),
    "/articles/{slug}": _ops("get", "put", "delete"),
    "/articles/{slug}/comments": _ops("get", "post"),
    "/products": _ops("get"),
    "/products/{sku}": _ops("get"),
    "/invoices/{invoiceId}": _ops("get"),
    "/invoices/{invoiceId}.pdf": _ops("get"),
    "/sessions": _ops("post"),
    "/sessions/{sessionId}": _ops("delete"),
    "/search": _ops("get"),
    "/tags/{tag}/articles": _ops("get"),
    "/legacy/report": _ops("get", deprecated=True),
    "/webhooks": _ops("get", "post"),
    "/webhooks/{webhookId}": _ops("delete"),
    "/teams": _ops("get", "post"),
    "/teams/{teamId}": _ops("get"),
    "/teams/{teamId}/members": _ops("get"),
}
REMOVED_IN_B = {("get", "/users/{userId}/export"), ("delete", "/sessions/{sessionId}")}
PATHS_B = {
    path: kept
    for path, ops in PATHS_A.items()
    if (kept := {m: o for m, o in ops.items() if (m, path) not in REMOVED_IN_B})
}


def spec(paths: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "openapi": "3.0.3",
            "info": {"title": "Shop", "version": "1"},
            "servers": [{"url": "/v1"}],
            "paths": paths,
        }
    ).encode()


# What the traffic must produce, exactly: subjects of open findings after the scenario.
SHADOW_SERVED = {
    "GET /admin/users/{param}",
    "POST /internal/jobs/{param}/retry",
    "GET /debug/vars",
    "GET /files/{param}/raw",
    "GET /articles/{param}/raw",
    "PUT /users/{param}/avatar",
    "GET /people/{param}",
    "GET /search/{param}/suggest",
    "GET /reports/{param}/download",
    "GET /internal/flags",  # requested once
    "DELETE /cache/{param}",  # requested once
}
SHADOW_AUTH = {"GET /internal/metrics", "GET /admin/audit"}  # 401 / 403: low
ZOMBIES_DEPRECATED = {"GET /legacy/report"}
ZOMBIES_REMOVED = {"GET /users/{}/export", "DELETE /sessions/{}"}
IGNORE_RULES = [
    {"path": "/healthz", "reason": "load balancer health check"},
    {"path": "/static/*", "reason": "static assets"},
    {"path": "/openapi.json", "reason": "the spec itself"},
    {"path": "/docs*", "reason": "Swagger UI"},
]


@dataclass(frozen=True, slots=True)
class Line:
    method: str
    target: str  # as sent: may carry a query string, may lack /v1
    status: int
    when: datetime


def render(line: Line, log_format: str) -> str:
    if log_format == "json":
        return json.dumps(
            {
                "time": line.when.isoformat(),
                "method": line.method,
                "path": line.target,
                "status": line.status,
                "ua": "Mozilla/5.0",
            }
        )
    stamp = line.when.strftime("%d/%b/%Y:%H:%M:%S +0000")
    version = "HTTP/2.0" if line.method == "PRI" else "HTTP/1.1"
    common = f'203.0.113.7 - - [{stamp}] "{line.method} {line.target} {version}" {line.status} 512'
    if log_format == "common":
        return common
    return common + ' "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64)"'


class Traffic:
    """Seeded request lines; `documented`, `zombie` and the rest are mixed into batches."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.scan_number = 0
        self.once_sent = False

    # identifiers ------------------------------------------------------------------------
    def _int(self) -> str:
        return str(self.rng.randint(1, 99999))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _hex(self) -> str:
        return f"{self.rng.getrandbits(96):024x}"

    def _slug(self) -> str:
        words = ("my", "first", "post", "why", "we", "moved", "to", "rust", "api", "design")
        return "-".join(self.rng.sample(words, self.rng.randint(3, 5)))

    def _date(self) -> str:
        return f"2024-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"

    def _email(self) -> str:
        return f"{self.rng.choice(('jane.doe', 'bob', 'a.b-c'))}{self._int()}@example.com"

    def _base(self) -> str:
        return "/v1" if self.rng.random() < 0.9 else ""

    def _query(self) -> str:
        return f"?page={self._int()}&token={self._hex()}" if self.rng.random() < 0.2 else ""

    # kinds of request --------------------------------------------------------------------
    def documented(self) -> tuple[str, str, int]:
        r = self.rng
        b = self._base()
        choices = [
            ("GET", f"{b}/users", 200),
            ("POST", f"{b}/users", 201),
            ("GET", f"{b}/users/me", 200),
            ("GET", f"{b}/users/{self._int()}", 200),
            ("HEAD", f"{b}/users/{self._int()}", 200),
            ("DELETE", f"{b}/users/{self._int()}", 204),
            ("GET", f"{b}/users/{self._int()}/orders", 200),
            ("GET", f"{b}/orders/{self._uuid()}", 200),
            ("PATCH", f"{b}/orders/{self._uuid()}", 200),
            ("GET", f"{b}/orders/{self._uuid()}/items/{self._int()}", 200),
            ("GET", f"{b}/articles/{self._slug()}", 200),
            ("GET", f"{b}/articles/{self._slug()}/comments", 200),
            ("GET", f"{b}/products/SKU-{self._int()}", 200),
            ("GET", f"{b}/invoices/{self._int()}.pdf", 200),
            ("GET", f"{b}/invoices/{self._int()}", 200),
            ("GET", f"{b}/search", 200),
            ("GET", f"{b}/tags/caf%C3%A9/articles", 200),
            ("GET", f"{b}/teams/{self._hex()}/members", 200),
            ("POST", f"{b}/sessions", 201),
            ("OPTIONS", f"{b}/users/{self._int()}", 204),  # CORS preflight
            ("OPTIONS", f"{b}/orders", 204),
            ("GET", f"{b}/users/{self._int()}", 404),  # documented, unknown id
        ]
        method, path, status = r.choice(choices)
        return method, path + self._query(), status

    def removed(self) -> tuple[str, str, int]:
        b = self._base()
        if self.rng.random() < 0.5:
            return "GET", f"{b}/users/{self._int()}/export", 200
        return "DELETE", f"{b}/sessions/{self._hex()}", 204

    def deprecated(self) -> tuple[str, str, int]:
        return "GET", f"{self._base()}/legacy/report?year=2023", 200

    def shadow(self) -> Iterator[tuple[str, str, int]]:
        """Every recurring shadow endpoint at least once, some twice, some also refused."""
        b = self._base
        yield "GET", f"{b()}/admin/users/{self._int()}", 200
        yield "GET", f"{b()}/admin/users/{self._int()}", 404
        yield "POST", f"{b()}/internal/jobs/{self._uuid()}/retry", 202
        yield "GET", f"{b()}/debug/vars", 200
        yield "GET", f"{b()}/files/{self._hex()}/raw", 200
        yield "GET", f"{b()}/articles/{self._slug()}/raw", 200
        yield "PUT", f"/users/{self._int()}/avatar", 204  # without /v1
        yield "PUT", f"/v1/users/{self._int()}/avatar", 204  # and with it: one endpoint
        yield "GET", f"{b()}/people/{self._email()}", 200
        yield "GET", f"{b()}/search/caf%C3%A9-au-lait/suggest", 200
        yield "GET", f"{b()}/reports/{self._date()}/download", 302
        yield "GET", f"{b()}/internal/metrics", 401
        yield "GET", f"{b()}/admin/audit", 403

    def once(self) -> Iterator[tuple[str, str, int]]:
        yield "GET", "/v1/internal/flags", 200
        yield "DELETE", f"/v1/cache/{self._int()}", 200

    def ignored(self) -> tuple[str, str, int]:
        return self.rng.choice(
            [
                ("GET", "/healthz", 200),
                ("GET", f"/static/app.{self._hex()[:8]}.js", 200),
                ("GET", "/static/css/site.css", 304),
                ("GET", "/openapi.json", 200),
                ("GET", "/docs", 301),
                ("GET", "/docs/", 200),
            ]
        )

    def noise(self) -> tuple[str, str, int]:
        self.scan_number += 1
        n = self.scan_number
        return self.rng.choice(
            [
                ("GET", "/.env", 404),
                ("GET", "/wp-login.php", 404),
                ("POST", "/xmlrpc.php", 404),
                ("GET", f"/backup-{n}.zip", 404),
                ("GET", f"/wp-content/plugins/p{n}/readme.txt", 404),
                ("GET", f"/cgi-bin/scan{n}.cgi", 404),
                ("GET", "/phpmyadmin/index.php", 404),
                ("CONNECT", "www.google.com:443", 400),
                ("PRI", "*", 400),
                ("PATCH", "/v1/orders", 405),  # a documented path, an undocumented method
                ("GET", "/favicon.ico", 404),
                ("GET", f"/v1/nonexistent-{n}", 404),
            ]
        )

    def batch(self, start: datetime, size: int, *, removed: bool) -> list[Line]:
        """`size` lines over an hour from `start`: every shadow endpoint, zombie traffic
        (to removed operations only when `removed`), ignored paths and 404 noise mixed into
        documented traffic."""
        requests = list(self.shadow())
        if not self.once_sent:  # the first batch carries the endpoints requested only once
            requests.extend(self.once())
            self.once_sent = True
        requests.append(self.deprecated())
        if removed:
            requests.extend(self.removed() for _ in range(5))
        while len(requests) < size:
            roll = self.rng.random()
            if roll < 0.7:
                requests.append(self.documented())
            elif roll < 0.8:
                requests.append(self.ignored())
            else:
                requests.append(self.noise())
        self.rng.shuffle(requests)
        step = 3600 / len(requests)
        return [
            Line(method, target, status, start + timedelta(seconds=int(i * step)))
            for i, (method, target, status) in enumerate(requests)
        ]


def append(log: Path, lines: list[Line], log_format: str) -> None:
    with log.open("a", encoding="utf-8") as handle:
        handle.writelines(render(line, log_format) + "\n" for line in lines)


def rotate(log: Path, mode: str) -> None:
    """logrotate's `create` (rename, new file) or `copytruncate` (copy, truncate in place)."""
    rotated = log.with_name(log.name + ".1")
    if mode == "create":
        log.rename(rotated)
        log.write_text("")
    else:
        shutil.copyfile(log, rotated)
        with log.open("r+") as handle:
            handle.truncate(0)


def precision_recall(found: set[str], expected: set[str]) -> tuple[float, float]:
    right = len(found & expected)
    return (right / len(found) if found else 1.0, right / len(expected) if expected else 1.0)
