"""Panels and their queries: PromQL helpers, panel builders, colours and table transforms.

Every panel queries Prometheus through the dashboard's `datasource` variable; metric names
come from monitor/metric_names.py through `series()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from monitor.metric_names import MetricFamily

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
TARGET = 'target=~"$target"'

SEVERITY_COLOURS = {
    "critical": "dark-red",
    "high": "red",
    "medium": "orange",
    "low": "yellow",
    "info": "blue",
}
SEVERITIES = tuple(SEVERITY_COLOURS)  # worst first
DAY = 86400  # seconds


def series(family: MetricFamily, *matchers: str, sample: str | None = None) -> str:
    """A PromQL selector of `family` (or one of its samples, e.g. a histogram's _bucket)."""
    name = sample if sample is not None else family.name
    if sample is not None and sample not in family.samples:
        raise ValueError(f"{sample} is not a sample of {family.name}")
    return f"{name}{{{', '.join(matchers)}}}" if matchers else name


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of a panel. `table`: an instant query shown as a table."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


def _targets(queries: Sequence[Query]) -> list[prometheus.Dataquery]:
    built = []
    for index, query in enumerate(queries):
        target = (
            prometheus.Dataquery()
            .expr(query.expr)
            .ref_id(chr(ord("A") + index))
            .datasource(DATASOURCE)
        )
        if query.legend:
            target = target.legend_format(query.legend)
        target = target.instant() if query.instant or query.table else target.range()
        if query.table:
            target = target.format(PromQueryFormat.TABLE)
        built.append(target)
    return built


def thresholds(base: str, *steps: tuple[float, str]) -> board.ThresholdsConfig:
    """Colour `base` below the first step; each (value, colour) from its value up."""
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=value, color=colour) for value, colour in steps]
        )
    )


def value_text(*pairs: tuple[str, str, str]) -> list[model.ValueMapping]:
    """Value mappings: (value, text, colour) each."""
    return [
        model.ValueMap(
            options={
                value: model.ValueMappingResult(text=text, color=colour, index=index)
                for index, (value, text, colour) in enumerate(pairs)
            }
        )
    ]


Overrides = list[Builder[model.DashboardFieldConfigSourceOverrides]]


def fixed_colours(colours: dict[str, str]) -> Overrides:
    """A fixed colour for each series or column of that name."""
    return [
        board.DashboardFieldConfigSourceOverrides()
        .matcher(model.MatcherConfig(id_val="byName", options=name))
        .properties(
            [
                model.DynamicConfigValue(
                    id_val="color", value={"mode": "fixed", "fixedColor": colour}
                )
            ]
        )
        for name, colour in colours.items()
    ]


def severity_colours() -> Overrides:
    """Fixed colours for series named after a severity (legend `{{severity}}`)."""
    return fixed_colours(SEVERITY_COLOURS)


def transform(transform_id: str, options: dict[str, object]) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=transform_id, options=options)


def timeseries_panel(
    title: str, description: str, *queries: Query, unit: str = "short", stacked: bool = False
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries)))
        .unit(unit)
        .fill_opacity(20 if stacked else 10)
        .line_width(1)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return panel


def stat_panel(title: str, description: str, *queries: Query, unit: str = "short") -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries)))
        .unit(unit)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def bargauge_panel(
    title: str, description: str, *queries: Query, unit: str = "short"
) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries)))
        .unit(unit)
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def table_panel(
    title: str,
    description: str,
    *queries: Query,
    unit: str = "short",
    sort_by: str | None = None,
    descending: bool = False,
) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(list(_targets(queries)))
        .unit(unit)
        .filterable(True)
    )
    if sort_by is not None:
        panel = panel.sort_by(
            [common_builders.TableSortByFieldState().display_name(sort_by).desc(descending)]
        )
    return panel


def coloured_cells() -> common.TableColoredBackgroundCellOptions:
    return common.TableColoredBackgroundCellOptions(
        mode=common.TableCellBackgroundDisplayMode.BASIC
    )


def matrix(rows: str, columns: str) -> model.DataTransformerConfig:
    """One table row per `rows` label value, one column per `columns` label value."""
    return transform(
        "groupingToMatrix", {"rowField": rows, "columnField": columns, "valueField": "Value"}
    )


def organize(
    renames: dict[str, str], exclude: Sequence[str] = ("Time",), order: Sequence[str] = ()
) -> model.DataTransformerConfig:
    """Rename and hide table columns (Grafana's "organize fields" transformation)."""
    return transform(
        "organize",
        {
            "excludeByName": dict.fromkeys(exclude, True),
            "renameByName": renames,
            "indexByName": {name: index for index, name in enumerate(order)},
        },
    )


# -- panels several dashboards show, each for its own series -------------------------------------


def problem_count_stat(
    title: str, description: str, expr: str, *, colour: str = "red", legend: str = ""
) -> stat.Panel:
    """The current value of `expr`, a count of things that should not be: green while it is
    0, `colour` from 1."""
    return stat_panel(title, description, Query(expr, legend, instant=True)).thresholds(
        thresholds("green", (1, colour))
    )


def age_per_target_bargauge(
    title: str, description: str, selector: str, *, orange_after: float, red_after: float
) -> bargauge.Panel:
    """Each target's age in seconds from `selector` (its maximum): green while young, orange
    from `orange_after` seconds, red from `red_after`."""
    return bargauge_panel(
        title,
        description,
        Query(f"max by (target) ({selector})", "{{target}}", True),
        unit="s",
    ).thresholds(thresholds("green", (orange_after, "orange"), (red_after, "red")))


def target_matrix_table(
    title: str, description: str, selector: str, label: str, columns: Sequence[str], *, sort_by: str
) -> table.Panel:
    """`selector` summed per target (one row each) and `label` value (one column each, in the
    order of `columns`), the highest `sort_by` first."""
    corner = f"target\\{label}"
    return table_panel(
        title,
        description,
        Query(f"sum by (target, {label}) ({selector})", table=True),
        sort_by=sort_by,
        descending=True,
    ).transformations(
        [matrix("target", label), organize({corner: "target"}, order=(corner, *columns))]
    )
