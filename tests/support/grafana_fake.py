"""Grafana's HTTP API on 127.0.0.1: the parts apivigil uses (`apivigil dashboards push` and
the grafana alert receiver), one fake for both.

Follows Grafana's documented behaviour (HTTP API: authentication, folders, dashboards, data
sources, annotations):

- Auth: `Authorization: Bearer <service account token>`. No Authorization header gets 401
  `{"message": "Unauthorized", "messageId": "auth.unauthorized", ...}`; an unknown token 401
  `{"message": "Invalid API key", "messageId": "api-key.invalid", ...}`. Each token has a
  basic role: Viewer reads folders and dashboards; Editor also creates folders, saves
  dashboards and adds annotations; only Admin lists data sources (`datasources:read`).
  Anything else gets 403 `{"message": "You'll need additional permissions ...", "title":
  "Access denied"}`.
- GET /api/datasources -> `[{id, uid, orgId, name, type, access, url, isDefault, ...}]`.
- GET /api/folders -> `[{id, uid, title}]`; GET /api/folders/:uid (404 "folder not found");
  POST /api/folders `{title, uid?}` -> the folder (409 when the uid or title is taken).
- GET /api/dashboards/uid/:uid -> `{"dashboard": {..., id, uid, version}, "meta": {...,
  folderUid, url, slug, version}}`, 404 `{"message": "Dashboard not found"}`.
- POST /api/dashboards/db `{dashboard, folderUid, overwrite, message}` -> `{id, uid, url,
  status: "success", version, slug}`. Without `overwrite`, saving over an existing uid needs
  that dashboard's `id` (else 412 name-exists "A dashboard with the same uid already
  exists") and its current `version` (else 412 version-mismatch "The dashboard has been
  changed by someone else"); another uid with the same title in the folder gets 412
  name-exists "A dashboard with the same name in the folder already exists". An unknown
  folderUid gets 400 "folder not found"; an empty title 400 "Dashboard title cannot be empty".
- POST /api/annotations: a JSON object with `text` (required, not empty), `time` and
  `timeEnd` (epoch milliseconds, or null), `tags` (strings), and optionally `dashboardUID`
  (one not stored gets 400 "Invalid dashboard UID in annotation request") and `panelId`;
  answered `{"id": N, "message": "Annotation added"}` and kept in `annotations`.

A Grafana served under a sub-path (`root_url` with `serve_from_sub_path`) is `path_prefix`;
`url` includes it. `before_save` runs inside each save before it is judged (to play someone
saving the same dashboard at that moment); `edit()` changes a stored dashboard as a person in
the UI would. `answer_next` queues the answer to the next authenticated request (a 500, a 403)
and `delay` stalls every answer, for timeouts.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.http_servers import LoopbackHttpServer


class Role(IntEnum):
    VIEWER = 1
    EDITOR = 2
    ADMIN = 3


@dataclass
class StoredDashboard:
    document: dict[str, Any]
    folder_uid: str
    id: int
    version: int


@dataclass
class Answer:
    status: int
    document: object


@dataclass
class GrafanaState:
    datasources: list[dict[str, Any]] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> folder
    dashboards: dict[str, StoredDashboard] = field(default_factory=dict)  # uid -> dashboard
    saves: int = 0  # accepted POST /api/dashboards/db


def prometheus_datasource(name: str, uid: str, *, default: bool = True) -> dict[str, Any]:
    return {
        "id": 1,
        "uid": uid,
        "orgId": 1,
        "name": name,
        "type": "prometheus",
        "typeName": "Prometheus",
        "access": "proxy",
        "url": "http://127.0.0.1:9090",
        "user": "",
        "database": "",
        "basicAuth": False,
        "isDefault": default,
        "jsonData": {"httpMethod": "POST"},
        "readOnly": False,
    }


class GrafanaFake(LoopbackHttpServer[tuple[str, str]]):
    def __init__(
        self,
        tokens: dict[str, Role],
        datasources: list[dict[str, Any]] | None = None,
        path_prefix: str = "",
    ) -> None:
        self.tokens = tokens
        self.path_prefix = path_prefix
        self.state = GrafanaState(datasources=list(datasources or []))
        self.annotations: list[dict[str, Any]] = []
        self.delay = 0.0
        self._queued: deque[Answer] = deque()
        self.before_save: Callable[[GrafanaFake, dict[str, Any]], None] | None = None
        self._lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(fake.handle("GET", self.path, self.headers.get("Authorization"), b""))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                auth = self.headers.get("Authorization")
                self._answer(fake.handle("POST", self.path, auth, body))

            def _answer(self, answer: Answer) -> None:
                time.sleep(fake.delay)
                payload = json.dumps(answer.document).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return super().url + self.path_prefix

    # -- what a person does in Grafana -----------------------------------------------------

    def edit(self, uid: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Change a stored dashboard and save it, as the UI would (version + 1)."""
        with self._lock:
            stored = self.state.dashboards[uid]
            change(stored.document)
            stored.version += 1
            stored.document["version"] = stored.version

    def add_folder(self, title: str, uid: str) -> None:
        with self._lock:
            self.state.folders[uid] = _folder(len(self.state.folders) + 1, uid, title)

    def add_dashboard(self, uid: str, title: str, folder_uid: str = "") -> None:
        with self._lock:
            dashboard_id = len(self.state.dashboards) + 1
            document = {"id": dashboard_id, "uid": uid, "title": title, "version": 1}
            self.state.dashboards[uid] = StoredDashboard(document, folder_uid, dashboard_id, 1)

    def answer_next(self, status: int, message: str) -> None:
        """The next authenticated request gets this answer, whatever it asks."""
        with self._lock:
            self._queued.append(Answer(status, {"message": message}))

    # -- the API ----------------------------------------------------------------------------

    def handle(self, method: str, path: str, authorization: str | None, body: bytes) -> Answer:
        with self._lock:
            self.requests.append((method, path))
            role = self._role(authorization)
            if role is None:
                return _unauthorized(authorization)
            if self._queued:
                return self._queued.popleft()
            route = path.split("?", 1)[0]
            if not route.startswith(f"{self.path_prefix}/api/"):
                return Answer(404, {"message": "Not found"})
            route = route.removeprefix(self.path_prefix)
            for pattern, verb, needed, action, handler in self._routes():
                found = re.fullmatch(pattern, route)
                if found and verb == method:
                    if role < needed:
                        return _forbidden(action)
                    return handler(*found.groups(), body=body)
            return Answer(404, {"message": "Not found"})

    def _role(self, authorization: str | None) -> Role | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.tokens.get(authorization.removeprefix("Bearer "))

    def _routes(
        self,
    ) -> list[tuple[str, str, Role, str, Callable[..., Answer]]]:
        return [
            ("/api/datasources", "GET", Role.ADMIN, "datasources:read", self._datasources),
            ("/api/folders", "GET", Role.VIEWER, "folders:read", self._folders),
            ("/api/folders/([^/]+)", "GET", Role.VIEWER, "folders:read", self._folder),
            ("/api/folders", "POST", Role.EDITOR, "folders:create", self._create_folder),
            (
                "/api/dashboards/uid/([^/]+)",
                "GET",
                Role.VIEWER,
                "dashboards:read",
                self._dashboard,
            ),
            ("/api/dashboards/db", "POST", Role.EDITOR, "dashboards:create", self._save),
            ("/api/annotations", "POST", Role.EDITOR, "annotations:create", self._annotate),
        ]

    def _datasources(self, *, body: bytes) -> Answer:
        return Answer(200, self.state.datasources)

    def _folders(self, *, body: bytes) -> Answer:
        listed = [
            {"id": folder["id"], "uid": folder["uid"], "title": folder["title"]}
            for folder in self.state.folders.values()
        ]
        return Answer(200, listed)

    def _folder(self, uid: str, *, body: bytes) -> Answer:
        folder = self.state.folders.get(uid)
        if folder is None:
            return Answer(404, {"message": "folder not found", "status": "not-found"})
        return Answer(200, folder)

    def _create_folder(self, *, body: bytes) -> Answer:
        request = _json(body)
        if not isinstance(request, dict) or not request.get("title"):
            return Answer(400, {"message": "folder title cannot be empty"})
        title = str(request["title"])
        uid = str(request.get("uid") or f"f{len(self.state.folders) + 1:09d}")
        if uid in self.state.folders:
            return Answer(409, {"message": "a folder with the same uid already exists"})
        if any(folder["title"] == title for folder in self.state.folders.values()):
            return Answer(409, {"message": "a folder or dashboard with the same name exists"})
        folder = _folder(len(self.state.folders) + 1, uid, title)
        self.state.folders[uid] = folder
        return Answer(200, folder)

    def _dashboard(self, uid: str, *, body: bytes) -> Answer:
        stored = self.state.dashboards.get(uid)
        if stored is None:
            return Answer(404, {"message": "Dashboard not found"})
        general = {"id": 0, "uid": "", "title": "General"}
        folder = self.state.folders.get(stored.folder_uid, general)
        return Answer(
            200,
            {
                "dashboard": json.loads(json.dumps(stored.document)),
                "meta": {
                    "type": "db",
                    "canSave": True,
                    "canEdit": True,
                    "slug": _slug(stored.document["title"]),
                    "url": f"/d/{uid}/{_slug(stored.document['title'])}",
                    "version": stored.version,
                    "folderId": folder["id"],
                    "folderUid": folder["uid"],
                    "folderTitle": folder["title"],
                    "provisioned": False,
                },
            },
        )

    def _save(self, *, body: bytes) -> Answer:
        request = _json(body)
        if not isinstance(request, dict) or not isinstance(request.get("dashboard"), dict):
            return Answer(400, {"message": "bad request data"})
        if self.before_save is not None:
            self.before_save(self, request)
        dashboard: dict[str, Any] = request["dashboard"]
        overwrite = bool(request.get("overwrite", False))
        folder_uid = str(request.get("folderUid") or "")
        if not str(dashboard.get("title", "")).strip():
            return Answer(400, {"message": "Dashboard title cannot be empty"})
        if folder_uid and folder_uid not in self.state.folders:
            return Answer(400, {"message": "folder not found"})
        uid = str(dashboard.get("uid") or f"d{len(self.state.dashboards) + 1:09d}")
        existing = self.state.dashboards.get(uid)
        if existing is not None and not overwrite:
            if dashboard.get("id") != existing.id:
                return _precondition("name-exists", "A dashboard with the same uid already exists")
            if dashboard.get("version") != existing.version:
                return _precondition(
                    "version-mismatch", "The dashboard has been changed by someone else"
                )
        same_title = [
            other
            for other_uid, other in self.state.dashboards.items()
            if other_uid != uid
            and other.folder_uid == folder_uid
            and other.document["title"] == dashboard["title"]
        ]
        if same_title and not overwrite:
            return _precondition(
                "name-exists", "A dashboard with the same name in the folder already exists"
            )
        version = existing.version + 1 if existing else 1
        dashboard_id = existing.id if existing else len(self.state.dashboards) + 1
        document = {**dashboard, "id": dashboard_id, "uid": uid, "version": version}
        self.state.dashboards[uid] = StoredDashboard(document, folder_uid, dashboard_id, version)
        self.state.saves += 1
        slug = _slug(dashboard["title"])
        return Answer(
            200,
            {
                "id": dashboard_id,
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": version,
                "slug": slug,
            },
        )

    def _annotate(self, *, body: bytes) -> Answer:
        annotation = _json(body)
        problem = _annotation_problem(annotation, self.state.dashboards)
        if problem:
            return Answer(400, {"message": problem})
        assert isinstance(annotation, dict)
        self.annotations.append(annotation)
        return Answer(200, {"id": len(self.annotations), "message": "Annotation added"})


def _json(body: bytes) -> object:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


def _annotation_problem(annotation: object, dashboards: dict[str, StoredDashboard]) -> str | None:
    if not isinstance(annotation, dict):
        return "bad request data"
    if not isinstance(annotation.get("text"), str) or not annotation["text"]:
        return "Failed to save annotation: text field should not be empty"
    for key in ("time", "timeEnd", "panelId"):
        if annotation.get(key) is not None and not isinstance(annotation[key], int):
            return f"bad request data: {key}"
    tags = annotation.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return "bad request data: tags"
    uid = annotation.get("dashboardUID")
    if uid is not None and uid not in dashboards:
        return "Invalid dashboard UID in annotation request"
    return None


def _unauthorized(authorization: str | None) -> Answer:
    message, message_id = (
        ("Unauthorized", "auth.unauthorized")
        if not authorization
        else ("Invalid API key", "api-key.invalid")
    )
    return Answer(
        401,
        {
            "extra": None,
            "message": message,
            "messageId": message_id,
            "statusCode": 401,
            "traceID": "",
        },
    )


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _folder(folder_id: int, uid: str, title: str) -> dict[str, Any]:
    return {
        "id": folder_id,
        "uid": uid,
        "title": title,
        "url": f"/dashboards/f/{uid}/{_slug(title)}",
        "hasAcl": False,
        "canSave": True,
        "canEdit": True,
        "canAdmin": True,
        "createdBy": "admin",
        "created": "2026-01-01T00:00:00Z",
        "updatedBy": "admin",
        "updated": "2026-01-01T00:00:00Z",
        "version": 1,
    }


def _forbidden(action: str) -> Answer:
    return Answer(
        403,
        {
            "accessErrorId": "ACE0123456789",
            "message": "You'll need additional permissions to perform this action. "
            f"Permissions needed: {action}",
            "title": "Access denied",
        },
    )


def _precondition(status: str, message: str) -> Answer:
    return Answer(412, {"message": message, "status": status})
