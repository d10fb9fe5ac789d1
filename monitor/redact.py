"""Secrets out of messages: what a URL can carry (credentials, a query, a webhook's path)
is masked in any text that quotes it, such as an error naming a bad config value.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

import re

MASK = "***"
_SCHEME = r"\b[a-zA-Z][a-zA-Z0-9+.-]*://"
# up to the last "@" of the address: a password may hold an unencoded "@" or "/"
_USERINFO = re.compile(rf"({_SCHEME})[^\s'\"<>]*@")
_QUERY = re.compile(rf"({_SCHEME}[^\s'\"<>?#]*)\?[^\s'\"<>#]*")
# the path of these URLs is the credential
_SECRET_PATH = re.compile(
    r"(?i)\b((?:hooks\.slack\.com|discord(?:app)?\.com/api/webhooks|[a-z0-9.-]*webhook\."
    r"office\.com)/)[^\s'\"<>]+"
)


def mask_secrets(text: str) -> str:
    """`text` with URL credentials, URL queries and webhook paths replaced by ***."""
    text = _USERINFO.sub(rf"\g<1>{MASK}@", text)
    text = _QUERY.sub(rf"\g<1>?{MASK}", text)
    return _SECRET_PATH.sub(rf"\g<1>{MASK}", text)
