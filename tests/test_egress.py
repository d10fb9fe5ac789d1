"""checks/egress.py: URLs from remote content never reach link-local or metadata addresses."""

from __future__ import annotations

import inspect
import ipaddress
import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from checks import egress
from checks.api_inventory.reading import read_inventory_url
from checks.egress import EgressPolicy, EgressSettings
from checks.http import fetch
from checks.interface import BadInput, Check, CheckContext, CheckParams, TargetUnreachable
from monitor.model import CheckKind, CheckOutput, Target
from monitor.runner import CheckJob, Runner
from tests.support.chains import Chain, ServeFactory
from tests.support.http_servers import Reply, ScriptedHttpServer

METADATA_URL = "http://169.254.169.254/latest/meta-data/"


@pytest.fixture
def requested(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL httpx was asked to connect to (the transport is where connections start)."""
    seen: list[str] = []
    original = httpx.HTTPTransport.handle_request

    def spy(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return original(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", spy)
    return seen


@pytest.fixture
def web() -> Iterator[ScriptedHttpServer]:
    with ScriptedHttpServer() as server:
        yield server


@pytest.mark.integration
def test_a_redirect_to_cloud_metadata_is_refused_before_any_connection(
    web: ScriptedHttpServer, requested: list[str]
) -> None:
    # Given a loopback server that redirects to the metadata service
    web.replies["/start"] = Reply(302, {"Location": METADATA_URL})

    # When the monitor fetches it
    began = time.monotonic()
    with pytest.raises(BadInput) as refused:
        fetch(f"{web.url}/start", timeout=30, max_bytes=1000, egress=EgressPolicy())

    # Then the redirect is refused by policy, fast, and only the loopback URL was requested
    assert str(refused.value) == (
        f"{METADATA_URL}: egress to 169.254.169.254 denied by policy: link-local/cloud metadata"
    )
    assert time.monotonic() - began < 2
    assert requested == [f"{web.url}/start"]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("location", "shown", "why"),
    [
        ("http://[fe80::1]/", "fe80::1", "IPv6 link-local"),
        ("http://[fe80::a9fe:a9fe%25eth0]/", "fe80::a9fe:a9fe%25eth0", "IPv6 link-local"),
        ("http://[fd00:ec2::254]/latest/", "fd00:ec2::254", "cloud metadata (AWS IPv6)"),
        ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254", egress.METADATA),
        ("http://100.100.100.200/latest/", "100.100.100.200", "cloud metadata (Alibaba)"),
        ("http://192.0.0.192/opc/v2/", "192.0.0.192", "cloud metadata (Oracle)"),
        # a decimal IPv4 address is a "name" getaddrinfo turns into 169.254.169.254 locally
        ("http://2852039166/", "169.254.169.254 (from 2852039166)", egress.METADATA),
    ],
)
def test_link_local_and_metadata_redirects_are_refused(
    web: ScriptedHttpServer, requested: list[str], location: str, shown: str, why: str
) -> None:
    web.replies["/start"] = Reply(301, {"Location": location})

    with pytest.raises(BadInput, match=re.escape(f"egress to {shown} denied by policy: {why}")):
        fetch(f"{web.url}/start", timeout=5, max_bytes=1000, egress=EgressPolicy())
    assert requested == [f"{web.url}/start"]


@pytest.mark.integration
def test_a_name_resolving_to_a_denied_address_is_refused(
    web: ScriptedHttpServer, requested: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a name that resolves to loopback AND to the metadata address
    looked_up: list[tuple[str, int]] = []

    def fake_resolve(host: str, port: int, timeout: float) -> tuple[str, ...]:
        looked_up.append((host, port))
        return ("127.0.0.1", "169.254.169.254")

    monkeypatch.setattr(egress, "resolve_name", fake_resolve)
    web.replies["/start"] = Reply(302, {"Location": "http://metadata.example.test:8080/x"})

    with pytest.raises(BadInput, match=r"egress to 169.254.169.254 \(from metadata.example.test\)"):
        fetch(f"{web.url}/start", timeout=5, max_bytes=1000, egress=EgressPolicy())

    assert looked_up == [("metadata.example.test", 8080)]
    assert requested == [f"{web.url}/start"]


@pytest.mark.integration
def test_a_name_that_rebinds_after_the_check_is_reached_at_the_checked_address(
    monkeypatch: pytest.MonkeyPatch, web: ScriptedHttpServer
) -> None:
    # DNS rebinding: the name answers 127.0.0.1 (allowed) to the policy check, then
    # 127.0.0.2 (denied: "the internal service") to anyone who asks again
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding_dns(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        answer = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real_getaddrinfo(answer, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    policy = EgressPolicy.with_lists(deny_cidrs=[ipaddress.ip_network("127.0.0.2/32")])
    web.replies["/start"] = Reply(302, {"Location": f"http://rebind.example.test:{web.port}/d"})
    web.replies["/d"] = Reply(200, {}, b"public")
    with ScriptedHttpServer(host="127.0.0.2", port=web.port) as internal:
        internal.replies["/d"] = Reply(200, {}, b"internal secret")

        response = fetch(f"{web.url}/start", timeout=5, max_bytes=100, egress=policy)

    assert response.body == b"public"
    assert response.url == f"http://rebind.example.test:{web.port}/d"
    assert internal.requests == []
    assert lookups == ["rebind.example.test"]
    assert web.requests[-1][1]["Host"] == f"rebind.example.test:{web.port}"


@pytest.mark.integration
def test_a_pinned_https_connection_still_sends_and_verifies_the_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, chain: Chain, serve: ServeFactory
) -> None:
    server = serve(chain.leaf("api.example.test"))
    real_getaddrinfo = socket.getaddrinfo

    def loopback_dns(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        known = str(host).endswith(".example.test")
        return real_getaddrinfo("127.0.0.1" if known else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_dns)
    root = tmp_path / "root.pem"
    root.write_bytes(chain.root.pem)

    def get(name: str) -> int:
        url = f"https://{name}:{server.port}/"
        response = fetch(
            url, timeout=5, max_bytes=1000, verify=str(root), derived=True, egress=EgressPolicy()
        )
        return response.status

    assert get("api.example.test") == 200
    with pytest.raises(TargetUnreachable, match=r"other\.example\.test.*(certificate|hostname)"):
        get("other.example.test")


@pytest.mark.unit
def test_the_resolver_passed_in_is_the_one_asked() -> None:
    policy = EgressPolicy()

    policy.check_url("https://fine.example.test/", lambda host, port, timeout: ["192.0.2.1"])
    with pytest.raises(BadInput, match="denied by policy: IPv6 link-local"):
        policy.check_url("https://bad.example.test/", lambda host, port, timeout: ["fe80::2"])


@pytest.mark.integration
def test_the_first_url_is_checked_only_when_it_came_from_remote_content(
    requested: list[str],
) -> None:
    # derived: refused without a connection; not derived (configured): httpx is asked
    with pytest.raises(BadInput, match="denied by policy"):
        fetch(METADATA_URL, timeout=5, max_bytes=10, derived=True, egress=EgressPolicy())
    assert requested == []

    policy = EgressPolicy.with_lists(deny_cidrs=[ipaddress.ip_network("127.0.0.0/8")])
    with ScriptedHttpServer() as web:
        web.replies["/"] = Reply(200, {}, b"ok")
        assert fetch(f"{web.url}/", timeout=5, max_bytes=10, egress=policy).body == b"ok"
        with pytest.raises(BadInput, match=re.escape("denied by policy: deny list 127.0.0.0/8")):
            fetch(f"{web.url}/", timeout=5, max_bytes=10, egress=policy, derived=True)


@pytest.mark.integration
def test_a_same_origin_ref_that_redirects_to_metadata_is_refused(
    web: ScriptedHttpServer, requested: list[str]
) -> None:
    # Given a spec whose $ref names a document on its own origin, which redirects away
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {"/users": {"get": {"responses": {"200": {"$ref": "/common.json#/Ok"}}}}},
    }
    web.replies["/openapi.json"] = Reply(200, {}, json.dumps(spec).encode())
    web.replies["/common.json"] = Reply(302, {"Location": METADATA_URL})

    with pytest.raises(BadInput, match=re.escape("egress to 169.254.169.254 denied by policy")):
        read_inventory_url(
            f"{web.url}/openapi.json", timeout=5, allow_remote_refs=True, egress=EgressPolicy()
        )
    assert requested == [f"{web.url}/openapi.json", f"{web.url}/common.json"]


@pytest.mark.integration
def test_the_allow_list_overrides_the_deny_lists(
    web: ScriptedHttpServer, requested: list[str]
) -> None:
    loopback = ipaddress.ip_network("127.0.0.0/8")
    web.replies["/start"] = Reply(302, {"Location": "/landing"})
    web.replies["/landing"] = Reply(200, {}, b"landed")

    denying = EgressPolicy.with_lists(deny_cidrs=[loopback])
    with pytest.raises(
        BadInput, match=re.escape("egress to 127.0.0.1 denied by policy: deny list")
    ):
        fetch(f"{web.url}/start", timeout=5, max_bytes=100, egress=denying)
    allowing = EgressPolicy.with_lists(
        deny_cidrs=[loopback], allow_cidrs=[ipaddress.ip_network("127.0.0.1/32")]
    )
    assert fetch(f"{web.url}/start", timeout=5, max_bytes=100, egress=allowing).body == b"landed"

    metadata_allowed = EgressPolicy.with_lists(allow_cidrs=[ipaddress.ip_network("169.254.0.0/16")])
    assert metadata_allowed.denial("169.254.169.254") is None
    assert metadata_allowed.denial("fe80::1") == "IPv6 link-local"
    assert requested == [f"{web.url}/start", f"{web.url}/start", f"{web.url}/landing"]


@pytest.mark.integration
def test_the_settings_give_the_policy_and_fetch_has_no_policy_of_its_own(
    web: ScriptedHttpServer,
) -> None:
    settings = EgressSettings.model_validate(
        {"deny_cidrs": ["127.0.0.0/8", "10.0.0.0/8"], "allow_cidrs": ["fd00::/8"]}
    )
    policy = settings.policy()
    assert policy.denial("10.1.2.3") == "deny list 10.0.0.0/8"
    assert policy.denial("fd00:ec2::254") is None
    assert policy.denial("8.8.8.8") is None
    with pytest.raises(ValueError, match="deny_cidrs"):
        EgressSettings.model_validate({"deny_cidrs": ["not a network"]})

    web.replies["/start"] = Reply(302, {"Location": "/landing"})
    web.replies["/landing"] = Reply(200, {}, b"landed")
    with pytest.raises(BadInput, match=re.escape("deny list 127.0.0.0/8")):
        fetch(f"{web.url}/start", timeout=5, max_bytes=100, egress=policy)
    # no process-wide policy is left behind for a caller that names none
    assert fetch(f"{web.url}/start", timeout=5, max_bytes=100, egress=EgressPolicy()).body == (
        b"landed"
    )
    assert inspect.signature(fetch).parameters["egress"].default is inspect.Parameter.empty
    assert not hasattr(egress, "set_default_policy")
    assert not hasattr(egress, "default_policy")


class ContextEgress(Check[CheckParams, EgressPolicy]):
    """Reports the egress policy its run was given."""

    kind = CheckKind.CERT_EXPIRY
    params_model = CheckParams

    def __init__(self) -> None:
        self.seen: list[EgressPolicy] = []

    def collect(self, target: Target, params: CheckParams, context: CheckContext) -> EgressPolicy:
        self.seen.append(context.egress)
        return context.egress

    def evaluate(self, raw: EgressPolicy, params: CheckParams, now: datetime) -> CheckOutput:
        return CheckOutput()


@pytest.mark.unit
def test_each_run_carries_the_runners_policy_and_a_replaced_one_from_then_on() -> None:
    started = EgressPolicy.with_lists(deny_cidrs=[ipaddress.ip_network("10.0.0.0/8")])
    reloaded = EgressPolicy.with_lists(deny_cidrs=[ipaddress.ip_network("172.16.0.0/12")])
    check = ContextEgress()
    runner = Runner({CheckKind.CERT_EXPIRY: check}, egress=started)
    job = CheckJob(CheckKind.CERT_EXPIRY, Target("t"), CheckParams(), timedelta(seconds=5))

    runner.run(job)
    runner.replace_egress(reloaded)
    runner.run(job)

    assert check.seen == [started, reloaded]
