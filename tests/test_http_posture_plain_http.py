"""Plain HTTP that gives no answer that decides never changes the API-profile score: a
listener that accepts and never answers, or accepts and resets, next to a healthy run. A
refused connection is the API's answer (rewarded); a timeout or a reset is undetermined:
scored as the newest run that could judge it did, or the score is marked undetermined and
not exported, never rewarded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from checks.http_posture.params import HttpPostureParams
from monitor.model import CheckKind, Finding, FindingStatus, Target
from monitor.store.interface import FindingQuery
from monitor.store.sql import SqlStore
from tests.support.ports import free_port
from tests.support.posture_scans import Runs, rules, run, scores
from tests.support.posture_servers import (
    API_HEADERS,
    DroppingListener,
    PostureApp,
    Route,
    SilentListener,
    resetting_listener,
)
from tests.support.tls_certs import TestPki

pytestmark = pytest.mark.integration

HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
NO_ANSWER: dict[str, Callable[[int], SilentListener | DroppingListener]] = {
    "accepts and never answers": lambda port: SilentListener(port=port),
    "accepts and resets": resetting_listener,
    "never accepts (dropped)": lambda port: DroppingListener(port=port),
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("posture-plain-pki"), host="127.0.0.1")


@pytest.fixture
def https_api(pki: TestPki) -> Iterator[PostureApp]:
    cert = pki.good()
    routes = {"/": Route(200, [*API_HEADERS, HSTS])}
    with PostureApp(routes, fallback=Route(404, [*API_HEADERS, HSTS], b"{}"), cert=cert.chain,
                    key=cert.key) as app:  # fmt: skip
        yield app


def params(pki: TestPki, http_url: str, **more: object) -> HttpPostureParams:
    return HttpPostureParams(
        trust_store=pki.root_pem,
        http_url=http_url,
        request_timeout="1s",
        security_txt=False,
        **more,  # type: ignore[arg-type]
    )


def grade_finding(findings: tuple[Finding, ...], profile: str) -> Finding:
    return next(f for f in findings if f.rule_id == "HTTP-POSTURE-GRADE" and f.subject == profile)


@pytest.mark.parametrize("kind", NO_ANSWER)
def test_plain_http_without_an_answer_keeps_the_score_of_a_run_that_saw_it_refused(
    kind: str, store: SqlStore, https_api: PostureApp, pki: TestPki
) -> None:
    runs = Runs(store)
    target = Target("shop", https_api.url)
    port = free_port()
    plain_url = f"http://127.0.0.1:{port}/"
    healthy = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, plain_url))  # refused
    with NO_ANSWER[kind](port):  # the same port now accepts and hangs, or resets
        blind = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, plain_url))

    assert scores(healthy.output)["api"] == 110.0  # with the bonus for refusing plain HTTP
    assert scores(blind.output)["api"] == scores(healthy.output)["api"]
    note = grade_finding(blind.output.findings, "api").evidence
    assert "plain HTTP could not be judged" in note
    assert "scored as last judged: refused" in note
    assert "observatory" not in scores(blind.output)  # not graded rather than a better grade
    assert blind.output.snapshot is None  # the refused verdict stays the one to carry


@pytest.mark.parametrize("kind", NO_ANSWER)
def test_plain_http_without_an_answer_does_not_forgive_an_api_seen_serving_plain_http(
    kind: str, store: SqlStore, https_api: PostureApp, pki: TestPki
) -> None:
    runs = Runs(store)
    target = Target("shop", https_api.url)
    port = free_port()
    plain_url = f"http://127.0.0.1:{port}/"
    with PostureApp({"/": Route(200, API_HEADERS)}, port=port):
        served = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, plain_url))
    with NO_ANSWER[kind](port):  # the same port now accepts and hangs, or resets
        blind = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, plain_url))

    assert scores(served.output)["api"] == 60.0  # HTTP-PLAINTEXT-SERVED -40
    assert scores(blind.output)["api"] == scores(served.output)["api"]
    assert "HTTP-PLAINTEXT-SERVED" in grade_finding(blind.output.findings, "api").evidence
    still_open = store.findings(
        FindingQuery(target="shop", check=CheckKind.HTTP_POSTURE,
                     statuses=frozenset({FindingStatus.OPEN}))
    )  # fmt: skip
    assert "HTTP-PLAINTEXT-SERVED" in {f.rule_id for f in still_open}


def test_a_verdict_on_another_plain_http_url_is_not_carried_to_a_new_one(
    store: SqlStore, https_api: PostureApp, pki: TestPki
) -> None:
    runs = Runs(store)
    target = Target("shop", https_api.url)
    closed = f"http://127.0.0.1:{free_port()}/"
    healthy = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, closed))  # refused
    with SilentListener() as silent:  # http_url reconfigured to a port that never answers
        blind = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, silent.url))

    assert scores(healthy.output)["api"] == 110.0
    assert "api" not in scores(blind.output)  # undetermined, not the old URL's refusal bonus
    finding = grade_finding(blind.output.findings, "api")
    assert "undetermined" in finding.title
    assert "scored as last judged" not in finding.evidence


@pytest.mark.parametrize("kind", NO_ANSWER)
def test_with_no_earlier_verdict_the_api_score_is_undetermined_and_never_rewarded(
    kind: str, https_api: PostureApp, pki: TestPki
) -> None:
    healthy = run(https_api.url, **params(pki, f"http://127.0.0.1:{free_port()}/").model_dump())
    with NO_ANSWER[kind](0) as listener:
        blind = run(https_api.url, **params(pki, listener.url).model_dump())

    assert scores(healthy)["api"] == 110.0
    assert scores(blind) == {}  # neither profile exports a score it could not determine
    finding = grade_finding(blind.findings, "api")
    assert "undetermined" in finding.title
    assert "neither rewarded nor penalised" in finding.evidence
    assert "bonus: plain HTTP refused" not in finding.evidence
    if kind != "accepts and resets":
        assert "no answer within 1 s" in finding.evidence
    failed = rules(blind)["HTTP-PROBE-FAILED"][0]
    assert f"http GET {listener.url}" in failed.evidence
    assert blind.snapshot is None


def test_a_refused_connection_is_the_apis_answer_and_is_rewarded(
    https_api: PostureApp, pki: TestPki
) -> None:
    output = run(https_api.url, **params(pki, f"http://127.0.0.1:{free_port()}/").model_dump())

    assert "HTTP-PROBE-FAILED" not in rules(output)
    assert "bonus: plain HTTP refused +5" in grade_finding(output.findings, "api").evidence
    assert output.snapshot is not None
    assert output.snapshot["plain_http"] == "refused"


def test_the_https_port_resetting_a_plaintext_request_is_a_refusal(
    https_api: PostureApp, pki: TestPki
) -> None:
    # Python's TLS server resets a plaintext request: the Observatory's default plain-HTTP
    # URL (same host and port) meets the TLS server, which serves nothing in the clear
    output = run(https_api.url, trust_store=pki.root_pem, security_txt=False)

    assert "HTTP-PROBE-FAILED" not in rules(output)
    assert output.snapshot is not None
    assert output.snapshot["plain_http"] == "refused"
    assert set(scores(output)) == {"api", "observatory"}


def test_a_port_dropped_on_purpose_counts_as_refused_where_the_target_says_so(
    https_api: PostureApp, pki: TestPki
) -> None:
    with DroppingListener() as dropped:
        output = run(
            https_api.url, **params(pki, dropped.url, plain_http_dropped=True).model_dump()
        )

    assert "HTTP-PROBE-FAILED" not in rules(output)
    assert scores(output)["api"] == 110.0  # the refusal bonus, as for a closed port
    assert output.snapshot is not None
    assert output.snapshot["plain_http"] == "refused"


def test_a_refusal_read_from_plain_http_dropped_is_not_carried_once_that_is_unset(
    store: SqlStore, https_api: PostureApp, pki: TestPki
) -> None:
    runs = Runs(store)
    target = Target("shop", https_api.url)
    with DroppingListener() as dropped:
        assumed = runs.run(
            CheckKind.HTTP_POSTURE, target, params(pki, dropped.url, plain_http_dropped=True)
        )
        # the target no longer says the port is dropped on purpose: the same silence is
        # undetermined, and the refusal that setting made is not carried to it
        unset = runs.run(CheckKind.HTTP_POSTURE, target, params(pki, dropped.url))

    assert scores(assumed.output)["api"] == 110.0
    assert "api" not in scores(unset.output)
    assert "scored as last judged" not in grade_finding(unset.output.findings, "api").evidence
    assert assumed.output.snapshot is not None
    assert assumed.output.snapshot["plain_http_dropped_as_configured"] is True


def test_a_server_that_accepts_and_hangs_is_undetermined_even_where_drops_are_expected(
    https_api: PostureApp, pki: TestPki
) -> None:
    with SilentListener() as silent:
        configured = params(pki, silent.url, plain_http_dropped=True)
        output = run(https_api.url, **configured.model_dump())

    assert "api" not in scores(output)
    assert "HTTP-PROBE-FAILED" in rules(output)
    assert output.snapshot is None


def test_plain_http_that_answers_200_and_then_stalls_its_body_is_served_not_undetermined(
    https_api: PostureApp, pki: TestPki
) -> None:
    # the status line and headers came in the clear: the port serves plain HTTP, however
    # slowly (or never) its body follows
    headers_only = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    with SilentListener(answer=headers_only) as stalling:
        output = run(https_api.url, **params(pki, stalling.url).model_dump())

    assert "HTTP-PLAINTEXT-SERVED" in rules(output)
    assert "HTTP-PROBE-FAILED" not in rules(output)
    assert scores(output)["api"] == 60.0  # -40, no refusal bonus
    assert output.snapshot is not None
    assert output.snapshot["plain_http"] == "answers 200"
