"""checks/http.py: the one function checks use for outbound HTTP."""

from __future__ import annotations

import os
import ssl
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from checks.egress import EgressPolicy
from checks.http import (
    ConnectionDropped,
    ConnectionRefused,
    NotConnected,
    fetch,
    tls_context,
)
from checks.interface import BadInput, CheckMisconfigured, TargetUnreachable
from monitor.certmaker import write_server_files
from tests.support.chains import Chain
from tests.support.hostile_servers import DribblingTlsServer, DrippingHttpServer, GarbageServer
from tests.support.http_servers import Reply, ScriptedHttpServer
from tests.support.ports import free_port
from tests.support.posture_servers import DroppingListener, SilentListener, resetting_listener
from tests.support.tls_certs import TestPki

pytestmark = pytest.mark.integration

EGRESS = EgressPolicy()


def test_credentials_are_not_sent_on_to_another_origin_after_a_redirect() -> None:
    with ScriptedHttpServer() as first, ScriptedHttpServer() as second:
        second.replies["/landing"] = Reply(200, {}, b"ok")
        first.replies["/start"] = Reply(302, {"Location": f"{second.url}/landing"})
        first.replies["/same"] = Reply(302, {"Location": "/start-local"})
        first.replies["/start-local"] = Reply(200, {}, b"ok")

        fetch(
            f"{first.url}/start",
            timeout=5,
            max_bytes=1000,
            headers={"Authorization": "Bearer s3"},
            egress=EgressPolicy(),
        )
        fetch(
            f"{first.url}/same",
            timeout=5,
            max_bytes=1000,
            headers={"Authorization": "Bearer s3"},
            egress=EgressPolicy(),
        )

    assert "Authorization" in first.requests[0][1]
    assert "Authorization" not in second.requests[0][1]
    assert first.requests[-1][0] == "/start-local"
    assert first.requests[-1][1]["Authorization"] == "Bearer s3"


def test_redirects_are_recorded_and_a_loop_is_unreachable() -> None:
    with ScriptedHttpServer() as web:
        web.replies["/a"] = Reply(301, {"Location": "/b"})
        web.replies["/b"] = Reply(200, {"Server": "x"}, b"done")
        web.replies["/loop"] = Reply(302, {"Location": "/loop"})

        answer = fetch(f"{web.url}/a", timeout=5, max_bytes=100, egress=EgressPolicy())
        with pytest.raises(TargetUnreachable, match="more than 5 redirects"):
            fetch(f"{web.url}/loop", timeout=5, max_bytes=100, egress=EgressPolicy())

    assert [(r.status, r.location) for r in answer.redirects] == [(301, "/b")]
    assert answer.body == b"done"
    assert answer.header_values()["server"] == "x"


def test_a_body_over_the_cap_is_bad_input_naming_the_url() -> None:
    with ScriptedHttpServer() as web:
        web.replies["/big"] = Reply(200, {}, b"x" * 5000)

        with pytest.raises(BadInput, match=r"/big: response body of 5000 bytes exceeds 1000"):
            fetch(f"{web.url}/big", timeout=5, max_bytes=1000, egress=EgressPolicy())


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", lambda data: zlib.compress(data, wbits=31)),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw deflate, as some send
        ("gzip, identity", lambda data: zlib.compress(data, wbits=31)),
    ],
)
def test_compressed_bodies_are_decoded(encoding: str, compress: Any) -> None:
    document = b'{"openapi": "3.0.3"}' * 10_000
    with ScriptedHttpServer() as web:
        web.replies["/doc"] = Reply(200, {"Content-Encoding": encoding}, compress(document))

        assert (
            fetch(f"{web.url}/doc", timeout=5, max_bytes=len(document), egress=EgressPolicy()).body
            == document
        )
        with pytest.raises(BadInput, match=f"exceeds {len(document) - 1} bytes"):
            fetch(f"{web.url}/doc", timeout=5, max_bytes=len(document) - 1, egress=EgressPolicy())


def test_a_body_that_is_not_the_gzip_it_claims_is_bad_input() -> None:
    with ScriptedHttpServer() as web:
        web.replies["/doc"] = Reply(200, {"Content-Encoding": "gzip"}, b"plain text, not gzip")

        with pytest.raises(BadInput, match=r"/doc: response body is not valid gzip"):
            fetch(f"{web.url}/doc", timeout=5, max_bytes=1000, egress=EgressPolicy())


@pytest.mark.hostile_peer
@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_server_that_drips_its_answer_is_cut_off_at_the_deadline(headers_too: bool) -> None:
    # each byte comes well within the 5 s read timeout; the server goes on for 60 s
    with DrippingHttpServer(0.1, headers_too=headers_too) as server:
        with pytest.raises(TargetUnreachable) as raised:
            fetch(
                server.url,
                timeout=5,
                max_bytes=10_000,
                egress=EgressPolicy(),
                deadline=time.monotonic() + 1,
            )
        sent = server.bytes_sent
    assert str(raised.value) == (
        f"{server.url}: the run's deadline passed before the answer was complete"
    )
    assert sent < 30  # about 1 s of bytes, not 60 s


def test_a_deadline_already_passed_makes_no_connection() -> None:
    with ScriptedHttpServer() as web:
        web.replies["/"] = Reply(200, {}, b"ok")
        with pytest.raises(TargetUnreachable, match="deadline passed"):
            fetch(
                f"{web.url}/",
                timeout=5,
                max_bytes=10,
                egress=EgressPolicy(),
                deadline=time.monotonic() - 1,
            )
        assert web.requests == []
        assert (
            fetch(
                f"{web.url}/",
                timeout=5,
                max_bytes=10,
                egress=EgressPolicy(),
                deadline=time.monotonic() + 30,
            ).body
            == b"ok"
        )


@pytest.mark.hostile_peer
def test_a_tls_handshake_dripped_one_byte_a_second_is_cut_off_at_the_deadline(
    tmp_path: Path, chain: Chain
) -> None:
    files = write_server_files(tmp_path, "drip", chain.leaf("drip.test"))
    with DribblingTlsServer(*files) as server:
        url = f"https://{server.address}/"
        with pytest.raises(TargetUnreachable) as raised:
            fetch(
                url,
                timeout=30,
                max_bytes=10,
                verify=False,
                egress=EgressPolicy(),
                deadline=time.monotonic() + 2,
            )
        sent = server.bytes_sent
    assert str(raised.value) == f"{url}: the run's deadline passed before the answer was complete"
    assert sent < 10  # about 2 s of bytes, not 30 s


def test_how_a_connection_failed_is_told_apart_refused_dropped_or_timed_out() -> None:
    with (
        SilentListener() as silent,
        resetting_listener() as resetting,
        DroppingListener() as dropping,
    ):
        with pytest.raises(ConnectionRefused, match="Connection refused"):
            fetch(f"http://127.0.0.1:{free_port()}/", timeout=5, max_bytes=100, egress=EGRESS)
        with pytest.raises(ConnectionDropped):
            fetch(resetting.url, timeout=5, max_bytes=100, egress=EGRESS)
        with pytest.raises(NotConnected, match=r"no answer within 0\.5 s"):
            fetch(dropping.url, timeout=0.5, max_bytes=100, egress=EGRESS)
        with pytest.raises(TargetUnreachable, match=r"no answer within 0\.5 s") as timed_out:
            fetch(silent.url, timeout=0.5, max_bytes=100, egress=EGRESS)
    assert type(timed_out.value) is TargetUnreachable  # connected: not refused, dropped ...


def test_a_ca_bundle_that_cannot_be_loaded_is_a_misconfiguration_naming_it(
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "not-a-bundle.pem"
    bundle.write_text("not PEM at all\n")

    with pytest.raises(CheckMisconfigured, match=r"cannot load the CA bundle .*not-a-bundle\.pem"):
        tls_context(str(bundle))
    with pytest.raises(CheckMisconfigured, match=r"not-a-bundle\.pem"):
        fetch("https://127.0.0.1:1/", timeout=1, max_bytes=100, verify=str(bundle), egress=EGRESS)


def _root_der(pki: TestPki) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pki.root_pem.read_text())


def _same_size(first: str, second: str) -> tuple[str, str]:
    """Both PEM texts padded with trailing newlines (outside the PEM block) to one length."""
    size = max(len(first), len(second))
    return first + "\n" * (size - len(first)), second + "\n" * (size - len(second))


def test_a_trust_store_rewritten_in_place_with_its_size_and_mtime_kept_is_loaded_again(
    tmp_path: Path,
) -> None:
    old, new = TestPki(tmp_path / "old"), TestPki(tmp_path / "new")
    old_pem, new_pem = _same_size(old.root_pem.read_text(), new.root_pem.read_text())
    bundle = tmp_path / "trust.pem"
    bundle.write_text(old_pem)
    kept = bundle.stat()
    assert _root_der(old) in tls_context(str(bundle)).get_ca_certs(binary_form=True)

    bundle.write_text(new_pem)  # e.g. `cp -p`: same size, mtime restored
    os.utime(bundle, ns=(kept.st_atime_ns, kept.st_mtime_ns))

    trusted = tls_context(str(bundle)).get_ca_certs(binary_form=True)
    assert _root_der(new) in trusted
    assert _root_der(old) not in trusted


def test_a_rotated_ssl_cert_file_is_loaded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = TestPki(tmp_path / "old"), TestPki(tmp_path / "new")
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(old.root_pem.read_text())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    assert _root_der(old) in tls_context(True).get_ca_certs(binary_form=True)

    bundle.write_text(new.root_pem.read_text())  # the environment still names the same file

    trusted = tls_context(True).get_ca_certs(binary_form=True)
    assert _root_der(new) in trusted
    assert _root_der(old) not in trusted


@pytest.mark.parametrize("ending", ["close", "hang"])
def test_with_partial_body_an_answer_whose_body_stops_coming_is_returned_cut(
    ending: str,
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nbegin"
    server = GarbageServer(payload=head) if ending == "close" else SilentListener(answer=head)
    with server:
        url = f"http://127.0.0.1:{server.port}/"
        with pytest.raises(TargetUnreachable):  # by default, an incomplete body is no answer
            fetch(url, timeout=0.5, max_bytes=1000, egress=EGRESS)
        response = fetch(url, timeout=0.5, max_bytes=1000, egress=EGRESS, partial_body=True)

    assert response.status == 200
    assert response.body == b"begin"
    assert response.truncated
