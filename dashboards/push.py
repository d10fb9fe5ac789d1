"""Upsert apivigil's dashboards into Grafana through its HTTP API (grafana-client).

`push` finds or creates the folder (by title), points each dashboard's `datasource` variable
at the chosen Prometheus data source, and saves every dashboard under its own uid:

- a dashboard equal to the one Grafana holds (ignoring id and version) in the same folder is
  left alone, so pushing twice changes nothing and adds no version to Grafana's history;
- otherwise it is saved with the id and version just read and `overwrite: false`: Grafana
  answers 412 when someone saved it in between, and the push stops instead of losing that.

Endpoints used (Grafana HTTP API): GET /api/datasources, GET and POST /api/folders,
GET /api/dashboards/uid/:uid, POST /api/dashboards/db.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import niquests.exceptions
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaTimeoutError

from monitor import __version__

USER_AGENT = f"apivigil/{__version__}"
DATASOURCE_VARIABLE = "datasource"
_IGNORED_WHEN_COMPARING = ("id", "version")
_T = TypeVar("_T")


class PushError(Exception):
    """The push could not finish; the message says what Grafana answered and what to do."""


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class PushedDashboard:
    uid: str
    title: str
    outcome: Outcome
    version: int
    url: str


@dataclass(frozen=True, slots=True)
class PushReport:
    folder_title: str
    folder_uid: str
    folder_created: bool
    datasource: str  # the data source's name (as given when it could not be looked up)
    datasource_uid: str
    datasource_verified: bool  # False: the token may not read data sources; used as given
    dashboards: tuple[PushedDashboard, ...]


def grafana_api(url: str, token: str, timeout: float = 10.0) -> GrafanaApi:
    """A client for the Grafana at `url` (http or https, optionally under a path prefix)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"{url!r} is not an http(s) URL")
    host = parts.hostname
    prefix = parts.path.strip("/")
    return GrafanaApi(
        auth=token,
        host=f"[{host}]" if ":" in host else host,
        port=parts.port,
        url_path_prefix=f"{prefix}/" if prefix else "",  # grafana-client adds "api" unjoined
        protocol=parts.scheme,
        timeout=timeout,
        user_agent=USER_AGENT,
    )


def push(
    api: GrafanaApi,
    dashboards: Sequence[Mapping[str, Any]],
    folder: str = "apivigil",
    datasource: str | None = None,
) -> PushReport:
    """Upsert `dashboards` into `folder`. `datasource`: a Prometheus data source's name or uid
    (default: the organisation's default Prometheus data source). Raises PushError."""
    name, uid, verified = _datasource(api, datasource)
    folder_uid, created = _folder(api, folder)
    pushed = tuple(
        _upsert(api, _with_datasource(document, name, uid), folder_uid) for document in dashboards
    )
    return PushReport(folder, folder_uid, created, name, uid, verified, pushed)


def _datasource(api: GrafanaApi, wanted: str | None) -> tuple[str, str, bool]:
    try:
        listed = _call(
            "list data sources",
            api.datasource.list_datasources,
        )
    except _Forbidden as error:
        if wanted is None:
            raise PushError(
                f"{error}; name the Prometheus data source with --datasource instead"
            ) from None
        return wanted, wanted, False
    sources = [source for source in listed if isinstance(source, dict)]
    if wanted is not None:
        for source in sources:
            if wanted in (source.get("name"), source.get("uid")):
                return str(source["name"]), str(source["uid"]), True
        names = ", ".join(sorted(str(source.get("name")) for source in sources)) or "none"
        raise PushError(f"Grafana has no data source {wanted!r} (it has: {names})")
    prometheus = [source for source in sources if source.get("type") == "prometheus"]
    chosen = [source for source in prometheus if source.get("isDefault")] or prometheus
    if len(chosen) != 1:
        found = ", ".join(sorted(str(source.get("name")) for source in prometheus)) or "none"
        raise PushError(
            f"cannot tell which Prometheus data source to use (found: {found}); "
            "name it with --datasource"
        )
    return str(chosen[0]["name"]), str(chosen[0]["uid"]), True


def _folder(api: GrafanaApi, title: str) -> tuple[str, bool]:
    folders = _call("list folders", api.folder.get_all_folders)
    for folder in folders:
        if isinstance(folder, dict) and folder.get("title") == title:
            return str(folder["uid"]), False
    made = _call(
        f"create the folder {title!r}",
        api.folder.create_folder,
        title,
    )
    return str(made["uid"]), True


def _with_datasource(document: Mapping[str, Any], name: str, uid: str) -> dict[str, Any]:
    """A copy of `document` whose datasource variable currently selects `uid`."""
    result = dict(document)
    templating = dict(result.get("templating", {}))
    variables = []
    current = {"selected": True, "text": name, "value": uid}
    for variable in templating.get("list", []):
        chosen = (variable.get("type"), variable.get("name")) == ("datasource", DATASOURCE_VARIABLE)
        variables.append({**variable, "current": current} if chosen else variable)
    templating["list"] = variables
    result["templating"] = templating
    return result


def _upsert(api: GrafanaApi, document: dict[str, Any], folder_uid: str) -> PushedDashboard:
    uid, title = str(document["uid"]), str(document["title"])
    stored = _stored(api, uid)
    payload: dict[str, Any] = {
        "folderUid": folder_uid,
        "overwrite": False,
        "message": f"apivigil {__version__} dashboards push",
    }
    if stored is None:
        payload["dashboard"] = {**document, "id": None}
        outcome = Outcome.CREATED
    else:
        current, meta = stored["dashboard"], stored.get("meta", {})
        if _comparable(current) == _comparable(document) and meta.get("folderUid") == folder_uid:
            return PushedDashboard(
                uid, title, Outcome.UNCHANGED, int(current.get("version", 0)), meta.get("url", "")
            )
        payload["dashboard"] = {**document, "id": current.get("id"), "version": current["version"]}
        outcome = Outcome.UPDATED
    saved = _call(
        f"save the dashboard {title!r}",
        api.dashboard.update_dashboard,
        payload,
    )
    return PushedDashboard(uid, title, outcome, int(saved["version"]), str(saved.get("url", "")))


def _stored(api: GrafanaApi, uid: str) -> dict[str, Any] | None:
    try:
        found = _call(
            f"read the dashboard {uid}",
            api.dashboard.get_dashboard,
            uid,
        )
    except _NotFound:
        return None
    return dict(found)


def _comparable(document: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in _IGNORED_WHEN_COMPARING}


class _Forbidden(PushError):
    pass


class _NotFound(PushError):
    pass


def _call(what: str, method: Callable[..., _T], *args: Any) -> _T:
    """Call grafana-client; its errors become a PushError saying what could not be done."""
    try:
        return method(*args)
    except GrafanaTimeoutError:
        raise PushError(f"cannot {what}: Grafana did not answer in time") from None
    except GrafanaClientError as error:
        detail = _grafana_message(error)
        match error.status_code:
            case 401:
                raise PushError(f"Grafana rejected the token (401 {detail})") from None
            case 403:
                raise _Forbidden(f"the token may not {what} (403 {detail})") from None
            case 404:
                raise _NotFound(f"cannot {what}: not found (404 {detail})") from None
            case 412:
                hint = _PRECONDITION_HINTS.get(_grafana_status(error), "")
                raise PushError(f"cannot {what}: {detail} (412){hint}") from None
            case status:
                raise PushError(f"cannot {what}: {status} {detail}") from None
    except GrafanaException as error:  # 5xx, or the connection failed
        raise PushError(f"cannot {what}: {_grafana_message(error)}") from None
    except niquests.exceptions.RequestException as error:
        raise PushError(f"cannot {what}: {error or type(error).__name__}") from None


_PRECONDITION_HINTS = {
    "version-mismatch": "; someone saved it in Grafana while this push ran: push again to "
    "replace their change",
    "name-exists": "; another dashboard in the folder has this title or uid: rename or move it",
    "plugin-dashboard": "; a plugin owns that dashboard",
}


def _grafana_status(error: GrafanaException) -> str:
    answer: object = error.response
    if isinstance(answer, dict) and isinstance(answer.get("status"), str):
        return str(answer["status"])
    return ""


def _grafana_message(error: GrafanaException) -> str:
    answer: object = error.response
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        return str(answer["message"])
    return str(error.message)
