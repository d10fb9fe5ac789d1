"""Pure judgement of a patch_level run: vulnerable, overdue, end-of-life and outdated
components, and versions disclosed in banners."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from checks.patch_level.eol import CycleVerdict, judge
from checks.patch_level.facts import PatchRaw, SourceMatch
from checks.patch_level.packages import (
    UPSTREAM_VERSIONED,
    Advisory,
    BannerProduct,
    SeveritySource,
)
from checks.patch_level.params import PatchLevelParams
from monitor.model import CheckOutput, Finding, Observation, Severity

_LABELS = {severity.value: severity for severity in Severity}
OVERDUE_LABELS = (("overdue", "true"),)  # routes and silences match it


def evaluate(raw: PatchRaw, params: PatchLevelParams, now: datetime) -> CheckOutput:
    findings: list[Finding] = []
    vulnerable: Counter[Severity] = Counter()
    overdue: Counter[Severity] = Counter()
    oldest_unpatched: datetime | None = None
    for source_match in raw.matches:
        severity = _severity(source_match, params)
        match = source_match.match
        published = match.fix_published
        late: Overdue | None = None
        if match.fixed_versions and published is not None:
            oldest_unpatched = min(oldest_unpatched or published, published)
            late = _overdue(published, params.deadlines.for_severity(severity), now)
        final = severity
        if late is not None:  # a state of the one finding, never a second finding
            overdue[severity] += 1
            final = max(severity, params.overdue_severity or _one_step_up(severity), key=_rank)
        findings.append(_vulnerable(source_match, final, late, params.unknown_severity))
        vulnerable[severity] += 1
    findings.extend(_eol_findings(raw, now))
    for source, reason in raw.failures:
        findings.append(_unavailable(source, reason))
    undetermined = _undetermined_findings(raw)
    findings.extend(undetermined)
    observations = [
        Observation("patch_packages", float(len(s.packages)), {"source": s.source})
        for s in raw.sources
        if not s.banners
    ]
    for severity in Severity:
        observations.append(
            Observation(
                "patch_vulnerabilities", float(vulnerable[severity]), {"severity": severity}
            )
        )
        observations.append(
            Observation("patch_overdue", float(overdue[severity]), {"severity": severity})
        )
    observations.append(Observation("patch_undetermined", float(len(undetermined))))
    if oldest_unpatched is not None:
        observations.append(
            Observation(
                "patch_oldest_unpatched_age_seconds",
                max(0.0, (now - oldest_unpatched).total_seconds()),
            )
        )
    if raw.advisories_built_at is not None:
        age = max(0.0, (now - raw.advisories_built_at).total_seconds())
        observations.extend(
            Observation("patch_advisories_age_seconds", age, {"source": source})
            for source in raw.advisory_sources or ("unknown",)
        )
        if now - raw.advisories_built_at > params.max_advisory_age:
            findings.append(_stale(raw.advisories_built_at, raw, params, now))
    return CheckOutput(
        observations=tuple(observations),
        findings=tuple(sorted(findings, key=lambda f: (-f.severity.rank, f.rule_id, f.subject))),
        snapshot=_snapshot(raw),
        undetermined=tuple(
            f"{source}|"
            for source in [
                *(source for source, _ in raw.failures),
                *(s.source for s in raw.sources if any(u.package is None for u in s.undetermined)),
            ]
        ),
    )


@dataclass(frozen=True, slots=True)
class Overdue:
    deadline: datetime
    days_past: int


def _overdue(published: datetime, allowed: timedelta | None, now: datetime) -> Overdue | None:
    if allowed is None:
        return None
    try:
        deadline = published + allowed
    except OverflowError:  # a fix "published" near the year 9999 is never due
        return None
    return Overdue(deadline, (now - deadline).days) if now > deadline else None


def _rank(severity: Severity) -> int:
    return severity.rank


def _one_step_up(severity: Severity) -> Severity:
    order = sorted(Severity, key=_rank)
    return order[min(severity.rank + 1, len(order) - 1)]


def _severity(source_match: SourceMatch, params: PatchLevelParams) -> Severity:
    label = source_match.match.advisory.severity_label
    if label == "none":
        return Severity.INFO
    return _LABELS.get(label or "", params.unknown_severity)


def _subject(source_match: SourceMatch) -> str:
    package = source_match.match.package
    return (
        f"{source_match.source}|{package.name}@{package.version} {source_match.match.advisory.id}"
    )


def _rating(advisory: Advisory, default: Severity) -> str:
    if advisory.severity_source is SeveritySource.UNKNOWN:
        names = " nor ".join(dict.fromkeys((advisory.id, *advisory.aliases)))
        return f"severity: rated by none of {names}; the configured default ({default}) applies"
    rating = (
        f"CVSS {advisory.cvss_score} {advisory.cvss_vector}"
        if advisory.cvss_vector
        else (advisory.severity_label or "unrated")
    )
    given_by = f" of {advisory.severity_from}" if advisory.severity_from else ""
    return f"severity from {advisory.severity_source.value}{given_by}: {rating}"


def _vulnerable(
    source_match: SourceMatch, severity: Severity, late: Overdue | None, default: Severity
) -> Finding:
    match = source_match.match
    package, advisory = match.package, match.advisory
    fixed = ", ".join(match.fixed_versions) or "no fixed version published"
    parts = [
        f"installed {package.name} {package.version} ({package.ecosystem}"
        + (f":{package.release}" if package.release else "")
        + (f", source package {package.source_name}" if package.source_name else "")
        + ")",
        f"fixed in: {fixed}",
        f"advisory {advisory.id}"
        + (f" (aliases: {', '.join(advisory.aliases)})" if advisory.aliases else ""),
        f"published {advisory.published:%Y-%m-%d}" if advisory.published else "published: unknown",
        _rating(advisory, default),
        f"found in {package.source}",
    ]
    if late is not None:
        parts.insert(
            0,
            f"overdue: true (fix published {match.fix_published:%Y-%m-%d}, deadline "
            f"{late.deadline:%Y-%m-%d}, {late.days_past} day(s) past it; severity raised to "
            f"{severity.value})",
        )
    if late is not None:
        upgrade = (
            f"Overdue: deploy {package.name} {match.fixed_versions[0]} now, or record an exception."
        )
    elif match.fixed_versions:
        upgrade = f"Upgrade {package.name} to {match.fixed_versions[0]} or later."
    else:
        upgrade = f"No fix is published yet: mitigate {advisory.id} or remove {package.name}."
    title = f"{package.name} {package.version} is affected by {advisory.id}: {advisory.summary}"
    if late is not None:
        title = f"[overdue {late.days_past} d] {title}"
    return Finding(
        rule_id="PATCH-VULNERABLE",
        severity=severity,
        title=title[:300],
        subject=_subject(source_match),
        evidence="; ".join(parts),
        remediation=upgrade,
        labels=OVERDUE_LABELS if late is not None else (),
    )


def _stale(built_at: datetime, raw: PatchRaw, params: PatchLevelParams, now: datetime) -> Finding:
    days = (now - built_at).days
    limit = params.max_advisory_age.total_seconds() / 86400
    return Finding(
        rule_id="PATCH-ADVISORIES-STALE",
        severity=Severity.MEDIUM,
        title=f"The advisory index {params.advisories} is {days} day(s) old",
        subject=str(params.advisories),
        evidence=(
            f"built {built_at:%Y-%m-%d %H:%M} UTC from {', '.join(raw.advisory_sources) or '?'}; "
            f"the configured maximum age is {limit:g} day(s): vulnerabilities published since "
            "are not matched"
        ),
        remediation=(
            "Refresh the sources (git pull, download the dumps) and run `apivigil advisories "
            "update`, e.g. from a daily timer."
        ),
    )


def _eol_findings(raw: PatchRaw, now: datetime) -> list[Finding]:
    findings: list[Finding] = []
    system = raw.operating_system
    if system is not None and system.product in raw.eol:
        verdict = judge(system.product, system.version, raw.eol[system.product], now)
        if verdict is not None and verdict.eol:
            findings.append(
                _eol(f"os|{system.product} {system.version}", verdict, Severity.HIGH, "")
            )
    for inventory in raw.sources:
        for banner in inventory.banners:
            findings.extend(_banner_findings(inventory.source, banner, raw, now))
        for package in inventory.packages:
            cycles = raw.eol.get(package.name.lower())
            if package.ecosystem not in UPSTREAM_VERSIONED or cycles is None:
                continue
            verdict = judge(package.name.lower(), package.version, cycles, now)
            if verdict is None:
                continue
            subject = f"{inventory.source}|{package.name}@{package.version}"
            if verdict.eol:
                findings.append(_eol(subject, verdict, Severity.HIGH, ""))
            elif verdict.behind_latest:
                findings.append(_outdated(subject, verdict, Severity.LOW, ""))
    return findings


_BANNER_CAVEAT = (
    " (low confidence: read from an HTTP banner; distributions backport fixes without "
    "changing the version they announce)"
)


def _banner_findings(
    source: str, banner: BannerProduct, raw: PatchRaw, now: datetime
) -> list[Finding]:
    if banner.version is None:
        return []
    subject = f"{source}|{banner.header}: {banner.product}/{banner.version}"
    findings = [
        Finding(
            rule_id="PATCH-VERSION-DISCLOSED",
            severity=Severity.LOW,
            title=f"The {banner.header} header discloses {banner.product} {banner.version}",
            subject=subject,
            evidence=f"{banner.header}: {banner.raw_value}",
            remediation=(
                "Stop announcing versions (e.g. nginx `server_tokens off;`, Apache "
                "`ServerTokens Prod`, PHP `expose_php = Off`)."
            ),
        )
    ]
    cycles = raw.eol.get(banner.product)
    verdict = judge(banner.product, banner.version, cycles, now) if cycles else None
    if verdict is not None and verdict.eol:
        findings.append(_eol(subject, verdict, Severity.MEDIUM, _BANNER_CAVEAT))
    elif verdict is not None and verdict.behind_latest:
        findings.append(_outdated(subject, verdict, Severity.LOW, _BANNER_CAVEAT))
    return findings


def _eol(subject: str, verdict: CycleVerdict, severity: Severity, caveat: str) -> Finding:
    cycle = verdict.cycle
    ended = f"on {cycle.eol:%Y-%m-%d}" if isinstance(cycle.eol, datetime) else "(no date given)"
    return Finding(
        rule_id="PATCH-EOL",
        severity=severity,
        title=f"{verdict.product} {verdict.version} is end-of-life (cycle {cycle.cycle})",
        subject=subject,
        evidence=f"release cycle {cycle.cycle} reached end of life {ended}{caveat}",
        remediation=f"Move to a supported release of {verdict.product}.",
    )


def _outdated(subject: str, verdict: CycleVerdict, severity: Severity, caveat: str) -> Finding:
    latest = verdict.cycle.latest
    return Finding(
        rule_id="PATCH-OUTDATED",
        severity=severity,
        title=f"{verdict.product} {verdict.version} is behind {latest}, the latest of its cycle",
        subject=subject,
        evidence=f"cycle {verdict.cycle.cycle}: latest patch release {latest}{caveat}",
        remediation=f"Upgrade {verdict.product} to {latest}.",
    )


def _unavailable(source: str, reason: str) -> Finding:
    return Finding(
        rule_id="PATCH-SOURCE-UNAVAILABLE",
        severity=Severity.MEDIUM,
        title=f"Inventory source {source} could not be read",
        subject=source,
        evidence=reason,
        remediation=(
            "Fix the source; its components are not judged (findings neither raised nor "
            "resolved) until it reads again."
        ),
    )


def _undetermined_findings(raw: PatchRaw) -> list[Finding]:
    """PATCH-UNDETERMINED: what could be neither matched nor ruled out is not clean."""
    findings = []
    for inventory in raw.sources:
        for item in inventory.undetermined:
            findings.append(
                Finding(
                    rule_id="PATCH-UNDETERMINED",
                    severity=Severity.LOW,
                    title=f"Packages of inventory source {inventory.source} cannot be judged",
                    subject=f"{inventory.source}|distribution",
                    evidence=item.reason,
                    remediation=(
                        "Say which distribution and release the packages belong to (os_release "
                        "or distribution in the source's config, or an SBOM whose purls carry "
                        "it), or inventory them with a source OSV covers."
                    ),
                )
            )
    for entry in raw.undetermined:
        package, advisory_id = entry.undetermined.package, entry.undetermined.advisory_id
        if package is None:
            continue
        findings.append(
            Finding(
                rule_id="PATCH-UNDETERMINED",
                severity=Severity.LOW,
                title=(
                    f"Whether {package.name} {package.version} is affected by {advisory_id} "
                    "cannot be determined"
                )[:300],
                subject=f"{entry.source}|{package.name}@{package.version} {advisory_id}",
                evidence=(
                    f"advisory {advisory_id}; installed {package.name} {package.version} "
                    f"({package.ecosystem}); {entry.undetermined.reason}; found in {package.source}"
                ),
                remediation=(
                    f"Check {advisory_id} for {package.name} {package.version} by hand; the "
                    "advisory's or the package's version does not follow the ecosystem's rules."
                ),
            )
        )
    return findings


def _snapshot(raw: PatchRaw) -> dict[str, object]:
    return {
        "sources": {
            s.source: {
                "packages": sorted(f"{p.ecosystem}/{p.name}@{p.version}" for p in s.packages),
                "banners": sorted(f"{b.header}: {b.raw_value}" for b in s.banners),
                "notes": list(s.notes),
                **({"producer": s.producer} if s.producer else {}),
                **({"undetermined": [u.reason for u in s.undetermined]} if s.undetermined else {}),
            }
            for s in raw.sources
        },
        "failures": dict(raw.failures),
        "operating_system": (
            f"{raw.operating_system.product} {raw.operating_system.version}"
            if raw.operating_system
            else None
        ),
    }
