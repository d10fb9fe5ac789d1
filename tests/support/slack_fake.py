"""A Slack incoming webhook on 127.0.0.1 that answers as Slack documents it.

It checks each payload against Block Kit's documented limits before accepting it (at most 50
blocks; header plain_text of at most 150 characters; section text of at most 3,000; at most
10 fields of at most 2,000 each; at most 10 context elements, text objects of at most 3,000)
and answers like Slack: 200 `ok`; 400 `invalid_payload` for a body that is not a JSON
object, 400 `no_text` without `text` and `blocks`, 400 `invalid_blocks` for a block Slack
would refuse. Tests queue other documented answers (429 with Retry-After, 403
`invalid_token`, 404 `no_service`, 410 `channel_is_archived`, 500) with `answer_next`.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from tests.support.http_servers import Reply, ScriptedHttpServer

MAX_BLOCKS = 50
MAX_HEADER_CHARS = 150
MAX_TEXT_CHARS = 3000
MAX_FIELDS = 10
MAX_FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10


class SlackWebhookFake(ScriptedHttpServer):
    # The path of a real webhook URL is its credential.
    SECRET_PATH = "/services/T0APIVIGIL/B0FAKEHOOK/s3cr3tW3bh00kT0k3n"

    def __init__(self) -> None:
        super().__init__()
        self.payloads: list[dict[str, Any]] = []  # accepted messages, in order
        self.rejected: list[str] = []  # why Slack would have refused, per refused message
        self._queued: deque[Reply] = deque()
        self.post_handlers[self.SECRET_PATH] = self._receive

    @property
    def webhook_url(self) -> str:
        return self.url + self.SECRET_PATH

    def answer_next(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        """The next request gets this answer instead of being validated."""
        self._queued.append(Reply(status, headers or {}, body.encode()))

    def _receive(self, body: bytes) -> Reply:
        if self._queued:
            return self._queued.popleft()
        try:
            payload = json.loads(body)
        except ValueError:
            return self._reject("invalid_payload", "not JSON")
        if not isinstance(payload, dict):
            return self._reject("invalid_payload", "not a JSON object")
        if not payload.get("text") and not payload.get("blocks"):
            return self._reject("no_text", "neither text nor blocks")
        problem = block_problem(payload.get("blocks", []))
        if problem:
            return self._reject("invalid_blocks", problem)
        self.payloads.append(payload)
        return Reply(200, {"Content-Type": "text/html"}, b"ok")

    def _reject(self, error: str, why: str) -> Reply:
        self.rejected.append(f"{error}: {why}")
        return Reply(400, {"Content-Type": "text/html"}, error.encode())


def block_problem(blocks: object) -> str | None:
    """Why Slack would refuse these blocks, or None."""
    if not isinstance(blocks, list):
        return "blocks is not a list"
    if len(blocks) > MAX_BLOCKS:
        return f"{len(blocks)} blocks (at most {MAX_BLOCKS})"
    for index, block in enumerate(blocks):
        problem = _problem(block)
        if problem:
            return f"blocks[{index}]: {problem}"
    return None


def _problem(block: Any) -> str | None:
    match block:
        case {"type": "header", "text": {"type": "plain_text", "text": str(text)}}:
            return _length(text, MAX_HEADER_CHARS, "header text")
        case {"type": "section", **rest} if "text" in rest or "fields" in rest:
            fields = rest.get("fields", [])
            if not isinstance(fields, list):
                return "fields is not a list"
            if "text" in rest and (problem := _text_object(rest["text"], MAX_TEXT_CHARS)):
                return problem
            if len(fields) > MAX_FIELDS:
                return f"{len(fields)} fields (at most {MAX_FIELDS})"
            return next(
                (p for field in fields if (p := _text_object(field, MAX_FIELD_CHARS))), None
            )
        case {"type": "context", "elements": list(elements)} if elements:
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                return f"{len(elements)} context elements (at most {MAX_CONTEXT_ELEMENTS})"
            return next(
                (p for element in elements if (p := _text_object(element, MAX_TEXT_CHARS))), None
            )
        case {"type": "divider"}:
            return None
    return f"not a valid block: {json.dumps(block)[:100]}"


def _text_object(value: Any, limit: int) -> str | None:
    match value:
        case {"type": "mrkdwn" | "plain_text", "text": str(text)} if text:
            return _length(text, limit, "text")
    return f"not a text object: {json.dumps(value)[:100]}"


def _length(text: str, limit: int, what: str) -> str | None:
    return f"{what} of {len(text)} characters (at most {limit})" if len(text) > limit else None
