"""Configs whose errors must name the key at fault and never show the secret value in it."""

from __future__ import annotations

from typing import Any

SLACK_PATH_TOKEN = "slackpath-Zq93xK7wE4"
STORE_PASSWORD = "storepw-Rt55Lm02Kq"
TARGET_PASSWORD = "targetpw-Ue73Wc19Hn"
HOOK_QUERY_TOKEN = "hookq-Yp40Bd88Js"

# name -> (config, environment, the key the error must name, the secret it must not show)
CONFIG_ERRORS_WITH_SECRETS: dict[str, tuple[dict[str, Any], dict[str, str], str, str]] = {
    "slack webhook, bad scheme": (
        {
            "alerts": {
                "receivers": [
                    {
                        "name": "chat",
                        "slack": {
                            "webhook_url": f"htps://hooks.slack.com/services/{SLACK_PATH_TOKEN}"
                        },
                    }
                ]
            }
        },
        {},
        "alerts.receivers[0].slack",
        SLACK_PATH_TOKEN,
    ),
    "slack webhook, no scheme": (
        {
            "alerts": {
                "receivers": [
                    {
                        "name": "chat",
                        "slack": {"webhook_url": f"hooks.slack.com/services/{SLACK_PATH_TOKEN}"},
                    }
                ]
            }
        },
        {},
        "alerts.receivers[0].slack",
        SLACK_PATH_TOKEN,
    ),
    "webhook with a token in its query, bad scheme": (
        {
            "alerts": {
                "receivers": [
                    {"name": "hook", "webhook": {"url": f"ftp://h/x?token={HOOK_QUERY_TOKEN}"}}
                ]
            }
        },
        {},
        "alerts.receivers[0].webhook",
        HOOK_QUERY_TOKEN,
    ),
    "store URL, port not a number": (
        {"store": f"postgresql+psycopg://apivigil:{STORE_PASSWORD}@127.0.0.1:5x32/apivigil"},
        {},
        "store",
        STORE_PASSWORD,
    ),
    "store URL, unsupported database": (
        {"store": f"mysql://apivigil:{STORE_PASSWORD}@127.0.0.1/apivigil"},
        {},
        "store",
        STORE_PASSWORD,
    ),
    "target URL with credentials": (
        {"targets": [{"name": "api", "url": f"https://ops:{TARGET_PASSWORD}@127.0.0.1:8443/"}]},
        {},
        "targets[0].url",
        TARGET_PASSWORD,
    ),
    "target URL with credentials and a bad port": (
        {"targets": [{"name": "api", "url": f"https://ops:{TARGET_PASSWORD}@127.0.0.1:99999/"}]},
        {},
        "targets[0].url",
        TARGET_PASSWORD,
    ),
    "target URL with credentials and a bad scheme": (
        {"targets": [{"name": "api", "url": f"ftp://ops:{TARGET_PASSWORD}@127.0.0.1/"}]},
        {},
        "targets[0].url",
        TARGET_PASSWORD,
    ),
    "store URL from the environment": (
        {},
        {"APIVIGIL_STORE": f"postgresql://apivigil:{STORE_PASSWORD}@127.0.0.1:x/db"},
        "APIVIGIL_STORE",
        STORE_PASSWORD,
    ),
    "targets from the environment, not JSON": (
        {},
        {"APIVIGIL_TARGETS": f"[{{name: api, url: https://ops:{TARGET_PASSWORD}@127.0.0.1/}}]"},
        "APIVIGIL_TARGETS",
        TARGET_PASSWORD,
    ),
}
