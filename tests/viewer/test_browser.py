"""The viewer page in the system Chromium (Debian package ``chromium``) driven by Playwright: it loads, draws the
slide and every layer, toggles layers, shows measurements on click, and raises no page error.

Skips when Playwright or Chromium is missing, unless ``LIPOSCOPE_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which
installs both) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liposcope.viewer import ViewerServer
from tests.viewer.conftest import HE_ID, IHC_ID

REQUIRED = os.environ.get("LIPOSCOPE_REQUIRE_BROWSER") == "1"
if REQUIRED:
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing (pip install -e '.[dev]')")
CHROMIUM = os.environ.get("LIPOSCOPE_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not REQUIRED, reason="no system Chromium (apt-get install chromium)"
)

READY = "window.liposcope && (window.liposcope.ready || window.liposcope.error)"
# Standard deviation of the grey levels of a canvas: 0 for a blank (or uniformly filled) one.
SPREAD = """(selector) => {
  const c = document.querySelector(selector);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0, s = 0, s2 = 0, alpha = 0;
  for (let i = 0; i < d.length; i += 16) {
    const g = (d[i] + d[i + 1] + d[i + 2]) / 3;
    n++; s += g; s2 += g * g; alpha += d[i + 3];
  }
  return {std: Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2)), alpha: alpha / n};
}"""
SLIDE_CANVAS = ".openseadragon-canvas canvas:not(#overlay)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


def open_page(browser: Any, server: ViewerServer, slide_id: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(f"{server.url}slides/{slide_id}")
    page.wait_for_function(READY, timeout=90_000)
    return page, errors


def as_shown(value: float) -> str:
    """A measurement as the side panel prints it (3 decimals, or 3 significant digits below 0.01)."""
    if value != 0 and abs(value) < 0.01:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{round(value, 3):g}"


def counts(folder: Path, names: tuple[str, ...]) -> dict[str, int]:
    return {n: len(json.loads((folder / f"{n}.geojson").read_text())["features"]) for n in names}


def test_page_draws_the_slide_and_its_layers(browser: Any, server: ViewerServer, view_out: Path) -> None:
    page, errors = open_page(browser, server, HE_ID)
    state = page.evaluate("window.liposcope")
    assert state["ready"] is True, state
    expected = counts(view_out / HE_ID, ("heatmap", "mitoses"))
    assert {k: state["layers"][k] for k in expected} == expected
    assert state["layers"]["hotspots"] == 1
    slide = page.evaluate(SPREAD, SLIDE_CANVAS)
    assert slide["std"] > 5, slide  # tissue drawn, not a blank canvas
    with_heatmap = page.evaluate(SPREAD, "#overlay")
    assert with_heatmap["alpha"] > 10, with_heatmap
    page.click("#layer-heatmap")
    page.wait_for_timeout(300)
    without = page.evaluate(SPREAD, "#overlay")
    assert without["alpha"] < with_heatmap["alpha"] / 2, (with_heatmap, without)
    page.click("#layer-heatmap")
    page.wait_for_timeout(300)
    assert page.evaluate(SPREAD, "#overlay")["alpha"] == pytest.approx(with_heatmap["alpha"], rel=0.05)
    assert "DDLPS" in page.inner_text("#results") or "WDLPS" in page.inner_text("#results")
    assert "per 10 HPF" in page.inner_text("#results")
    assert page.is_visible("#scalebar")
    assert "µm" in page.inner_text("#scalebar-label") or "mm" in page.inner_text("#scalebar-label")
    assert errors == []
    page.close()


def test_click_on_a_tile_shows_its_measurements(browser: Any, server: ViewerServer, view_out: Path) -> None:
    page, errors = open_page(browser, server, HE_ID)
    first = json.loads((view_out / HE_ID / "heatmap.geojson").read_text())["features"][0]
    ring = first["geometry"]["coordinates"][0]
    cx, cy = (ring[0][0] + ring[2][0]) / 2, (ring[0][1] + ring[2][1]) / 2
    box = page.locator("#viewer").bounding_box()
    width, height = 2048, 1536  # the slide's level-0 size (conftest), fitted into the canvas at home zoom
    scale = min(box["width"] / width, box["height"] / height)
    x0 = box["x"] + (box["width"] - width * scale) / 2
    y0 = box["y"] + (box["height"] - height * scale) / 2
    page.mouse.click(x0 + cx * scale, y0 + cy * scale)
    page.wait_for_timeout(300)
    selected = page.inner_text("#selected")
    assert "heatmap" in selected
    assert "attention" in selected
    for name, value in first["properties"]["measurements"].items():
        assert f"{name}\t{as_shown(value)}" in selected, (name, value, selected)
    assert errors == []
    page.close()


def test_ihc_page_lists_nuclei_classes(browser: Any, server: ViewerServer, view_out: Path) -> None:
    page, errors = open_page(browser, server, IHC_ID)
    state = page.evaluate("window.liposcope")
    assert state["ready"] is True, state
    assert state["layers"]["nuclei"] == counts(view_out / IHC_ID, ("nuclei",))["nuclei"]
    panel = page.inner_text("#layer-list")
    assert "Negative" in panel
    assert "Weak" in panel
    assert "labelling index" in page.inner_text("#results")
    assert page.evaluate(SPREAD, "#overlay")["alpha"] > 1
    page.click("#layer-nuclei")
    page.click("#layer-hotspots")
    page.wait_for_timeout(300)
    assert page.evaluate(SPREAD, "#overlay")["alpha"] == 0
    assert errors == []
    page.close()
