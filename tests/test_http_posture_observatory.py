"""The Observatory-compatible grade equals the real MDN HTTP Observatory scanner's (npm 1.4.8,
algorithm 4) on the same live servers. tests/install-posture-test-deps.sh installs the peer
(tests/setup-and-run.sh runs it); benchmarks/http_posture/ runs the same comparison on 28
configurations."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.posture_scans import run, score
from tests.support.posture_servers import API_HEADERS, JSON, PostureApp, Route
from tests.support.tls_certs import TestPki

pytestmark = pytest.mark.integration

HTML = ("Content-Type", "text/html; charset=utf-8")
PEER = (
    Path(__file__).resolve().parent
    / ".posture-peer/node_modules/@mdn/mdn-http-observatory/src/scan.js"
)

CASES = {
    "bare JSON": Route(200, [JSON]),
    "API header set": Route(200, API_HEADERS),
    "session cookie without Secure": Route(200, [JSON, ("Set-Cookie", "sessionid=1; Path=/")]),
    "unsafe CSP and a bad referrer policy": Route(
        200,
        [
            JSON,
            ("Content-Security-Policy", "default-src 'self' 'unsafe-eval'"),
            ("Referrer-Policy", "unsafe-url"),
        ],
    ),
    # a passing CSP with report-uri twice is "implemented but duplicate directives" (0)
    "default-src 'none' with report-uri twice": Route(
        200,
        [
            JSON,
            (
                "Content-Security-Policy",
                "default-src 'none'; frame-ancestors 'none'; report-uri /a; report-uri /b",
            ),
            ("X-Content-Type-Options", "nosniff"),
        ],
    ),
    # subresource integrity, judged script by script as the scanner does
    "HTML loading an https script without integrity": Route(
        200, [HTML], b'<html><script src="https://cdn.example/x.js"></script></html>'
    ),
    "HTML with an inline script only": Route(200, [HTML], b"<html><script>1</script></html>"),
    "HTML loading scripts with and without integrity": Route(
        200,
        [HTML],
        b'<script src="https://cdn.example/a.js" integrity="sha384-abc"></script>'
        b'<script src="//cdn.example/b.js"></script><script src="/c.js"></script>',
    ),
    "401 with nosniff and X-Frame-Options": Route(
        401, [JSON, ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY")]
    ),
}


def observatory(host: str, ca: Path | None = None) -> dict[str, object]:
    if not PEER.is_file():
        pytest.fail(
            f"the Observatory scanner is missing: run tests/install-posture-test-deps.sh ({PEER})"
        )
    done = subprocess.run(
        ["node", str(PEER), host],
        capture_output=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "NO_UPDATE_NOTIFIER": "1",
            **({"NODE_EXTRA_CA_CERTS": str(ca)} if ca is not None else {}),
        },
    )
    document: dict[str, object] = json.loads(done.stdout)
    return document


@pytest.mark.parametrize("case", list(CASES))
def test_the_emulated_grade_equals_the_observatory_scanners(case: str) -> None:
    with PostureApp({"/": CASES[case]}) as app:
        theirs = observatory(f"127.0.0.1:{app.port}")
        ours = run(app.url, observatory_algorithm=4)

    assert isinstance(theirs.get("scan"), dict), theirs
    assert ours.snapshot is not None
    emulated = ours.snapshot["observatory"]
    assert (emulated["grade"], emulated["score"]) == (
        theirs["scan"]["grade"],
        theirs["scan"]["score"],
    )
    assert score(ours, "observatory") == theirs["scan"]["score"]
    their_tests = theirs["tests"]
    assert isinstance(their_tests, dict)
    assert {name: t["result"] for name, t in emulated["tests"].items()} == {
        name: t["result"] for name, t in their_tests.items()
    }


@pytest.mark.parametrize("hsts", ["max-age=abc", "max-age=; includeSubDomains"])
def test_an_hsts_max_age_that_is_not_a_number_scores_as_the_scanners_parseint_does(
    hsts: str, tmp_path: Path
) -> None:
    pki = TestPki(tmp_path, host="127.0.0.1")
    cert = pki.good()
    route = Route(200, [JSON, ("Strict-Transport-Security", hsts)])
    with PostureApp({"/": route}, cert=cert.chain, key=cert.key) as app:
        theirs = observatory(f"127.0.0.1:{app.port}", ca=pki.root_pem)
        ours = run(app.url, observatory_algorithm=4, trust_store=pki.root_pem)

    assert isinstance(theirs.get("scan"), dict), theirs
    assert ours.snapshot is not None
    emulated = ours.snapshot["observatory"]
    their_tests = theirs["tests"]
    assert isinstance(their_tests, dict)
    assert (
        emulated["tests"]["strict-transport-security"]["result"]
        == (their_tests["strict-transport-security"]["result"])
    )
    assert emulated["score"] == theirs["scan"]["score"]
    # the API profile still calls it what it is
    assert "HTTP-HSTS-INVALID" in {f.rule_id for f in ours.findings}
