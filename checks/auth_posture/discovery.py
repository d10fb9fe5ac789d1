"""Pure audit of an OpenID Provider's discovery document (OIDC Discovery 1.0 §3, §4.3;
RFC 8414): the issuer it names, its endpoints' schemes, the algorithms it offers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from checks.auth_posture.facts import Discovery
from monitor.model import Finding, Severity

WELL_KNOWN = "/.well-known/openid-configuration"
OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + WELL_KNOWN


def issuer_of(url: str) -> str | None:
    """The issuer a metadata URL belongs to: OIDC Discovery §4 appends the well-known
    suffix to the issuer, RFC 8414 §3 inserts its own before the issuer's path. None for a
    URL of neither form (nothing to compare the issuer with)."""
    if url.endswith(WELL_KNOWN):
        return url[: -len(WELL_KNOWN)]
    parts = urlsplit(url)
    if parts.path.startswith(OAUTH_WELL_KNOWN):
        return f"{parts.scheme}://{parts.netloc}{parts.path[len(OAUTH_WELL_KNOWN) :]}"
    return None


def audit_discovery(discovery: Discovery) -> list[Finding]:
    fetched = discovery.fetched
    document = fetched.document
    url = fetched.url
    findings: list[Finding] = []
    if fetched.error is not None or not isinstance(document, dict):
        findings.append(
            Finding(
                "OIDC-DISCOVERY-UNREADABLE",
                Severity.HIGH,
                "The OpenID Connect discovery document cannot be read",
                url,
                fetched.error or f"answered {type(document).__name__}, not a JSON object",
                "Serve the provider metadata as JSON at the issuer's "
                "/.well-known/openid-configuration.",
            )
        )
        return findings
    issuer = document.get("issuer")
    if discovery.expected_issuer is not None and not _same_issuer(issuer, discovery):
        findings.append(
            Finding(
                "OIDC-ISSUER-MISMATCH",
                Severity.HIGH,
                "The discovery document names another issuer than the one it was fetched for",
                url,
                f"issuer is {issuer!r}, expected {discovery.expected_issuer!r} (OIDC Discovery "
                "§4.3: it must be identical): tokens from it fail validation, or a verifier "
                "trusts the wrong issuer",
                "Make 'issuer' exactly the URL the discovery document is served under.",
            )
        )
    plain = sorted(
        f"{name}={value}"
        for name, value in _urls(document)
        if urlsplit(value).scheme.lower() != "https"
    )
    if urlsplit(url).scheme.lower() != "https":
        plain.insert(0, f"discovery document={url}")
    for entry in plain:
        name = entry.split("=", 1)[0]
        findings.append(
            Finding(
                "OIDC-ENDPOINT-NOT-HTTPS",
                Severity.HIGH,
                "An OpenID Connect endpoint is not served over HTTPS",
                f"{url} {name}",
                f"{entry} (OIDC Discovery §3, RFC 8414 §2: https required)",
                "Serve every provider endpoint, the JWK Set and the metadata over HTTPS only.",
            )
        )
    algs = document.get("id_token_signing_alg_values_supported")
    if isinstance(algs, list) and any(str(alg).lower() == "none" for alg in algs):
        findings.append(
            Finding(
                "OIDC-ALG-NONE-ADVERTISED",
                Severity.MEDIUM,
                "The provider offers unsigned ID tokens",
                f"{url} id_token_signing_alg_values_supported",
                f"id_token_signing_alg_values_supported = {algs} includes 'none' (RFC 8725 §3.2)",
                "Remove 'none' from the supported ID token signing algorithms.",
            )
        )
    if not isinstance(document.get("jwks_uri"), str):
        findings.append(
            Finding(
                "OIDC-DISCOVERY-UNREADABLE",
                Severity.HIGH,
                "The OpenID Connect discovery document has no jwks_uri",
                url,
                "jwks_uri is missing or not a string (OIDC Discovery §3: REQUIRED)",
                "Publish the signing keys and name them in jwks_uri.",
            )
        )
    return findings


def _same_issuer(issuer: Any, discovery: Discovery) -> bool:
    """A configured issuer must match exactly. One read off a metadata URL may differ by a
    final '/': OIDC Discovery §4.1 removes it before appending the well-known suffix (an
    issuer of https://tenant.example/ is served at https://tenant.example/.well-known/...)."""
    expected = discovery.expected_issuer
    if issuer == expected:
        return True
    return (
        discovery.derived
        and isinstance(issuer, str)
        and expected is not None
        and issuer.rstrip("/") == expected.rstrip("/")
    )


def _urls(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(name), value)
        for name, value in document.items()
        if isinstance(value, str)
        and (str(name).endswith(("_endpoint", "_uri")) or name == "issuer")
        and "://" in value
        and not str(name).startswith(("op_policy", "op_tos", "service_documentation"))
    ]
