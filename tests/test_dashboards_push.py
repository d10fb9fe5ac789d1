"""`apivigil dashboards push` against a local fake of Grafana's documented HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.build import build_all
from dashboards.push import Outcome, PushError, grafana_api, push
from tests.support.daemon_process import run_cli
from tests.support.grafana_fake import GrafanaFake, Role, prometheus_datasource

ADMIN, EDITOR, VIEWER = "admin-token", "editor-token", "viewer-token"
DASHBOARDS = list(build_all().values())
UIDS = {document["uid"] for document in DASHBOARDS}


@pytest.fixture
def grafana() -> Iterator[GrafanaFake]:
    tokens = {ADMIN: Role.ADMIN, EDITOR: Role.EDITOR, VIEWER: Role.VIEWER}
    sources = [
        prometheus_datasource("Prometheus", "prom-main"),
        prometheus_datasource("Prometheus (old)", "prom-old", default=False),
        {**prometheus_datasource("Loki", "loki"), "type": "loki", "isDefault": False},
    ]
    with GrafanaFake(tokens, sources) as fake:
        yield fake


def _push(grafana: GrafanaFake, token: str = ADMIN, **options: Any) -> Any:
    return push(grafana_api(grafana.url, token), DASHBOARDS, **options)


def _datasource_of(document: dict[str, Any]) -> dict[str, Any]:
    (variable,) = [v for v in document["templating"]["list"] if v["type"] == "datasource"]
    return dict(variable["current"])


@pytest.mark.integration
def test_push_creates_the_folder_and_every_dashboard_under_its_uid(
    grafana: GrafanaFake,
) -> None:
    report = _push(grafana, folder="Security")

    assert report.folder_created
    (folder,) = grafana.state.folders.values()
    assert folder["title"] == "Security"
    assert report.folder_uid == folder["uid"]
    assert set(grafana.state.dashboards) == UIDS
    assert {pushed.outcome for pushed in report.dashboards} == {Outcome.CREATED}
    for uid, stored in grafana.state.dashboards.items():
        assert stored.folder_uid == folder["uid"]
        assert stored.version == 1
        assert _datasource_of(stored.document) == {
            "selected": True,
            "text": "Prometheus",
            "value": "prom-main",
        }, uid
    assert (report.datasource, report.datasource_uid) == ("Prometheus", "prom-main")


@pytest.mark.integration
def test_pushing_again_changes_nothing(grafana: GrafanaFake) -> None:
    _push(grafana)
    saves, before = grafana.state.saves, len(grafana.requests)

    again = _push(grafana)

    assert not again.folder_created
    assert len(grafana.state.folders) == 1
    assert grafana.state.saves == saves
    assert {pushed.outcome for pushed in again.dashboards} == {Outcome.UNCHANGED}
    assert {stored.version for stored in grafana.state.dashboards.values()} == {1}
    assert {method for method, _ in grafana.requests[before:]} == {"GET"}


@pytest.mark.integration
def test_a_dashboard_changed_in_grafana_is_replaced_by_the_code(grafana: GrafanaFake) -> None:
    _push(grafana)
    grafana.edit("apivigil-tls", lambda document: document.update(title="my TLS board"))

    report = _push(grafana)

    outcomes = {pushed.uid: (pushed.outcome, pushed.version) for pushed in report.dashboards}
    assert outcomes["apivigil-tls"] == (Outcome.UPDATED, 3)
    assert grafana.state.dashboards["apivigil-tls"].document["title"] == (
        "apivigil / TLS and certificates"
    )
    assert {outcome for uid, (outcome, _) in outcomes.items() if uid != "apivigil-tls"} == {
        Outcome.UNCHANGED
    }


@pytest.mark.integration
def test_another_datasource_can_be_chosen_by_name_or_uid(grafana: GrafanaFake) -> None:
    _push(grafana, datasource="Prometheus (old)")
    stored = grafana.state.dashboards["apivigil-overview"].document
    assert _datasource_of(stored)["value"] == "prom-old"

    report = _push(grafana, datasource="prom-main")

    assert {pushed.outcome for pushed in report.dashboards} == {Outcome.UPDATED}
    assert _datasource_of(grafana.state.dashboards["apivigil-overview"].document) == {
        "selected": True,
        "text": "Prometheus",
        "value": "prom-main",
    }


@pytest.mark.integration
def test_an_unknown_or_ambiguous_datasource_is_refused_before_anything_is_written(
    grafana: GrafanaFake,
) -> None:
    with pytest.raises(PushError, match=r"no data source 'Mimir'.*Loki, Prometheus"):
        _push(grafana, datasource="Mimir")
    grafana.state.datasources = [
        prometheus_datasource("a", "a", default=False),
        prometheus_datasource("b", "b", default=False),
    ]
    with pytest.raises(PushError, match=r"which Prometheus data source.*a, b.*--datasource"):
        _push(grafana)
    assert not grafana.state.folders
    assert not grafana.state.dashboards


@pytest.mark.integration
def test_an_editor_token_names_the_datasource_since_it_may_not_list_them(
    grafana: GrafanaFake,
) -> None:
    with pytest.raises(PushError, match=r"may not list data sources \(403 .*--datasource"):
        _push(grafana, EDITOR)

    report = _push(grafana, EDITOR, datasource="prom-main")

    assert not report.datasource_verified
    assert set(grafana.state.dashboards) == UIDS
    assert _datasource_of(grafana.state.dashboards["apivigil-alerts"].document)["value"] == (
        "prom-main"
    )


@pytest.mark.integration
def test_a_bad_token_gets_401_and_a_viewer_token_403(grafana: GrafanaFake) -> None:
    with pytest.raises(PushError, match=r"rejected the token \(401 Invalid API key\)"):
        _push(grafana, "not-a-token")
    with pytest.raises(
        PushError, match=r"may not create the folder 'apivigil' \(403 .*folders:create"
    ):
        _push(grafana, VIEWER, datasource="Prometheus")
    grafana.add_folder("apivigil", "existing")
    with pytest.raises(PushError, match=r"may not save the dashboard .*dashboards:create"):
        _push(grafana, VIEWER, datasource="Prometheus")
    assert not grafana.state.dashboards


@pytest.mark.integration
def test_a_save_racing_someone_elses_gets_412_and_stops(grafana: GrafanaFake) -> None:
    _push(grafana)
    grafana.edit("apivigil-overview", lambda document: document.update(refresh="5s"))

    def someone_saves_first(fake: GrafanaFake, request: dict[str, Any]) -> None:
        if request["dashboard"]["uid"] == "apivigil-overview":
            fake.edit("apivigil-overview", lambda document: document.update(refresh="10s"))

    grafana.before_save = someone_saves_first
    with pytest.raises(PushError, match=r"changed by someone else \(412\).*push again"):
        _push(grafana)
    assert grafana.state.dashboards["apivigil-overview"].document["refresh"] == "10s"

    grafana.before_save = None
    report = _push(grafana)
    assert {p.uid: p.outcome for p in report.dashboards}["apivigil-overview"] is Outcome.UPDATED
    assert grafana.state.dashboards["apivigil-overview"].document["refresh"] == "1m"


@pytest.mark.integration
def test_a_dashboard_of_the_same_title_in_the_folder_gets_412(grafana: GrafanaFake) -> None:
    _push(grafana)
    stolen = grafana.state.dashboards.pop("apivigil-alerts")
    stolen.document["uid"] = "someone-elses"
    grafana.state.dashboards["someone-elses"] = stolen

    with pytest.raises(PushError, match=r"same name in the folder already exists \(412\)"):
        _push(grafana)


@pytest.mark.e2e
def test_the_command_pushes_and_reports(grafana: GrafanaFake, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(f"{ADMIN}\n")
    args = ["dashboards", "push", "--grafana-url", grafana.url, "--token-file", str(token)]

    first = run_cli(*args, "--folder", "apivigil")
    second = run_cli(*args)

    assert first.returncode == 0, first.stderr
    assert "folder 'apivigil'" in first.stdout
    assert "created" in first.stdout
    assert "data source Prometheus (prom-main)" in first.stdout
    assert first.stdout.count("created ") >= len(UIDS)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("unchanged") == len(UIDS)
    token.write_text("wrong\n")
    refused = run_cli(*args)
    assert refused.returncode == 1
    assert "401" in refused.stderr
    token.write_text("")
    assert run_cli(*args).returncode == 2


@pytest.mark.integration
def test_grafana_under_a_path_prefix_and_unreachable(grafana: GrafanaFake) -> None:
    tokens = {ADMIN: Role.ADMIN}
    with GrafanaFake(tokens, [prometheus_datasource("P", "p")], "/grafana") as prefixed:
        report = push(grafana_api(prefixed.url, ADMIN), DASHBOARDS)
        assert prefixed.url.endswith("/grafana")
        assert set(prefixed.state.dashboards) == UIDS
        assert len(report.dashboards) == len(UIDS)
    with pytest.raises(PushError, match="not an http"):
        grafana_api("ftp://127.0.0.1/", ADMIN)
    closed = grafana.url.rsplit(":", 1)[0] + ":1"
    with pytest.raises(PushError, match="cannot list data sources"):
        push(grafana_api(closed, ADMIN, timeout=2), DASHBOARDS)
