"""What every dashboard shares besides its panels: defaults, links, variables, annotations,
and the grid.

`assemble` gives each panel a unique id and a place on the 24-column grid (left to right, a
new line when a panel does not fit, rows across the whole width), so no two panels overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import dashboard as model

from dashboards.panels import DATASOURCE, TARGET, series
from monitor.metric_names import BASELINE_AGE, FINDINGS_OPEN, POSTURE_SCORE, TARGET_INFO

GRID_WIDTH = 24
GRAFANA = model.DataSourceRef(type_val="grafana", uid="-- Grafana --")

# -- dashboards, variables and annotations -----------------------------------------------------

TAG = "apivigil"


def new_dashboard(
    uid: str,
    title: str,
    description: str,
    *,
    variables: Sequence[Builder[model.VariableModel]] = (),
    annotations: Sequence[Builder[model.AnnotationQuery]] = (),
) -> board.Dashboard:
    """A dashboard with apivigil's defaults, links to the other apivigil dashboards, and these
    variables and annotations (in this order)."""
    dashboard = (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .editable()
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(
            board.DashboardLink("apivigil")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for variable in variables:
        dashboard = dashboard.with_variable(variable)
    for annotation in annotations:
        dashboard = dashboard.annotation(annotation)
    return dashboard


def target_dashboard(
    uid: str, title: str, description: str, *finding_matchers: str
) -> board.Dashboard:
    """A dashboard of the selected targets: the target variables (`target_variables`) and the
    finding annotations, limited to the findings `finding_matchers` select (e.g. one check's)."""
    return new_dashboard(
        uid,
        title,
        description,
        variables=target_variables(),
        annotations=finding_annotations(*finding_matchers),
    )


def label_dashboard(
    uid: str,
    title: str,
    description: str,
    variable: board.QueryVariable,
    *annotations: board.AnnotationQuery,
) -> board.Dashboard:
    """A dashboard that selects by one label (`variable`, e.g. framework) instead of by
    target: the datasource variable and `variable`, Grafana's own annotations and
    `annotations`."""
    return new_dashboard(
        uid,
        title,
        description,
        variables=[datasource_variable(), variable],
        annotations=[builtin_annotation(), *annotations],
    )


def datasource_variable() -> board.DatasourceVariable:
    return board.DatasourceVariable("datasource").label("Data source").type("prometheus")


def label_variable(name: str, label: str, query: str, *, regex: str = "") -> board.QueryVariable:
    """A multi-value variable from a Prometheus query, "All" meaning any value (`.*`)."""
    variable = (
        board.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
    if regex:
        variable = variable.regex(regex)
    return variable


def target_variables() -> list[board.QueryVariable | board.DatasourceVariable]:
    """datasource, env, team and target: the targets offered are those whose labels match.

    env and team come from `apivigil_target_info` (one series per target with its configured
    labels). The target query keeps every target the daemon reports and drops only those
    whose labels do not match, so it also works while no target_info series exist.
    """
    chosen = f'{TARGET_INFO.name}{{env=~"$env", team=~"$team"}}'
    others = f"({TARGET_INFO.name} unless {chosen})"
    targets = f"group by (target) ({POSTURE_SCORE.name}) unless on (target) {others}"
    return [
        datasource_variable(),
        label_variable("env", "Environment", f"label_values({TARGET_INFO.name}, env)"),
        label_variable("team", "Team", f"label_values({TARGET_INFO.name}, team)"),
        label_variable("target", "Target", f"query_result({targets})", regex='/target="([^"]+)"/'),
    ]


def finding_annotations(*matchers: str) -> list[board.AnnotationQuery]:
    """Finding transitions and baseline approvals (from the metrics), and the notifications
    apivigil's grafana receiver stores (tag `apivigil`)."""
    findings = series(FINDINGS_OPEN, TARGET, *matchers)
    baselines = series(BASELINE_AGE, TARGET)
    return [
        builtin_annotation(),
        prometheus_annotation(
            "Finding transitions",
            f"sum by (check, target, severity) (changes({findings}[$__rate_interval])) > 0",
            "orange",
        ),
        prometheus_annotation(
            "Baseline approvals",
            f"sum by (check, target) (resets({baselines}[$__rate_interval])) > 0",
            "green",
        ),
        notification_annotation(),
    ]


def notification_annotation() -> board.AnnotationQuery:
    """The notifications apivigil's grafana receiver stores in Grafana (tag `apivigil`)."""
    return tagged_annotation("apivigil notifications", [TAG], "purple")


def builtin_annotation() -> board.AnnotationQuery:
    """Grafana's own annotations and alerts, which every dashboard shows by default."""
    return (
        board.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(GRAFANA)
        .built_in(1)
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
    )


def prometheus_annotation(name: str, expr: str, colour: str) -> board.AnnotationQuery:
    """Marks every step where `expr` has a value (Grafana runs it as a range query)."""
    return (
        board.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color(colour)
        .expr(expr)
    )


def tagged_annotation(name: str, tags: Sequence[str], colour: str) -> board.AnnotationQuery:
    """Annotations stored in Grafana with these tags (e.g. by apivigil's grafana receiver)."""
    return (
        board.AnnotationQuery()
        .name(name)
        .datasource(GRAFANA)
        .enable(True)
        .icon_color(colour)
        .target(board.AnnotationTarget().type("tags").tags(list(tags)).match_any(False).limit(100))
    )


# -- the grid ----------------------------------------------------------------------------------


class PanelBuilder(Protocol):
    def id(self, id_val: int) -> Self: ...

    def grid_pos(self, grid_pos: model.GridPos) -> Self: ...

    def build(self) -> model.Panel: ...


class _Placed(Builder[model.Panel]):
    """A panel already built and placed on the grid."""

    def __init__(self, panel: model.Panel) -> None:
        self._panel = panel

    def build(self) -> model.Panel:
        return self._panel


@dataclass(frozen=True, slots=True)
class Row:
    title: str


@dataclass(frozen=True, slots=True)
class Cell:
    panel: PanelBuilder
    width: int = 12
    height: int = 8


def assemble(dashboard: board.Dashboard, items: Sequence[Row | Cell]) -> board.Dashboard:
    """Add `items` in order: ids from 1, positions flowing left to right, top to bottom."""
    x = y = line_height = 0
    for panel_id, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y, x, line_height = y + line_height, 0, 0
            position = model.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)
            dashboard = dashboard.with_row(board.Row(item.title).id(panel_id).grid_pos(position))
            y += 1
            continue
        if not 0 < item.width <= GRID_WIDTH:
            raise ValueError(f"panel width {item.width} is not within 1-{GRID_WIDTH}")
        if x + item.width > GRID_WIDTH:
            y, x, line_height = y + line_height, 0, 0
        position = model.GridPos(h=item.height, w=item.width, x=x, y=y)
        placed = item.panel.id(panel_id).grid_pos(position).build()
        dashboard = dashboard.with_panel(_Placed(placed))
        x += item.width
        line_height = max(line_height, item.height)
    return dashboard
