"""Every metric family apivigil exports: one table, read by the collector (monitor/metrics.py),
the dashboards (dashboards/) and the tests that prove each dashboard query uses real metrics.

A family's `name` is the one Prometheus stores (counters end in `_total`); `samples` lists the
series names a scrape carries (a histogram's `_bucket`, `_sum` and `_count`). Observation gauges
(`apivigil_<observation name>`, see monitor.model.Observation) are listed here too, with the
labels their checks give them; the collector names them from `OBSERVATION_PREFIX` and the
observation at scrape time, and its HELP line for them is generic.

Vocabulary shared with checks, alerts and dashboards: one of the few monitor modules they
may import (the import-linter contracts in pyproject.toml); it imports no other part of
monitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

OBSERVATION_PREFIX = "apivigil_"


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricFamily:
    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    observation: str | None = None  # the Observation name behind an observation gauge
    open_labels: bool = False  # more labels than `labels` may come (target_info's own labels)

    @property
    def samples(self) -> tuple[str, ...]:
        """The series names one scrape of this family carries."""
        if self.type is MetricType.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


def _observed(name: str, labels: tuple[str, ...], help_text: str) -> MetricFamily:
    """A gauge made from the check observation `name`: labelled by target, then its labels."""
    return MetricFamily(
        f"{OBSERVATION_PREFIX}{name}", MetricType.GAUGE, ("target", *labels), help_text, name
    )


_GAUGE = MetricType.GAUGE
_CERT_LABELS = ("address", "subject", "issuer", "serial", "position")

# -- the daemon ------------------------------------------------------------------------------
BUILD_INFO = MetricFamily("apivigil_build_info", _GAUGE, ("version",), "apivigil build")
STORE_UP = MetricFamily("apivigil_store_up", _GAUGE, (), "1 when the store answered this scrape")

STORE_ROWS = MetricFamily(
    "apivigil_store_rows",
    _GAUGE,
    ("table",),
    "Rows per table, measured after each retention pass (PostgreSQL: the planner's estimate)",
)
STORE_BYTES = MetricFamily(
    "apivigil_store_bytes", _GAUGE, (), "Size of the store, measured after each retention pass"
)
RETENTION_PRUNED = MetricFamily(
    "apivigil_retention_pruned_rows_total",
    MetricType.COUNTER,
    ("table",),
    "Rows retention deleted (rolled up first where they feed the report)",
)

# -- check runs ------------------------------------------------------------------------------
CHECK_RUNS = MetricFamily(
    "apivigil_check_runs_total",
    MetricType.COUNTER,
    ("check", "target", "status"),
    "Check runs by outcome",
)
CHECK_LAST_RUN = MetricFamily(
    "apivigil_check_last_run_timestamp_seconds",
    _GAUGE,
    ("check", "target", "status"),
    "When each check last finished on each target, by outcome",
)
CHECK_UP = MetricFamily(
    "apivigil_check_up",
    _GAUGE,
    ("check", "target"),
    "1 when the latest run of the check evaluated the target",
)
CHECK_INTERVAL = MetricFamily(
    "apivigil_check_interval_seconds",
    _GAUGE,
    ("check", "target"),
    "Configured interval of each scheduled check (for coverage)",
)
CHECK_DURATION = MetricFamily(
    "apivigil_check_duration_seconds",
    MetricType.HISTOGRAM,
    ("check",),
    "Duration of check runs",
)

# -- findings and roll-ups -------------------------------------------------------------------
FINDINGS_OPEN = MetricFamily(
    "apivigil_findings_open", _GAUGE, ("check", "target", "severity"), "Open findings"
)
POSTURE_SCORE = MetricFamily(
    "apivigil_posture_score",
    _GAUGE,
    ("target",),
    "0-100: 100 minus a weight per open rule at its worst severity",
)
CONTROL_STATUS = MetricFamily(
    "apivigil_control_status",
    _GAUGE,
    ("framework", "control", "status"),
    "1 for the control's current status: failing (an open finding) or passing",
)

TARGET_INFO = MetricFamily(
    "apivigil_target_info",
    _GAUGE,
    ("target",),  # plus each target's own label names
    "1 per active target, labelled with the target's configured labels (env, team ...)",
    open_labels=True,
)

# -- notifications ---------------------------------------------------------------------------
NOTIFICATIONS_FAILED = MetricFamily(
    "apivigil_notifications_failed_total",
    MetricType.COUNTER,
    ("receiver",),
    "Notifications that failed for good (kept in the outbox)",
)
NOTIFICATIONS_DELIVERED = MetricFamily(
    "apivigil_notifications_delivered_total",
    MetricType.COUNTER,
    ("receiver",),
    "Notifications delivered (accepted by the receiver)",
)
NOTIFICATIONS_PENDING = MetricFamily(
    "apivigil_notifications_pending",
    _GAUGE,
    ("receiver",),
    "Notifications waiting in the outbox for (re)delivery",
)

# -- alerting (per process, from memory: reported while the store is down) -----------------
ALERTING_TICK_FAILURES = MetricFamily(
    "apivigil_alerting_tick_failures_total",
    MetricType.COUNTER,
    (),
    "Alert engine ticks of this process that failed (e.g. the store could not be read)",
)
ALERTING_LAST_TICK = MetricFamily(
    "apivigil_alerting_last_tick_timestamp_seconds",
    _GAUGE,
    (),
    "When this process last completed an alert engine tick (or began ticking); "
    "absent where it does not tick (a cluster follower, or no routes configured)",
)
ALERTING_ROUTES = MetricFamily(
    "apivigil_alerting_routes",
    _GAUGE,
    (),
    "Alert routes in the configuration, on every instance (only one of them ticks)",
)
ALERTING_SKIPPED = MetricFamily(
    "apivigil_alerting_skipped_total",
    MetricType.COUNTER,
    ("kind",),
    "Bad inputs alerting left out so the other alerts still flow, by kind "
    "(silence, route, maintenance_window, template), once per tick or notification",
)

# -- observations: cert_expiry ---------------------------------------------------------------
CERT_NOT_AFTER = _observed(
    "cert_not_after_timestamp_seconds", _CERT_LABELS, "Not-after of each certificate served"
)
CERT_NOT_BEFORE = _observed(
    "cert_not_before_timestamp_seconds", _CERT_LABELS, "Not-before of each certificate served"
)

# -- observations: tls_posture ---------------------------------------------------------------
TLS_GRADE_SCORE = _observed("tls_grade_score", (), "Numeric score behind the TLS grade (0-100)")
TLS_GRADE_INFO = _observed("tls_grade_info", ("grade",), "1, labelled with the TLS letter grade")
TLS_GRADE_PROVISIONAL = _observed(
    "tls_grade_provisional",
    (),
    "1 when this scan's grade is provisional (not everything determined); tls_grade_info "
    "then still reports the last complete grade",
)
TLS_GRADE_CAPS = _observed(
    "tls_grade_caps", (), "Caps and warnings that hold the reported TLS grade down"
)
TLS_GRADE_PROTOCOL_SCORE = _observed(
    "tls_grade_protocol_score", (), "Protocol component of the TLS grade score (0-100)"
)
TLS_GRADE_KEY_EXCHANGE_SCORE = _observed(
    "tls_grade_key_exchange_score", (), "Key exchange component of the TLS grade score (0-100)"
)
TLS_GRADE_CIPHER_SCORE = _observed(
    "tls_grade_cipher_score", (), "Cipher strength component of the TLS grade score (0-100)"
)
TLS_PROFILE_COMPLIANT = _observed(
    "tls_profile_compliant",
    (),
    "1 when the server meets the configured Mozilla profile, 0 when not (absent: not judged)",
)
TLS_SCAN_COMPLETE = _observed(
    "tls_scan_complete", (), "1 when every part of the TLS scan could be determined"
)
TLS_PROTOCOL_ENABLED = _observed(
    "tls_protocol_enabled",
    ("protocol",),
    "1 when the protocol version is accepted, 0 when refused (absent: undetermined)",
)
TLS_CIPHER_SUITES = _observed(
    "tls_cipher_suites", ("strength",), "Accepted cipher suites by strength"
)

# -- observations: patch_level ---------------------------------------------------------------
PATCH_VULNERABILITIES = _observed(
    "patch_vulnerabilities", ("severity",), "Known vulnerabilities in installed software"
)
PATCH_OVERDUE = _observed(
    "patch_overdue",
    ("severity",),
    "Vulnerabilities open past the patch deadline (PATCH-VULNERABLE findings marked overdue), "
    "by their severity before it was raised",
)
PATCH_PACKAGES = _observed("patch_packages", ("source",), "Packages inventoried per source")
PATCH_OLDEST_UNPATCHED_AGE = _observed(
    "patch_oldest_unpatched_age_seconds",
    (),
    "Time since a fix was published for the oldest unpatched vulnerability",
)
PATCH_ADVISORIES_AGE = _observed(
    "patch_advisories_age_seconds",
    ("source",),
    "Age of the advisory index the check used, per source it was built from",
)
PATCH_UNDETERMINED = _observed(
    "patch_undetermined",
    (),
    "Packages (per advisory) and sources the check could neither match nor rule out",
)

# -- observations: config_drift --------------------------------------------------------------
DRIFT_ITEMS = _observed(
    "drift_items", ("source",), "Keys added, removed or changed against the approved baseline"
)
BASELINE_AGE = _observed(
    "baseline_age_seconds", ("check",), "Time since the current baseline was approved"
)

# -- observations: api_inventory -------------------------------------------------------------
INVENTORY_OPERATIONS = _observed(
    "inventory_operations",
    ("state",),
    "API operations by state: documented (not deprecated), deprecated, shadow (undocumented "
    "templates the server answered 2xx/3xx, not ignored), zombie (removed or deprecated "
    "operations still called, within the traffic window)",
)
INVENTORY_UNMATCHED = _observed(
    "inventory_unmatched_requests_total",
    ("status_class",),
    "Requests to undocumented paths that prove no route (refused: 404, 405, 400 ...; or CORS "
    "preflights), since monitoring began, by status class; cumulative, exported as a gauge",
)
INVENTORY_EVICTED = _observed(
    "inventory_templates_evicted_total",
    (),
    "Endpoint templates dropped to keep the traffic tally bounded, since monitoring began",
)
INVENTORY_TRAFFIC_UNRELIABLE = _observed(
    "inventory_traffic_unreliable",
    ("log", "reason"),
    "1 when an access log's traffic cannot be trusted for the reason (rotation_gap, stale, "
    "unparseable, evicted), else 0",
)
# Cumulative since monitoring began, yet exported as a gauge (an observation): the name ends
# in _total although the type is not counter.
INVENTORY_CHANGES = _observed(
    "inventory_changes_total",
    ("kind",),
    "Inventory changes seen since monitoring began, by kind (the rule id)",
)

# -- observations: auth_posture --------------------------------------------------------------
AUTH_OPERATIONS = _observed(
    "auth_operations",
    ("state",),
    "Secured operations by state: enforced (refused without valid credentials, or only a "
    "public stub), not_enforced (answered without valid credentials), skipped (not probed: "
    "not GET/HEAD, no example for a path parameter, budget spent, no or an unclear answer)",
)
JWKS_KEY_AGE = _observed(
    "jwks_key_age_seconds",
    ("kid",),
    "Time since each JWK Set key appeared (first seen by the monitor, or its x5c not-before)",
)
JWKS_KEYS = _observed("jwks_keys", ("alg",), "Keys in the audited JWK Set by their alg")
# -- observations: http_posture --------------------------------------------------------------
HTTP_POSTURE_SCORE = _observed(
    "http_posture_score",
    ("profile",),
    "HTTP posture score per profile: observatory (the MDN HTTP Observatory's algorithm, "
    "version in the snapshot) or api (apivigil's API profile); absent for a run that could "
    "not determine it",
)
HTTP_POSTURE_GRADE_INFO = _observed(
    "http_posture_grade_info",
    ("profile", "grade", "version"),
    "1, labelled with the HTTP posture grade and the scoring version (observatory: the "
    "Observatory's algorithm version; api: apivigil's API profile version)",
)
HTTP_POSTURE_REQUESTS = _observed(
    "http_posture_requests", (), "Requests the last http_posture run sent (within its budget)"
)
HTTP_HEADER_PRESENT = _observed(
    "http_header_present",
    ("header",),
    "1 when the target URL's answer carries the security-relevant header, 0 when not",
)

FAMILIES: tuple[MetricFamily, ...] = (
    BUILD_INFO,
    STORE_UP,
    STORE_ROWS,
    STORE_BYTES,
    RETENTION_PRUNED,
    TARGET_INFO,
    CHECK_RUNS,
    CHECK_LAST_RUN,
    CHECK_UP,
    CHECK_INTERVAL,
    CHECK_DURATION,
    FINDINGS_OPEN,
    POSTURE_SCORE,
    CONTROL_STATUS,
    NOTIFICATIONS_FAILED,
    NOTIFICATIONS_DELIVERED,
    NOTIFICATIONS_PENDING,
    ALERTING_TICK_FAILURES,
    ALERTING_LAST_TICK,
    ALERTING_ROUTES,
    ALERTING_SKIPPED,
    CERT_NOT_AFTER,
    CERT_NOT_BEFORE,
    TLS_GRADE_SCORE,
    TLS_GRADE_INFO,
    TLS_GRADE_PROVISIONAL,
    TLS_GRADE_CAPS,
    TLS_GRADE_PROTOCOL_SCORE,
    TLS_GRADE_KEY_EXCHANGE_SCORE,
    TLS_GRADE_CIPHER_SCORE,
    TLS_PROFILE_COMPLIANT,
    TLS_SCAN_COMPLETE,
    TLS_PROTOCOL_ENABLED,
    TLS_CIPHER_SUITES,
    PATCH_VULNERABILITIES,
    PATCH_OVERDUE,
    PATCH_PACKAGES,
    PATCH_UNDETERMINED,
    PATCH_OLDEST_UNPATCHED_AGE,
    PATCH_ADVISORIES_AGE,
    DRIFT_ITEMS,
    BASELINE_AGE,
    INVENTORY_OPERATIONS,
    INVENTORY_CHANGES,
    INVENTORY_UNMATCHED,
    INVENTORY_EVICTED,
    INVENTORY_TRAFFIC_UNRELIABLE,
    AUTH_OPERATIONS,
    JWKS_KEY_AGE,
    JWKS_KEYS,
    HTTP_POSTURE_SCORE,
    HTTP_POSTURE_GRADE_INFO,
    HTTP_POSTURE_REQUESTS,
    HTTP_HEADER_PRESENT,
)

BY_NAME: dict[str, MetricFamily] = {family.name: family for family in FAMILIES}
SAMPLE_NAMES: dict[str, MetricFamily] = {
    sample: family for family in FAMILIES for sample in family.samples
}
OBSERVATIONS: dict[str, MetricFamily] = {
    family.observation: family for family in FAMILIES if family.observation is not None
}

# -- pushed by `apivigil scan --push-gateway` (monitor/push.py), beside the families above ------
SCAN_LAST_SUCCESS = MetricFamily(
    "apivigil_scan_last_success_timestamp_seconds",
    _GAUGE,
    (),
    "Unix time of the last `apivigil scan` of this job and instance in which every check ran",
)
PUSHED: tuple[MetricFamily, ...] = (SCAN_LAST_SUCCESS,)

# -- requested from the collector, not exported yet --------------------------------------------
# Dashboards may use these only in variable queries, never in a panel: a variable over a family
# that is not there yet just offers "All". Move a family into FAMILIES once the collector
# exports it (the dashboards' end-to-end test fails on any scraped family missing there).
REQUESTED: tuple[MetricFamily, ...] = ()
