"""Charts as inline SVG, drawn here so a report needs no script and no external asset."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 46
MAX_X_LABELS = 12


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    color: str
    values: Sequence[float | None]


def stacked_bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """One bar per label, the series stacked bottom-up in the given order."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    plot = _Plot(labels, top)
    parts = [plot.frame(title, _integer)]
    width = max(plot.step * 0.72, 1.0)
    for index in range(len(labels)):
        base = 0.0
        for s in series:
            value = s.values[index] or 0
            if value <= 0:
                continue
            y_top, y_bottom = plot.y(base + value), plot.y(base)
            parts.append(
                f'<rect x="{plot.x(index) - width / 2:.1f}" y="{y_top:.1f}" width="{width:.1f}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{s.color}">'
                f"<title>{escape(labels[index])} {escape(s.name)}: {value:g}</title></rect>"
            )
            base += value
    parts.append(_legend(series))
    return _svg(title, parts)


def grouped_bars(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """One bar per series side by side for each label."""
    top = nice_max(max((v or 0 for s in series for v in s.values), default=0))
    plot = _Plot(labels, top)
    parts = [plot.frame(title, _integer)]
    width = max(plot.step * 0.8 / max(len(series), 1), 1.0)
    for index in range(len(labels)):
        for number, s in enumerate(series):
            value = s.values[index] or 0
            if value <= 0:
                continue
            x = plot.x(index) - width * len(series) / 2 + number * width
            y_top = plot.y(value)
            parts.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{width:.1f}" '
                f'height="{max(plot.y(0) - y_top, 0.5):.1f}" fill="{s.color}">'
                f"<title>{escape(labels[index])} {escape(s.name)}: {value:g}</title></rect>"
            )
    parts.append(_legend(series))
    return _svg(title, parts)


def lines(
    title: str, labels: Sequence[str], series: Sequence[Series], top: float, unit: str = ""
) -> str:
    """A line per series on a fixed 0..top scale; None values break the line."""
    plot = _Plot(labels, top)
    parts = [plot.frame(title, lambda v: f"{v:g}{unit}")]
    for s in series:
        runs: list[list[tuple[float, float]]] = [[]]
        for index, value in enumerate(s.values):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((plot.x(index), plot.y(value)))
        for points in runs:
            if not points:
                continue
            if len(points) == 1:
                x, y = points[0]
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s.color}"/>')
                continue
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2.5" '
                'stroke-linejoin="round"/>'
            )
    parts.append(_legend(series))
    return _svg(title, parts)


class _Plot:
    def __init__(self, labels: Sequence[str], top: float) -> None:
        self.labels = labels
        self.top = top if top > 0 else 1.0
        self.inner_width = WIDTH - LEFT - RIGHT
        self.inner_height = HEIGHT - TOP - BOTTOM
        self.step = self.inner_width / max(len(labels), 1)

    def x(self, index: int) -> float:
        return LEFT + self.step * (index + 0.5)

    def y(self, value: float) -> float:
        return TOP + self.inner_height * (1 - min(max(value / self.top, 0.0), 1.0))

    def frame(self, title: str, tick_label: Callable[[float], str]) -> str:
        parts = [f"<title>{escape(title)}</title>"]
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
            value = self.top * fraction
            y = self.y(value)
            parts.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="#d0d4da" stroke-width="1"/>'
                f'<text x="{LEFT - 6}" y="{y + 3.5:.1f}" text-anchor="end">'
                f"{escape(tick_label(value))}</text>"
            )
        every = max(1, -(-len(self.labels) // MAX_X_LABELS))
        for index, label in enumerate(self.labels):
            if index % every == 0:
                parts.append(
                    f'<text x="{self.x(index):.1f}" y="{HEIGHT - BOTTOM + 14}" '
                    f'text-anchor="middle">{escape(label)}</text>'
                )
        return "".join(parts)


def _integer(value: float) -> str:
    return f"{value:g}"


def _legend(series: Sequence[Series]) -> str:
    parts, x = [], float(LEFT)
    for s in series:
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - 16}" width="10" height="10" fill="{s.color}"/>'
            f'<text x="{x + 14:.1f}" y="{HEIGHT - 7}">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return "".join(parts)


def _svg(title: str, parts: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="10" '
        f'fill="#333">{"".join(parts)}</svg>'
    )


def nice_max(value: float) -> float:
    """The smallest 4 x (1, 2 or 5 x 10^n) at or above `value`: four gridlines with round
    labels (at least 4)."""
    step = 1.0
    while step * 4 < value:
        for factor in (2.0, 2.5, 2.0):  # 1 -> 2 -> 5 -> 10 -> 20 ...
            step *= factor
            if step * 4 >= value:
                break
    return step * 4


def severity_colors() -> Mapping[str, str]:
    """Chart colours per severity; used nowhere else on the page (the screenshot test
    finds the charts by them)."""
    return {
        "critical": "#a3167e",
        "high": "#d7301f",
        "medium": "#f39c12",
        "low": "#2e86c1",
        "info": "#8e9aa6",
    }
