"""Content-Security-Policy as the Observatory reads it: one policy, directives lower-cased,
duplicates invalid, sources of one directive sorted with prefixes of earlier ones dropped, and
the first matching result of its ordered list (unsafe-inline ... default-src 'none')."""

from __future__ import annotations

from checks.http_posture.facts import Answer

_BROAD = frozenset(
    {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
)
_INLINE = frozenset({"'unsafe-inline'", "data:"})
_NONCE_HASH = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")
_REPEATABLE = frozenset({"report-uri", "report-to"})
# not a directive: the repeated report-uri/report-to directives (the scanner warns, and a
# passing policy becomes "implemented but duplicate directives", 0 points)
DUPLICATES = "_observatory_duplicate_key_warnings"
_PASSING = frozenset(
    {
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    }
)


class InvalidCsp(Exception):
    """A policy the scanner would call invalid (too short, a duplicated directive)."""

    pass


def parse_csp(policy: str) -> dict[str, set[str]]:
    """Directive -> sources (lower-cased), as the scanner reads one policy; raises
    InvalidCsp for a too-short policy or a duplicated directive (report-uri/-to aside)."""
    text = policy.replace("\r", "").replace("\n", "").strip()
    if len(text) < len("img-src") - 1:
        raise InvalidCsp(text)
    directives: dict[str, set[str]] = {}
    duplicates: set[str] = set()
    for entry in text.split(";"):
        parts = entry.strip().split()
        if not parts:
            continue
        directive, sources = parts[0].lower(), [s.strip().lower() for s in parts[1:]]
        if directive in directives:
            if directive not in _REPEATABLE:
                raise InvalidCsp(f"duplicate directive {directive}")
            duplicates.add(directive)  # the last one stands: the scanner's map is overwritten
        if not sources and directive.endswith("-src"):
            sources = ["'none'"]
        ordered = sorted(sources)
        kept = [s for i, s in enumerate(ordered) if i == 0 or not s.startswith(ordered[i - 1])]
        directives[directive] = set(kept) or {"'none'"}
    if duplicates:
        directives[DUPLICATES] = duplicates
    return directives


def csp_result(page: Answer, secure_page: bool) -> tuple[str, dict[str, set[str]] | None]:
    header = page.joined("content-security-policy")
    if header is None:
        if page.joined("content-security-policy-report-only"):
            return "csp-not-implemented-but-reporting-enabled", None
        return "csp-not-implemented", None
    try:
        csp = parse_csp(header)
    except InvalidCsp:
        return "csp-header-invalid", None
    if not csp:
        return "csp-not-implemented", None
    default = csp.get("default-src")
    object_src = set(csp.get("object-src") or default or {"*"})
    script_src = set(csp.get("script-src") or default or {"*"})
    style_src = set(csp.get("style-src") or default or {"*"})
    for sources in (script_src, style_src):
        if _has_nonce_hash(sources):
            sources.discard("'unsafe-inline'")
    result: str | None = None
    if _has_nonce_hash(script_src) and "'strict-dynamic'" in script_src:
        for source in list(script_src):
            if any(source.startswith(b) for b in _BROAD) or source in ("'self'", "'unsafe-inline'"):
                script_src.discard(source)
    elif "'strict-dynamic'" in script_src:
        result = "csp-header-invalid"
    active = [
        s
        for directive, sources in csp.items()
        if directive not in ("img-src", "media-src", "script-src", DUPLICATES)
        for s in sources
    ] + list(script_src)
    passive = [
        s for directive in ("img-src", "media-src") for s in (csp.get(directive) or default or ())
    ]

    def insecure(sources: list[str]) -> bool:
        return secure_page and any(s.startswith(("http:", "ftp:")) for s in sources)

    checks = (
        (
            bool(script_src & (_BROAD | _INLINE)) or bool(object_src & _BROAD),
            "csp-implemented-with-unsafe-inline",
        ),
        (insecure(active), "csp-implemented-with-insecure-scheme"),
        ("'unsafe-eval'" in (script_src | style_src), "csp-implemented-with-unsafe-eval"),
        (insecure(passive), "csp-implemented-with-insecure-scheme-in-passive-content-only"),
        (
            bool(style_src & (_BROAD | _INLINE)),
            "csp-implemented-with-unsafe-inline-in-style-src-only",
        ),
        (default == {"'none'"}, "csp-implemented-with-no-unsafe-default-src-none"),
        (True, "csp-implemented-with-no-unsafe"),
    )
    for condition, outcome in checks:
        if result is None and condition:
            result = outcome
    assert result is not None
    if result in _PASSING and DUPLICATES in csp:
        result = "csp-implemented-but-duplicate-directives"
    return result, csp


def _has_nonce_hash(sources: set[str]) -> bool:
    return any(source.startswith(_NONCE_HASH) for source in sources)
