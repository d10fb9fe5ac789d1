"""API inventory: documented, deprecated, shadow and zombie operations, inventory changes, and
(auth_posture) whether the spec's secured operations really require credentials."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board

from dashboards.layout import Cell, Row, assemble, target_dashboard
from dashboards.panels import (
    DAY,
    TARGET,
    Query,
    age_per_target_bargauge,
    bargauge_panel,
    fixed_colours,
    organize,
    series,
    stat_panel,
    table_panel,
    target_matrix_table,
    thresholds,
    timeseries_panel,
)
from monitor.metric_names import (
    AUTH_OPERATIONS,
    BASELINE_AGE,
    INVENTORY_CHANGES,
    INVENTORY_EVICTED,
    INVENTORY_OPERATIONS,
    INVENTORY_TRAFFIC_UNRELIABLE,
    INVENTORY_UNMATCHED,
    JWKS_KEY_AGE,
    JWKS_KEYS,
)

UID = "apivigil-api-inventory"

_CHECK = 'check="api_inventory"'
_STATES = ("documented", "deprecated", "shadow", "zombie")
_STATE_COLOURS = {"documented": "blue", "deprecated": "orange", "shadow": "red", "zombie": "purple"}


def dashboard() -> board.Dashboard:
    result = target_dashboard(
        UID,
        "apivigil / API inventory",
        "Operations each API documents (OpenAPI) and those it serves without documenting "
        "(shadow) or after removing or deprecating them (zombie), and how the inventory "
        "changes: added, removed, breaking and security-relevant changes.",
        _CHECK,
    )
    return assemble(result, _panels())


_AUTH_STATES = ("not_enforced", "enforced", "skipped")
_AUTH_COLOURS = {"not_enforced": "red", "enforced": "green", "skipped": "orange"}


def _panels() -> list[Row | Cell]:
    return [*_inventory_panels(), *_authentication_panels()]


def _authentication_panels() -> list[Row | Cell]:
    """The auth_posture check's row: auth enforced where the spec says so, token keys."""
    auth = series(AUTH_OPERATIONS, TARGET)
    ages = series(JWKS_KEY_AGE, TARGET)
    return [
        Row("Authentication"),
        Cell(
            stat_panel(
                "Secured operations by auth state",
                "All selected targets. not_enforced: a secured GET/HEAD operation answered "
                "without valid credentials (AUTH-NOT-ENFORCED); skipped: not probed (other "
                "methods, no example for a path parameter, budget spent, unclear answers).",
                Query(f"sum by (state) ({auth})", "{{state}}", True),
            ).overrides(fixed_colours(_AUTH_COLOURS)),
            height=5,
            width=12,
        ),
        Cell(
            stat_panel(
                "Token signing keys by algorithm",
                "Keys in the audited JWK Sets of the selected targets, by their alg.",
                Query(f"sum by (alg) ({series(JWKS_KEYS, TARGET)})", "{{alg}}", True),
            ),
            height=5,
            width=12,
        ),
        Cell(
            target_matrix_table(
                "Auth state per target",
                "Secured operations by target and state; the run's snapshot names each one.",
                auth,
                "state",
                _AUTH_STATES,
                sort_by="not_enforced",
            ),
        ),
        Cell(
            bargauge_panel(
                "Signing key age",
                "Time since each key appeared in its JWK Set (first seen by apivigil, or its "
                "x5c certificate's not-before); past a year is JWKS-ROTATION-STALE.",
                Query(f"max by (target, kid) ({ages})", "{{target}} {{kid}}", True),
                unit="s",
            ).thresholds(thresholds("green", (300 * DAY, "orange"), (365 * DAY, "red"))),
        ),
    ]


def _inventory_panels() -> list[Row | Cell]:
    operations = series(INVENTORY_OPERATIONS, TARGET)
    changes = series(INVENTORY_CHANGES, TARGET)
    retired = series(INVENTORY_OPERATIONS, TARGET, 'state=~"shadow|zombie"')
    unreliable = series(INVENTORY_TRAFFIC_UNRELIABLE, TARGET)
    return [
        Row("Inventory"),
        Cell(
            stat_panel(
                "Operations by state",
                "All selected targets. Shadow: traffic to paths the spec does not document; "
                "zombie: traffic to removed or deprecated operations.",
                Query(f"sum by (state) ({operations})", "{{state}}", True),
            ).overrides(fixed_colours(_STATE_COLOURS)),
            height=5,
            width=24,
        ),
        Cell(
            target_matrix_table(
                "Operations per target",
                "Operations by target and state.",
                operations,
                "state",
                _STATES,
                sort_by="shadow",
            ),
        ),
        Cell(
            timeseries_panel(
                "Shadow and zombie operations",
                "Undocumented or retired operations that still get traffic, per target.",
                Query(
                    f"sum by (target, state) ({retired})",
                    "{{target}} {{state}}",
                ),
            ),
        ),
        Row("Traffic"),
        Cell(
            timeseries_panel(
                "Refused requests to undocumented paths",
                "404/405/400 ... per interval by status class: scanners and broken clients, "
                "aggregated (never a finding per path; the top templates are in the snapshot).",
                Query(
                    f"sum by (status_class) "
                    f"(increase({series(INVENTORY_UNMATCHED, TARGET)}[$__rate_interval]))",
                    "{{status_class}}",
                ),
                stacked=True,
            ),
        ),
        Cell(
            table_panel(
                "Access logs that cannot be trusted",
                "Lines lost in a rotation, a log that stopped growing, a log not in its format, "
                "or endpoint templates evicted to stay within the bound (1 = cannot be trusted).",
                Query(f"max by (target, log, reason) ({unreliable})", table=True),
                sort_by="unreliable",
                descending=True,
            ).transformations([organize({"Value": "unreliable"})]),
        ),
        Cell(
            stat_panel(
                "Endpoint templates evicted",
                "Templates dropped from the bounded traffic tally in the selected range "
                "(refused noise first; answered ones also raise INVENTORY-TRAFFIC-UNRELIABLE).",
                Query(f"sum(increase({series(INVENTORY_EVICTED, TARGET)}[$__range]))", ""),
            ),
        ),
        Row("Changes"),
        Cell(
            timeseries_panel(
                "Inventory changes",
                "Changes per interval by kind (operations added, removed, deprecated; breaking "
                "and security-relevant changes).",
                Query(f"sum by (kind) (increase({changes}[$__rate_interval]))", "{{kind}}"),
                stacked=True,
            ),
        ),
        Cell(
            table_panel(
                "Changes since monitoring began",
                "Per target and kind.",
                Query(f"sum by (target, kind) ({changes})", table=True),
                sort_by="changes",
                descending=True,
            ).transformations([organize({"Value": "changes"})]),
        ),
        Cell(
            age_per_target_bargauge(
                "Inventory baseline age",
                "Time since each target's approved inventory was accepted "
                "(`apivigil inventory accept`).",
                series(BASELINE_AGE, TARGET, _CHECK),
                orange_after=90 * DAY,
                red_after=365 * DAY,
            ),
            width=24,
        ),
    ]
