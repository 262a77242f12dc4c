"""Frame time of the viewer page while zooming, with N nuclei drawn on its canvas vs the same page with them off.

Writes a synthetic H-DAB slide, runs ``liposcope ihc`` on it, then replaces its ``nuclei.geojson`` with N points (the
writer the command uses, random positions and classes) so the page has a realistic 100k-point layer. Chromium
(the system one) zooms in and out on every frame; the median and 95th-percentile frame intervals are reported for
the layer off (baseline) and on, in the same run, with the time the page's own drawing took per frame (a
``performance.measure`` entry ``liposcope-draw``): the rest of a frame is the browser's tiles and compositing.

    python bench/viewer_points.py               # 100k points
    python bench/viewer_points.py --points 300000 --seconds 4
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from liposcope.cli import main
from liposcope.viewer import build_registry, start
from liposcope.wsi.geojson import feature_collection, point_features, write_geojson

FRAMES = """async (seconds) => {
  const canvas = document.querySelector('.openseadragon-canvas');
  const box = canvas.getBoundingClientRect();
  const times = [];
  let k = 0;
  const end = performance.now() + seconds * 1000;
  await new Promise((done) => {
    const step = (t) => {
      times.push(t);
      const deltaY = (Math.floor(k++ / 20) % 2 ? 1 : -1) * 60;
      canvas.dispatchEvent(new WheelEvent('wheel', {deltaY, clientX: box.x + box.width / 2,
        clientY: box.y + box.height / 2, bubbles: true, cancelable: true}));
      if (t < end) requestAnimationFrame(step); else done();
    };
    requestAnimationFrame(step);
  });
  return times.slice(1).map((t, i) => t - times[i]);
}"""


DRAWS = "performance.getEntriesByName('liposcope-draw').map((e) => e.duration)"


def prepare(workdir: Path, n_points: int) -> Path:
    out = workdir / "out"
    slide = workdir / "synth-ihc-3.tiff"
    if not slide.exists():
        main(["synth", str(workdir), "--ihc", "0.3", "--seed", "3", "--mpp", "0.25", "--width", "4096",
              "--height", "4096", "-q"])  # fmt: skip
    if not (out / slide.stem / "ihc.json").exists():
        main(["ihc", str(slide), "--marker", "ki67", "--out", str(out), "-q"])
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 4096, (n_points, 2))
    classes = list(rng.choice(["Negative", "Weak", "Moderate", "Strong"], n_points))
    measurements = {"DAB OD mean": rng.random(n_points)}
    write_geojson(out / slide.stem / "nuclei.geojson", feature_collection(point_features(xy, measurements, classes)))
    return out


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--workdir", type=Path, default=Path("bench/.cache/viewer"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    out = prepare(args.workdir, args.points)
    from playwright.sync_api import sync_playwright

    server = start(build_registry([out]))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{server.url}slides/synth-ihc-3")
            page.wait_for_function("window.liposcope && window.liposcope.ready", timeout=120_000)
            layers = page.evaluate("window.liposcope.layers")
            rows = {}
            for label in ("nuclei off", "nuclei on", "nuclei off (again)"):
                if page.is_checked("#layer-nuclei") != (label == "nuclei on"):
                    page.click("#layer-nuclei")
                page.evaluate("performance.clearMeasures('liposcope-draw')")
                frames = np.array(page.evaluate(FRAMES, args.seconds))
                draws = np.array(page.evaluate(DRAWS))
                rows[label] = {
                    "frames": len(frames),
                    "frame_median_ms": round(float(np.median(frames)), 1),
                    "draws": len(draws),
                    "draw_median_ms": round(float(np.median(draws)), 2),
                    "draw_p95_ms": round(float(np.percentile(draws, 95)), 2),
                }
            browser.close()
    finally:
        server.close()
    base = (rows["nuclei off"]["frame_median_ms"] + rows["nuclei off (again)"]["frame_median_ms"]) / 2
    ratio = rows["nuclei on"]["frame_median_ms"] / base
    print(json.dumps({"layers": layers, "rows": rows, "frame_median_ratio_on_vs_off": round(ratio, 2)}, indent=1))


if __name__ == "__main__":
    main_bench()
