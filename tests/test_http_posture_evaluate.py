"""http_posture's pure parts on recorded answers: the grade chart and extra-credit rule, CSP
reading, Set-Cookie attributes and the budget report (no sockets)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from checks.http_posture.cookies import parse_set_cookie
from checks.http_posture.csp import parse_csp
from checks.http_posture.evaluate import evaluate
from checks.http_posture.facts import (
    Answer,
    Exchange,
    Failure,
    HttpPostureRaw,
    PlainHttpVerdict,
    Probe,
)
from checks.http_posture.observatory import ObservatoryGrade, grade_for, observatory_grade
from checks.http_posture.params import HttpPostureParams, ObservatoryAlgorithm
from checks.http_posture.plain_http import judge_plain_http, last_judged

pytestmark = pytest.mark.unit

URL = "https://api.example/"


def raw(
    *headers: tuple[str, str], status: int = 200, skipped: tuple[str, ...] = ()
) -> HttpPostureRaw:
    page = Answer(URL, status, (("Content-Type", "application/json"), *headers), b"{}")
    return HttpPostureRaw(
        target_url=URL,
        http_url="http://api.example/",
        exchanges=(
            Exchange(Probe.HTTPS, "GET", URL, (), (page,)),
            Exchange(
                Probe.HTTP,
                "GET",
                "http://api.example/",
                (),
                (),
                error="GET failed: [Errno 111] Connection refused",
                failure=Failure.REFUSED,
            ),
        ),
        skipped=skipped,
        requests_sent=2,
        budget=2,
    )


@pytest.mark.parametrize(
    ("score", "grade"),
    [(135, "A+"), (100, "A+"), (99, "A"), (90, "A"), (89, "A-"), (84, "B+"), (70, "B"), (69, "B-"),
     (64, "C+"), (50, "C"), (49, "C-"), (44, "D+"), (30, "D"), (29, "D-"), (24, "F"), (0, "F")],
)  # fmt: skip
def test_the_grade_chart_floors_to_multiples_of_five(score: int, grade: str) -> None:
    assert grade_for(score) == grade


def test_the_faq_api_header_set_scores_115_because_bonuses_count_only_above_90() -> None:
    csp = ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    hsts = ("Strict-Transport-Security", "max-age=63072000")
    good = observatory_grade(
        raw(csp, hsts, ("X-Content-Type-Options", "nosniff")), ObservatoryAlgorithm.V5
    )
    # the same bonuses with the HSTS penalty (-20): 80 < 90, so no extra credit at all
    short = observatory_grade(
        raw(csp, ("X-Content-Type-Options", "nosniff")), ObservatoryAlgorithm.V5
    )

    assert isinstance(good, ObservatoryGrade)
    assert (good.score, good.grade) == (115, "A+")
    assert isinstance(short, ObservatoryGrade)
    assert (short.score, short.grade) == (80, "B+")


def test_algorithm_6_adds_the_opener_and_embedder_policies() -> None:
    headers = (
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Embedder-Policy", "bogus"),
    )
    v5 = observatory_grade(raw(*headers), ObservatoryAlgorithm.V5)
    v6 = observatory_grade(raw(*headers), ObservatoryAlgorithm.V6)

    assert isinstance(v5, ObservatoryGrade) and isinstance(v6, ObservatoryGrade)  # noqa: PT018
    assert len(v5.tests) == 10
    assert {t.name: t.result for t in v6.tests[10:]} == {
        "cross-origin-opener-policy": "coop-implemented-with-same-origin",
        "cross-origin-embedder-policy": "coep-header-invalid",
    }


def test_a_page_answering_500_is_not_graded_as_the_observatory_refuses_it() -> None:
    output = evaluate(raw(status=500), HttpPostureParams(), datetime.now(UTC))

    profiles = {o.labels["profile"] for o in output.observations if o.name == "http_posture_score"}
    assert profiles == {"api"}
    assert output.snapshot is not None
    assert "not_graded" in output.snapshot["observatory"]


def test_csp_directives_are_lower_cased_and_duplicates_make_the_policy_invalid() -> None:
    assert parse_csp("Default-Src 'None'; img-src") == {
        "default-src": {"'none'"},
        "img-src": {"'none'"},
    }
    with pytest.raises(Exception, match="duplicate"):
        parse_csp("script-src 'self'; script-src 'none'")


def test_set_cookie_keeps_attributes_as_sent() -> None:
    cookie = parse_set_cookie("__Host-sid=1; Path=/app; Secure; SameSite=")

    assert cookie is not None
    assert cookie.same_site_invalid
    assert cookie.same_site is None
    assert cookie.prefix_violation() == "a __Host- cookie whose Path is not /"
    assert parse_set_cookie("=novalue") is None


def test_probes_the_budget_left_out_are_an_info_finding_and_undetermined() -> None:
    output = evaluate(
        raw(skipped=("security_txt https://api.example/",)), HttpPostureParams(), datetime.now(UTC)
    )

    budget = [f for f in output.findings if f.rule_id == "HTTP-PROBE-BUDGET-EXHAUSTED"]
    assert budget
    assert "security_txt" in budget[0].evidence


def test_a_probe_left_out_keeps_the_findings_it_decides_undetermined() -> None:
    left_out = Exchange(
        Probe.SECURITY_TXT,
        "GET",
        "https://api.example/.well-known/security.txt",
        (),
        error="left out: the request budget was spent",
    )
    recorded = raw()
    recorded = HttpPostureRaw(
        recorded.target_url, recorded.http_url, (*recorded.exchanges, left_out), budget=3
    )

    output = evaluate(recorded, HttpPostureParams(), datetime.now(UTC))

    assert "/.well-known/security.txt" in output.undetermined
    assert not [f for f in output.findings if f.rule_id.startswith("SECTXT-")]


def plain_raw(plain: Exchange, http_url: str = "http://api.example/") -> HttpPostureRaw:
    page = Answer(URL, 200, (("Content-Type", "application/json"),), b"{}")
    return HttpPostureRaw(
        target_url=URL,
        http_url=http_url,
        exchanges=(Exchange(Probe.HTTPS, "GET", URL, (), (page,)), plain),
    )


def failed(url: str, failure: Failure, error: str, *hops: Answer) -> Exchange:
    return Exchange(Probe.HTTP, "GET", url, (), hops, error=error, failure=failure)


@pytest.mark.parametrize(
    ("plain", "http_url", "state"),
    [
        (failed("http://api.example/", Failure.REFUSED, "refused"), None, "refused"),
        (failed("http://api.example/", Failure.TIMED_OUT, "no answer within 10 s"), None,
         "undetermined"),
        (failed("http://api.example/", Failure.DROPPED, "reset"), None, "undetermined"),
        (failed("http://api.example/", Failure.OTHER, "name not resolved"), None, "undetermined"),
        # the HTTPS port itself dropping a plaintext request: a TLS server refusing it
        (failed("http://api.example:443/", Failure.DROPPED, "reset"), "http://api.example:443/",
         "refused"),
        (failed("http://api.example:443/", Failure.TIMED_OUT, "no answer within 10 s"),
         "http://api.example:443/", "undetermined"),
        # a redirect followed into a timeout is not the answer it leads to
        (failed("http://api.example/", Failure.TIMED_OUT, "no answer within 10 s",
                Answer("http://api.example/", 301, (("Location", URL),), b"")), None,
         "undetermined"),
    ],
)  # fmt: skip
def test_only_a_refused_connection_or_an_answer_decides_plain_http(
    plain: Exchange, http_url: str | None, state: str
) -> None:
    judged = judge_plain_http(plain_raw(plain, http_url or plain.url))

    assert str(judged.state) == state
    assert judged.refused is (state == "refused")


PLAIN = "http://api.example/"


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        ({"http_url": PLAIN, "plain_http": "refused", "api_profile": {"modifiers": {}}},
         PlainHttpVerdict("refused", True, ())),
        ({"http_url": PLAIN, "plain_http": "answers 403", "api_profile": {"modifiers": {}}},
         PlainHttpVerdict("answers 403", True, ())),
        ({"http_url": PLAIN, "plain_http": "answers 200",
          "api_profile": {"modifiers": {"HTTP-PLAINTEXT-SERVED": -40, "HTTP-HSTS-MISSING": -20}}},
         PlainHttpVerdict("answers 200", False, ("HTTP-PLAINTEXT-SERVED",))),
        ({"http_url": PLAIN, "plain_http": "redirect 301 to https://api.example/",
          "api_profile": {"modifiers": {"HTTP-PLAINTEXT-REDIRECTS": -5}}},
         PlainHttpVerdict("redirect 301 to https://api.example/", False,
                          ("HTTP-PLAINTEXT-REDIRECTS",))),
        # judged at another plain-HTTP URL (before the target or http_url changed)
        ({"http_url": "http://api.example:8080/", "plain_http": "refused",
          "api_profile": {"modifiers": {}}}, None),
        ({"plain_http": "refused", "api_profile": {"modifiers": {}}}, None),
        # refused only because plain_http_dropped said so, which this target no longer does
        ({"http_url": PLAIN, "plain_http": "refused", "plain_http_dropped_as_configured": True,
          "api_profile": {"modifiers": {}}}, None),
        ({"http_url": PLAIN, "plain_http": "not assessed"}, None),
        ({}, None),
        (None, None),
    ],
)  # fmt: skip
def test_the_last_plain_http_verdict_is_read_back_from_a_snapshot_of_the_same_url(
    snapshot: dict[str, object] | None, expected: PlainHttpVerdict | None
) -> None:
    assert last_judged(snapshot, PLAIN) == expected


def test_a_carried_verdict_scores_plain_http_and_says_so() -> None:
    timed_out = failed("http://api.example/", Failure.TIMED_OUT, "no answer within 10 s")
    served = PlainHttpVerdict("answers 200", False, ("HTTP-PLAINTEXT-SERVED",))
    carried = replace(plain_raw(timed_out), plain_http_last_judged=served)

    output = evaluate(carried, HttpPostureParams(), datetime.now(UTC))
    alone = evaluate(plain_raw(timed_out), HttpPostureParams(), datetime.now(UTC))

    api = next(
        f for f in output.findings if f.rule_id == "HTTP-POSTURE-GRADE" and f.subject == "api"
    )
    assert "HTTP-PLAINTEXT-SERVED -40" in api.evidence
    assert "scored as last judged: answers 200" in api.evidence
    assert any(o.name == "http_posture_score" and o.labels["profile"] == "api"
               for o in output.observations)  # fmt: skip
    assert not any(o.name == "http_posture_score" for o in alone.observations)
