"""Grafana's annotation API on 127.0.0.1, as documented for POST /api/annotations.

Auth is `Authorization: Bearer <service account token>`: a missing or different token gets
401 `{"message": "Unauthorized"}`. The body is a JSON object with `text` (required, not
empty), `time` and `timeEnd` (epoch milliseconds, or null), `tags` (strings), and optionally
`dashboardUID` (an unknown one gets 400 "Invalid dashboard UID in annotation request") and
`panelId`. An accepted annotation is recorded and answered with
`{"id": N, "message": "Annotation added"}`. `answer_next` queues another answer (a 500, a
403) and `delay` stalls every answer, for timeouts.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from tests.support.http_servers import Reply, ScriptedHttpServer


class GrafanaFake(ScriptedHttpServer):
    def __init__(
        self, token: str, *, dashboards: tuple[str, ...] = (), path_prefix: str = ""
    ) -> None:
        super().__init__()
        self.token = token
        self.dashboards = dashboards
        self.annotations: list[dict[str, Any]] = []
        self.delay = 0.0
        self._queued: deque[Reply] = deque()
        self.post_handlers[f"{path_prefix}/api/annotations"] = self._add_annotation

    def answer_next(self, status: int, message: str) -> None:
        self._queued.append(_json(status, {"message": message}))

    def _add_annotation(self, body: bytes) -> Reply:
        # ScriptedHttpServer records the headers just before calling the handler
        headers = {name.lower(): value for name, value in self.requests[-1][1].items()}
        time.sleep(self.delay)
        if headers.get("authorization") != f"Bearer {self.token}":
            return _json(401, {"message": "Unauthorized"})
        if self._queued:
            return self._queued.popleft()
        try:
            annotation = json.loads(body)
        except ValueError:
            return _json(400, {"message": "bad request data"})
        problem = _problem(annotation, self.dashboards)
        if problem:
            return _json(400, {"message": problem})
        self.annotations.append(annotation)
        return _json(200, {"id": len(self.annotations), "message": "Annotation added"})


def _problem(annotation: Any, dashboards: tuple[str, ...]) -> str | None:
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


def _json(status: int, document: object) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(document).encode())
