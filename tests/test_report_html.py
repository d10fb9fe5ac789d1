"""The HTML report is one standalone file that headless Chromium renders without a console
error, with its charts drawn (found in the screenshot by their colours)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from monitor.report.build import build_report_data
from monitor.report.charts import COVERAGE_COLOR, OPENED_COLOR, POSTURE_COLOR, RESOLVED_COLOR
from monitor.report.formats import ReportFormat
from monitor.report.model import ReportPeriod
from monitor.report.render import render_report
from monitor.report.svg import severity_colors
from monitor.store.sql import SqlStore
from tests.support.report_history import History

# Offline: only file:// is loaded; any other request would go to a dead local proxy and no
# name resolves, so nothing leaves the machine.
CHROMIUM_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-breakpad",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
)
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught", re.IGNORECASE)


@dataclass(frozen=True)
class Rendering:
    screenshot: Path
    console: list[str]


def render(page: Path, directory: Path, height: int = 4200) -> Rendering:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: run tests/install-report-test-deps.sh")
    screenshot = directory / f"{page.stem}.png"
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={directory / 'profile'}",
            f"--screenshot={screenshot}",
            f"--window-size=1200,{height}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.exists(), result.stderr[-2000:]
    return Rendering(
        screenshot, [line for line in result.stderr.splitlines() if CONSOLE_LINE.search(line)]
    )


def pixels_near(image: Image.Image, color: str, tolerance: int = 12) -> int:
    """How many pixels are within `tolerance` of `color` (#rrggbb) on every channel."""
    target = tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))
    low = [max(0, c - tolerance) for c in target]
    high = [min(255, c + tolerance) for c in target]
    bands = image.convert("RGB").split()
    masks = [
        band.point(lambda value, lo=lo, hi=hi: 255 if lo <= value <= hi else 0)
        for band, lo, hi in zip(bands, low, high, strict=True)
    ]
    combined = ImageChops.multiply(ImageChops.multiply(masks[0], masks[1]), masks[2])
    return combined.histogram()[255]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("report-html")
    store = SqlStore(f"sqlite:///{directory / 'apivigil.db'}")
    store.upgrade_schema()
    history = History.record(store, directory)
    path = directory / "report.html"
    path.write_text(render_report(history.data(), ReportFormat.HTML), encoding="utf-8")
    yield path
    history.close()


@pytest.mark.integration
def test_the_page_is_standalone_without_scripts_or_external_assets(page: Path) -> None:
    html = page.read_text()

    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r"""\s(src|href)=["']?(https?:|//)""", html)
    assert "url(" not in html
    assert "@import" not in html
    assert html.count("<svg") == 5
    assert "@media print" in html


@pytest.mark.integration
def test_chromium_renders_the_report_without_console_errors_and_draws_the_charts(
    page: Path, tmp_path: Path
) -> None:
    rendering = render(page, tmp_path)

    assert rendering.console == []
    image = Image.open(rendering.screenshot)
    assert image.size == (1200, 4200)
    chart_colors = {
        "posture line": POSTURE_COLOR,
        "coverage line": COVERAGE_COLOR,
        "opened bars": OPENED_COLOR,
        "resolved bars": RESOLVED_COLOR,
        "high bars": severity_colors()["high"],
        "medium bars": severity_colors()["medium"],
        "low bars": severity_colors()["low"],
    }
    drawn = {name: pixels_near(image, color) for name, color in chart_colors.items()}
    assert all(count > 150 for count in drawn.values()), drawn
    shutil.copy(rendering.screenshot, page.with_suffix(".png"))  # to look at when it fails


@pytest.mark.integration
def test_the_console_check_catches_a_page_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); nope();</script>")

    rendering = render(broken, tmp_path, height=300)

    assert any("boom" in line for line in rendering.console)
    assert any("Uncaught" in line for line in rendering.console)


@pytest.mark.integration
def test_an_empty_store_still_renders_a_complete_page(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'empty.db'}")
    store.upgrade_schema()
    data = build_report_data(store, ReportPeriod.ending(datetime.now(UTC), timedelta(days=30)), [])
    store.close()
    page = tmp_path / "empty.html"
    page.write_text(render_report(data, ReportFormat.HTML))

    rendering = render(page, tmp_path, height=1500)

    assert rendering.console == []
    assert "No open finding." in page.read_text()
    assert data.summary.coverage is None
    assert data.summary.posture is None  # no evidence: "no data", not a perfect score
    assert "no data" in page.read_text()


@pytest.mark.integration
def test_rule_ids_stay_on_one_line_subjects_are_short_with_the_full_value_on_hover(
    page: Path,
) -> None:
    html = page.read_text()
    findings = html.split('<section id="findings"')[1].split("</section>")[0]
    rules = re.findall(r"<code([^>]*)>([A-Z0-9-]+)</code>", findings)
    assert rules
    assert all('class="rule"' in attributes for attributes, _ in rules), rules
    assert re.search(r"code\.rule, span\.rule\s*\{[^}]*white-space:\s*nowrap", html)
    controls = html.split('<section id="controls"')[1].split("</section>")[0]
    assert '<span class="rule">INVENTORY-UNAUTHENTICATED-OPERATION</span>' in controls
    hover = re.findall(r'<td class="subject" title="([^"]*)">([^<]*)</td>', findings)
    assert hover
    for full, shown in hover:
        assert not re.search(r"[0-9a-f]{16}", shown), shown  # hashes collapsed ...
        assert len(shown) <= len(full)  # ... the full value on hover


@pytest.mark.integration
def test_audit_details_are_text_not_raw_json_and_expired_certificates_stand_apart(
    page: Path,
) -> None:
    html = page.read_text()
    audit = html.split('<section id="audit"')[1].split("</section>")[0]
    for raw_json in ('{"', "{&#34;", "{&quot;"):
        assert raw_json not in audit, audit
    assert "Certificates expiring within 30 days" in html
    assert "Certificates already expired" in html
