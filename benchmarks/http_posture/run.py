"""http_posture benchmark: apivigil's Observatory-compatible grade vs the MDN HTTP Observatory
scanner (npm @mdn/mdn-http-observatory 1.4.8, scoring algorithm 4) on local servers.

Every configuration is a real server on 127.0.0.1 (a small Python app, the same app over TLS,
or nginx over TLS with header sets). Both tools scan each; the table prints the score and
grade of each side by side and fails when a grade differs. Times: the peer is one process per
host (its CLI takes one host); apivigil is timed both ways, one process per host and one
`apivigil scan --config` for all hosts, and the ratios are printed.

    .venv/bin/python benchmarks/http_posture/run.py [--only NAME ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.posture_servers import JSON, PostureApp, Route  # noqa: E402
from tests.support.tls_certs import TestPki  # noqa: E402
from tests.support.tls_servers import NginxBlock, NginxTls  # noqa: E402

PEER_DIR = ROOT / "tests" / ".posture-peer"
PEER_SCAN = PEER_DIR / "node_modules" / "@mdn" / "mdn-http-observatory" / "src" / "scan.js"
ALGORITHM = 4  # npm 1.4.8

CSP_API = ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
NOSNIFF = ("X-Content-Type-Options", "nosniff")
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
HTML = ("Content-Type", "text/html; charset=utf-8")
CSP, COOKIE, STS = "Content-Security-Policy", "Set-Cookie", "Strict-Transport-Security"


@dataclass
class Config:
    name: str
    kind: str  # app | tls-app | nginx
    routes: dict[str, Route] = field(default_factory=dict)
    nginx_headers: tuple[tuple[str, str], ...] = ()
    why: str = ""


def app(name: str, *headers: tuple[str, str], status: int = 200, body: bytes = b"{}") -> Config:
    return Config(name, "app", {"/": Route(status, [*headers], body)})


def configs() -> list[Config]:
    page = b"<!doctype html><html><head><title>x</title></head><body>hi</body></html>"
    return [
        app("bare-json", JSON),
        app("api-header-set", JSON, CSP_API, NOSNIFF, ("Cache-Control", "no-store")),
        app("xfo-deny-nosniff", JSON, ("X-Frame-Options", "DENY"), NOSNIFF),
        app("csp-unsafe-inline", JSON, (CSP, "script-src 'self' 'unsafe-inline'")),
        app("csp-unsafe-eval", JSON, (CSP, "default-src 'self' 'unsafe-eval'")),
        app("csp-report-only", JSON, ("Content-Security-Policy-Report-Only", "default-src 'none'")),
        app(
            "csp-default-none-xfo",
            JSON,
            (CSP, "default-src 'none'"),
            ("X-Frame-Options", "SAMEORIGIN"),
            NOSNIFF,
        ),
        app(
            "referrer-private-corp",
            JSON,
            ("Referrer-Policy", "no-referrer"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
            NOSNIFF,
        ),
        app("referrer-unsafe", JSON, ("Referrer-Policy", "unsafe-url")),
        app("xcto-invalid", JSON, ("X-Content-Type-Options", "sniff")),
        app("xfo-allow-from", JSON, ("X-Frame-Options", "ALLOW-FROM https://a.example")),
        app("corp-invalid", JSON, ("Cross-Origin-Resource-Policy", "everyone")),
        Config(
            "cors-universal",
            "app",
            {"/": Route(200, [JSON], reflect_origin=True, credentials=True)},
        ),
        app("cors-public", JSON, ("Access-Control-Allow-Origin", "*")),
        app("cookie-session-insecure", JSON, (COOKIE, "sessionid=a; Path=/")),
        app(
            "cookie-good", JSON, (COOKIE, "sessionid=a; Path=/; Secure; HttpOnly; SameSite=Strict")
        ),
        app("cookie-samesite-invalid", JSON, (COOKIE, "pref=a; Secure; SameSite=Sideways")),
        app("cookie-csrf-no-samesite", JSON, (COOKIE, "csrftoken=a; Secure")),
        app("html-page", HTML, NOSNIFF, ("X-Frame-Options", "DENY"), body=page),
        app("answers-401", JSON, NOSNIFF, status=401),
        app("answers-403", JSON, CSP_API, status=403),
        app("answers-404", JSON, status=404),
        Config("tls-bare", "tls-app", {"/": Route(200, [JSON])}),
        Config(
            "tls-api-set-hsts",
            "tls-app",
            {"/": Route(200, [JSON, CSP_API, NOSNIFF, HSTS, ("Cache-Control", "no-store")])},
        ),
        Config(
            "tls-hsts-short", "tls-app", {"/": Route(200, [JSON, NOSNIFF, (STS, "max-age=86400")])}
        ),
        Config("nginx-default", "nginx"),
        Config("nginx-api-set", "nginx", nginx_headers=(CSP_API, NOSNIFF, HSTS)),
        Config(
            "nginx-hsts-invalid",
            "nginx",
            nginx_headers=((STS, "includeSubDomains"), ("X-Frame-Options", "DENY")),
        ),
    ]


@dataclass
class Side:
    score: int | None
    grade: str | None
    seconds: float
    note: str = ""


@contextmanager
def servers(chosen: list[Config], pki: TestPki) -> Iterator[dict[str, str]]:
    """name -> the URL both tools scan."""
    cert = pki.good()
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for config in chosen:
            if config.kind == "app":
                urls[config.name] = stack.enter_context(PostureApp(config.routes)).url
            elif config.kind == "tls-app":
                server = PostureApp(config.routes, cert=cert.chain, key=cert.key)
                urls[config.name] = stack.enter_context(server).url
        blocks = [
            NginxBlock(
                c.name,
                cert.chain,
                cert.key,
                extra=tuple(f'add_header {n} "{v}" always;' for n, v in c.nginx_headers),
            )
            for c in chosen
            if c.kind == "nginx"
        ]
        if blocks:
            nginx = stack.enter_context(NginxTls(blocks))
            for block in blocks:
                urls[block.name] = f"https://127.0.0.1:{nginx.port(block.name)}/"
        yield urls


def host(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


def run_peer(url: str, root: Path) -> Side:
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(root), "NO_UPDATE_NOTIFIER": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        ["node", str(PEER_SCAN), host(url)], capture_output=True, env=env, timeout=120, check=False
    )
    seconds = time.perf_counter() - started
    document = json.loads(done.stdout or b"{}")
    if "scan" not in document:
        return Side(None, None, seconds, document.get("error", done.stderr.decode()[-200:]))
    return Side(document["scan"]["score"], document["scan"]["grade"], seconds)


def peer_version() -> str:
    package = PEER_SCAN.parent.parent / "package.json"
    return str(json.loads(package.read_text())["version"])


def apivigil_config(urls: dict[str, str], root: Path, workdir: Path) -> Path:
    config = {
        "store": f"sqlite:///{workdir / 'bench.db'}",
        "targets": [
            {
                "name": name,
                "url": url,
                "checks": {
                    "http_posture": {"observatory_algorithm": ALGORITHM, "trust_store": str(root)}
                },
            }
            for name, url in urls.items()
        ],
    }
    path = workdir / "apivigil.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_apivigil(config: Path, targets: list[str]) -> tuple[dict[str, Side], float]:
    command = [sys.executable, "-m", "monitor", "scan", "--config", str(config)]
    command += ["--check", "http_posture", "--format", "json", "--concurrency", "20"]
    for target in targets:
        command += ["--target", target]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APIVIGIL_")}
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(
            f"apivigil scan failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
        )
    sides: dict[str, Side] = {}
    for run in json.loads(done.stdout)["runs"]:
        if run["status"] != "ok":
            sides[run["target"]] = Side(None, None, seconds, f"run {run['status']}: {run['error']}")
            continue
        scores = {
            o["labels"]["profile"]: o
            for o in run["observations"]
            if o["name"] == "http_posture_grade_info"
        }
        values = {
            o["labels"]["profile"]: o["value"]
            for o in run["observations"]
            if o["name"] == "http_posture_score"
        }
        observatory = scores.get("observatory")
        api = (
            f"API {scores['api']['labels']['grade']} {values['api']:.0f}"
            if "api" in scores
            else "API undetermined"  # plain HTTP got no answer that decides
        )
        if observatory is None:
            sides[run["target"]] = Side(None, None, seconds, f"not graded; {api}")
        else:
            grade = observatory["labels"]["grade"]
            sides[run["target"]] = Side(int(values["observatory"]), grade, seconds, api)
    return sides, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="configuration names")
    parser.add_argument("--keep", type=Path, help="keep the config and store here")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "tests" / "install-posture-test-deps.sh")], check=True)
    chosen = [c for c in configs() if not args.only or c.name in args.only]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="apivigil-http-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pki = TestPki(workdir / "pki", host="127.0.0.1")
    with servers(chosen, pki) as urls:
        config = apivigil_config(urls, pki.root_pem, workdir)
        peer: dict[str, Side] = {}
        ours_each: dict[str, Side] = {}
        for name, url in urls.items():  # side by side, so a change of load hits both alike
            peer[name] = run_peer(url, pki.root_pem)
            sides, _ = run_apivigil(config, [name])
            ours_each[name] = sides[name]
        ours_all, all_seconds = run_apivigil(config, list(urls))
    mismatches = 0
    print(
        f"\n{'configuration':26} {'peer':>10} {'apivigil':>10}  {'peer s':>7} {'ours s':>7}  note"
    )
    for config_ in chosen:
        theirs, ours = peer[config_.name], ours_all[config_.name]
        same = theirs.grade == ours.grade
        mismatches += not same
        shown = [f"{s.grade} {s.score}" if s.grade else "not graded" for s in (theirs, ours)]
        print(
            f"{config_.name:26} {shown[0]:>10} {shown[1]:>10}  {theirs.seconds:7.2f} "
            f"{ours_each[config_.name].seconds:7.2f}  {'' if same else 'GRADE DIFFERS; '}"
            f"{ours.note}{'; peer: ' + theirs.note if theirs.note else ''}"
        )
    peer_total = sum(s.seconds for s in peer.values())
    each_total = sum(s.seconds for s in ours_each.values())
    print(
        f"\n{len(chosen)} configurations, {len(chosen) - mismatches} grades equal, "
        f"{mismatches} differ (Observatory algorithm {ALGORITHM}, npm {peer_version()})"
    )
    print(f"peer, one process per host:      {peer_total:7.2f} s")
    for label, seconds in (("per host", each_total), ("for all", all_seconds)):
        print(
            f"apivigil, one process {label + ':':10} {seconds:7.2f} s  "
            f"ratio {seconds / peer_total:.2f}x"
        )
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
