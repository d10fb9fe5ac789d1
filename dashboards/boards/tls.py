"""TLS and certificates: grade and protocols per endpoint, days to expiry of every certificate."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import dashboard as model

from dashboards.layout import Cell, Row, assemble, target_dashboard
from dashboards.panels import (
    TARGET,
    Query,
    bargauge_panel,
    coloured_cells,
    fixed_colours,
    matrix,
    organize,
    problem_count_stat,
    series,
    table_panel,
    thresholds,
    timeseries_panel,
    transform,
    value_text,
)
from monitor.metric_names import (
    CERT_NOT_AFTER,
    CERT_NOT_BEFORE,
    TLS_CIPHER_SUITES,
    TLS_GRADE_CAPS,
    TLS_GRADE_CIPHER_SCORE,
    TLS_GRADE_INFO,
    TLS_GRADE_KEY_EXCHANGE_SCORE,
    TLS_GRADE_PROTOCOL_SCORE,
    TLS_GRADE_PROVISIONAL,
    TLS_GRADE_SCORE,
    TLS_PROFILE_COMPLIANT,
    TLS_PROTOCOL_ENABLED,
    TLS_SCAN_COMPLETE,
    MetricFamily,
)

UID = "apivigil-tls"

LEGACY_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")
_CERT_LABELS = "target, address, position, subject, issuer, serial"
_DAYS = "days left"
# Expired (below 0) and the cert_expiry thresholds: 7 days critical, 14 high, 30 medium
_EXPIRY_COLOURS = thresholds("dark-red", (0, "red"), (7, "orange"), (14, "yellow"), (30, "green"))
_GRADE_COLOURS = [
    model.ValueMap(
        options={
            grade: model.ValueMappingResult(color=colour, index=index)
            for index, (grade, colour) in enumerate(
                [
                    ("A+", "green"),
                    ("A", "green"),
                    ("A-", "green"),
                    ("B", "yellow"),
                    ("C", "orange"),
                    ("D", "red"),
                    ("E", "red"),
                    ("F", "dark-red"),
                    ("T", "dark-red"),
                    ("M", "dark-red"),
                ]
            )
        }
    )
]


def dashboard() -> board.Dashboard:
    result = target_dashboard(
        UID,
        "apivigil / TLS and certificates",
        "TLS grade, protocol versions and cipher suites per endpoint (tls_posture), and the "
        "days left on every certificate served, intermediates included (cert_expiry).",
        'check=~"tls_posture|cert_expiry"',
    )
    return assemble(result, [*_posture_panels(), *_certificate_panels()])


def _certificate_panels() -> list[Row | Cell]:
    not_after = f"max by ({_CERT_LABELS}) ({series(CERT_NOT_AFTER, TARGET)})"
    not_before = f"max by ({_CERT_LABELS}) ({series(CERT_NOT_BEFORE, TARGET)})"
    return [
        Row("Certificates"),
        Cell(
            table_panel(
                "Days to expiry of every certificate",
                "Each certificate each target served (leaf, intermediates and any root sent) "
                "and PEM files read, soonest first. Negative: expired.",
                Query(f"({not_after} - time()) / 86400", table=True),
                Query(f"(time() - {not_before}) / 86400", table=True),
                sort_by=_DAYS,
            )
            .decimals(1)
            .transformations(
                [
                    transform("merge", {}),
                    organize(
                        {"Value #A": _DAYS, "Value #B": "days since not-before"},
                        order=(
                            "Value #A",
                            "target",
                            "position",
                            "subject",
                            "issuer",
                            "serial",
                            "address",
                            "Value #B",
                        ),
                    ),
                ]
            )
            .override_by_name(
                _DAYS,
                [
                    model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
                    model.DynamicConfigValue(id_val="thresholds", value=_EXPIRY_COLOURS.build()),
                ],
            ),
            width=24,
            height=10,
        ),
        Cell(
            timeseries_panel(
                "Soonest expiry per target",
                "Days left on the certificate of each target that expires first.",
                Query(f"min by (target) (({not_after} - time()) / 86400)", "{{target}}"),
                unit="none",
            ).thresholds(_EXPIRY_COLOURS),
            width=16,
        ),
        Cell(
            problem_count_stat(
                "Certificates expiring within 30 days",
                "Certificates (any position) with less than 30 days left, expired ones included.",
                f"sum(({not_after} - time()) < bool (30 * 86400))",
                colour="orange",
            ),
            width=8,
        ),
    ]


_WHY_COLUMNS: tuple[tuple[MetricFamily, str], ...] = (
    (TLS_GRADE_PROTOCOL_SCORE, "protocol"),
    (TLS_GRADE_KEY_EXCHANGE_SCORE, "key exchange"),
    (TLS_GRADE_CIPHER_SCORE, "cipher"),
    (TLS_GRADE_CAPS, "caps"),
    (TLS_GRADE_PROVISIONAL, "last scan provisional"),
    (TLS_PROFILE_COMPLIANT, "Mozilla profile"),
)


def _why_panel() -> Any:
    queries = [
        Query(f"max by (target) ({series(family, TARGET)})", table=True)
        for family, _ in _WHY_COLUMNS
    ]
    renames = {f"Value #{chr(ord('A') + i)}": name for i, (_, name) in enumerate(_WHY_COLUMNS)}
    return (
        table_panel(
            "Why this grade",
            "The score's parts (0-100), how many caps and warnings hold the grade down (their "
            "reasons: the TLS-GRADE finding), whether the last scan was provisional (the grade "
            "shown is then the last complete one) and compliance with the Mozilla profile.",
            *queries,
        )
        .transformations(
            [
                transform("merge", {}),
                organize(renames, order=("target", *(name for _, name in _WHY_COLUMNS))),
            ]
        )
        .override_by_name(
            "last scan provisional",
            [
                model.DynamicConfigValue(
                    id_val="mappings", value=value_text(("1", "yes", "orange"), ("0", "no", "text"))
                ),
                model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
            ],
        )
        .override_by_name(
            "Mozilla profile",
            [
                model.DynamicConfigValue(
                    id_val="mappings",
                    value=value_text(("1", "compliant", "green"), ("0", "deviates", "orange")),
                ),
                model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
            ],
        )
    )


def _posture_panels() -> list[Row | Cell]:
    score = series(TLS_GRADE_SCORE, TARGET)
    grade = series(TLS_GRADE_INFO, TARGET)
    enabled = series(TLS_PROTOCOL_ENABLED, TARGET)
    legacy = series(TLS_PROTOCOL_ENABLED, TARGET, f'protocol=~"{"|".join(LEGACY_PROTOCOLS)}"')
    return [
        Row("TLS posture"),
        Cell(
            table_panel(
                "Grade per endpoint",
                "Letter grade after the SSL Labs rating guide (T: untrusted, M: name "
                "mismatch) and the score behind it.",
                Query(
                    f"max by (target, grade) ({score} * on (target) group_left (grade) {grade})",
                    table=True,
                ),
                sort_by="score",
            )
            .transformations([organize({"Value": "score"}, order=("target", "grade", "Value"))])
            .thresholds(thresholds("red", (50, "orange"), (80, "green")))
            .override_by_name(
                "grade",
                [
                    model.DynamicConfigValue(id_val="mappings", value=_GRADE_COLOURS),
                    model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
                ],
            ),
        ),
        Cell(_why_panel(), width=24, height=8),
        Cell(
            table_panel(
                "Protocols enabled",
                "Which protocol versions each endpoint accepts. Legacy versions (SSL, TLS 1.0 "
                "and 1.1) accepted show red; a blank cell could not be determined.",
                Query(f"max by (target, protocol) ({enabled})", table=True),
            )
            .transformations(
                [matrix("target", "protocol"), organize({"target\\protocol": "target"})]
            )
            .mappings(value_text(("1", "accepted", "green"), ("0", "refused", "text")))
            .override_by_regexp(
                "|".join(protocol.replace(".", "\\.") for protocol in LEGACY_PROTOCOLS),
                [
                    model.DynamicConfigValue(
                        id_val="mappings",
                        value=value_text(("1", "accepted", "red"), ("0", "refused", "green")),
                    ),
                    model.DynamicConfigValue(id_val="custom.cellOptions", value=coloured_cells()),
                ],
            ),
        ),
        Cell(
            problem_count_stat(
                "Legacy protocols accepted",
                "Endpoint and protocol pairs where SSL 2/3, TLS 1.0 or TLS 1.1 is accepted.",
                f"sum({legacy})",
            ),
            width=6,
            height=6,
        ),
        Cell(
            problem_count_stat(
                "Incomplete scans",
                "Endpoints whose last scan could not determine everything "
                "(TLS-SCAN-INCOMPLETE); the grade shown stays their last complete one.",
                f"sum(1 - {series(TLS_SCAN_COMPLETE, TARGET)})",
                colour="orange",
            ),
            width=6,
            height=6,
        ),
        Cell(
            bargauge_panel(
                "Accepted cipher suites by strength",
                "Suites accepted across all protocol versions: insecure (NULL, export, RC4, "
                "DES ...), weak (3DES, no forward secrecy, CBC), secure.",
                Query(
                    f"sum by (strength) ({series(TLS_CIPHER_SUITES, TARGET)})",
                    "{{strength}}",
                    instant=True,
                ),
            ).overrides(fixed_colours({"insecure": "red", "weak": "orange", "secure": "green"})),
            height=6,
        ),
        Cell(
            timeseries_panel(
                "Grade score over time",
                "The score behind each endpoint's grade.",
                Query(f"max by (target) ({score})", "{{target}}"),
            )
            .min(0)
            .max(100),
            width=24,
        ),
    ]
