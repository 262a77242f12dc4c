"""HTTP routes of `liposcope view`: tiles equal openslide's Deep Zoom tiles, layers equal the files, nothing else."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import openslide
import pytest
from PIL import Image

from liposcope.errors import LiposcopeError
from liposcope.viewer import ViewerServer, build_registry
from liposcope.viewer.tiles import deep_zoom
from tests.viewer.conftest import HE_ID, IHC_ID


def get(server: ViewerServer, path: str, method: str = "GET", host: str | None = None) -> tuple[int, bytes, str]:
    """One request with ``path`` sent exactly as written (no client-side normalisation)."""
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Host": host} if host else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("Content-Type") or ""
    finally:
        conn.close()


def get_json(server: ViewerServer, path: str) -> object:
    status, body, content_type = get(server, path)
    assert status == 200, path
    assert "json" in content_type
    return json.loads(body)


def test_slides_are_found_through_the_provenance_of_their_outputs(server: ViewerServer, view_out: Path) -> None:
    slides = {s["slide_id"]: s for s in get_json(server, "/api/slides")}  # type: ignore[union-attr]
    assert set(slides) == {HE_ID, IHC_ID}
    prediction = json.loads((view_out / HE_ID / "prediction.json").read_text())
    assert slides[HE_ID]["slide_path"] == prediction["provenance"]["slide_path"]
    assert slides[HE_ID]["mpp"] == pytest.approx(0.25)
    assert set(slides[HE_ID]["layers"]) == {"heatmap", "mitoses", "hotspots", "tissue"}
    assert set(slides[IHC_ID]["layers"]) == {"nuclei", "hotspots"}
    assert get_json(server, f"/api/slides/{HE_ID}/layers") == sorted(slides[HE_ID]["layers"])


def test_dzi_and_tiles_equal_openslide_deep_zoom(server: ViewerServer, view_out: Path) -> None:
    path = json.loads((view_out / HE_ID / "mitoses.json").read_text())["provenance"]["slide"]["slide_path"]
    with openslide.open_slide(path) as slide:
        dz = deep_zoom(slide)
        status, body, _ = get(server, f"/slides/{HE_ID}.dzi")
        assert status == 200
        assert body.decode() == dz.get_dzi("jpeg")
        top = dz.level_count - 1
        cols, rows = dz.level_tiles[top]
        addresses = [(top, 0, 0), (top, cols - 1, rows - 1), (top, cols // 2, 1), (top - 3, 0, 0), (0, 0, 0)]
        for level, col, row in addresses:
            expected = np.asarray(dz.get_tile(level, (col, row)).convert("RGB"))
            status, png, content_type = get(server, f"/slides/{HE_ID}_files/{level}/{col}_{row}.png")
            assert (status, content_type) == (200, "image/png")
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), expected)
            status, jpeg, content_type = get(server, f"/slides/{HE_ID}_files/{level}/{col}_{row}.jpeg")
            assert (status, content_type) == (200, "image/jpeg")
            decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float64)
            assert decoded.shape == expected.shape
            assert np.abs(decoded - expected).mean() < 2.5  # JPEG is lossy; a wrong tile differs by tens
        for bad in [(top + 1, 0, 0), (top, cols, 0), (top, 0, rows), (top, -1, 0)]:
            assert get(server, f"/slides/{HE_ID}_files/{bad[0]}/{bad[1]}_{bad[2]}.jpeg")[0] == 404
    for odd in ["/0/00_0.jpeg", "/0/0_0.gif", "/0/0_0.JPEG", "/0/0_0.jpeg/", "/x/0_0.jpeg"]:
        assert get(server, f"/slides/{HE_ID}_files{odd}")[0] == 404, odd


def test_layers_are_the_files_the_commands_wrote(server: ViewerServer, view_out: Path) -> None:
    for slide_id, names in [(HE_ID, ("heatmap", "mitoses")), (IHC_ID, ("nuclei",))]:
        for name in names:
            status, body, content_type = get(server, f"/api/slides/{slide_id}/layers/{name}.geojson")
            assert (status, content_type) == (200, "application/geo+json")
            assert body == (view_out / slide_id / f"{name}.geojson").read_bytes()
    counts = {n: len(json.loads((view_out / HE_ID / f"{n}.geojson").read_text())["features"]) for n in ("heatmap",)}
    assert counts["heatmap"] == json.loads((view_out / HE_ID / "prediction.json").read_text())["tiles_analysed"]


def test_hotspot_and_tissue_layers_come_from_the_results(server: ViewerServer, view_out: Path) -> None:
    hotspots = get_json(server, f"/api/slides/{IHC_ID}/layers/hotspots.geojson")["features"]  # type: ignore[index]
    box = json.loads((view_out / IHC_ID / "ihc.json").read_text())["hotspot"]["box_level0"]
    assert len(hotspots) == 1
    ring = np.array(hotspots[0]["geometry"]["coordinates"][0])
    assert ring.min(axis=0) == pytest.approx(box[:2])
    assert ring.max(axis=0) == pytest.approx([box[0] + box[2], box[1] + box[3]])
    assert hotspots[0]["properties"]["measurements"]["positive"] > 0
    tissue = get_json(server, f"/api/slides/{HE_ID}/layers/tissue.geojson")["features"]  # type: ignore[index]
    with h5py.File(view_out / HE_ID / "tiles.h5") as f:
        coords = np.asarray(f["coords"])
    corners = np.array([f["geometry"]["coordinates"][0][0] for f in tissue])
    assert np.array_equal(corners, coords)


def test_results_and_page(server: ViewerServer, view_out: Path) -> None:
    results = get_json(server, f"/api/slides/{HE_ID}/results")
    assert results == {n: json.loads((view_out / HE_ID / f"{n}.json").read_text()) for n in ("prediction", "mitoses")}
    status, page, content_type = get(server, f"/slides/{HE_ID}")
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert b"/static/openseadragon/openseadragon.min.js" in page
    status, osd, _ = get(server, "/static/openseadragon/openseadragon.min.js")
    assert status == 200
    assert osd.startswith(b"//! openseadragon")
    status, licence, _ = get(server, "/static/openseadragon/LICENSE.txt")
    assert status == 200
    assert b"OpenSeadragon contributors" in licence
    assert b"api/slides" in get(server, "/")[1] + get(server, "/static/index.js")[1]


BAD_PATHS = [
    "/slides/../../../../etc/passwd",
    "/slides/%2e%2e/%2e%2e/etc/passwd",
    "/static/../registry.py",
    "/static/%2e%2e/registry.py",
    "/static/..%2fregistry.py",
    "/static/openseadragon/openseadragon.min.js.map",
    f"/api/slides/{HE_ID}/layers/..%2f..%2f{HE_ID}%2fprediction.geojson",
    f"/api/slides/{HE_ID}/layers/%252e%252e.geojson",
    f"/api/slides/{HE_ID}/layers/prediction.json",
    f"/api/slides/{HE_ID}/layers/unknown.geojson",
    f"/api/slides/{HE_ID}%00/layers",
    f"/api/slides/{HE_ID}%5c..%5clayers",
    "/api/slides/%ff%fe/layers",
    "/api/slides/no-such-slide/layers",
    "/slides/no-such-slide.dzi",
    "/slides/no-such-slide",
    f"/slides/{HE_ID}/../{IHC_ID}",
    f"/slides/./{HE_ID}",
    "//etc/passwd",
    "/etc/passwd",
    "relative",
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_traversal_unknown_ids_and_odd_encodings_are_404(server: ViewerServer, path: str) -> None:
    status, body, _ = get(server, path)
    assert status == 404
    assert b"root:" not in body


def test_no_writes_and_no_foreign_hosts(server: ViewerServer, view_out: Path) -> None:
    def digest() -> str:
        return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(view_out.rglob("*")) if p.is_file())).hexdigest()

    before = digest()
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert get(server, f"/api/slides/{HE_ID}/layers/heatmap.geojson", method)[0] == 405
    assert digest() == before
    assert get(server, "/api/slides", host="attacker.example")[0] == 404  # DNS rebinding
    assert get(server, "/api/slides", host=f"localhost:{server.server_address[1]}")[0] == 200
    assert server.server_address[0] == "127.0.0.1"


def test_registry_refuses_nothing_to_view(tmp_path: Path) -> None:
    with pytest.raises(LiposcopeError, match="no slides found"):
        build_registry([tmp_path])
    with pytest.raises(LiposcopeError, match="no such file"):
        build_registry([tmp_path / "missing"])


def test_registry_takes_slide_files_and_skips_missing_slides(view_out: Path, tmp_path: Path) -> None:
    slide = Path(json.loads((view_out / IHC_ID / "ihc.json").read_text())["provenance"]["slide"]["slide_path"])
    entry = build_registry([slide])[IHC_ID]
    assert entry.layers == {}
    assert entry.mpp == pytest.approx(0.25)
    both = build_registry([slide, view_out])  # the slide and its outputs: one entry, with the layers
    assert set(both[IHC_ID].layers) == {"nuclei", "hotspots"}
    moved = tmp_path / "out" / "gone"
    moved.mkdir(parents=True)
    data = json.loads((view_out / IHC_ID / "ihc.json").read_text())
    data["provenance"]["slide"]["slide_path"] = str(tmp_path / "nowhere.tiff")
    (moved / "ihc.json").write_text(json.dumps(data))
    (moved / "nuclei.geojson").write_bytes((view_out / IHC_ID / "nuclei.geojson").read_bytes())
    assert set(build_registry([tmp_path / "out", view_out])) == {HE_ID, IHC_ID}


def test_view_command_serves_on_loopback_and_says_so(view_out: Path) -> None:
    code = "import sys; from liposcope.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", code, "view", str(view_out), "--port", "0", "--no-browser"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first, second = proc.stdout.readline(), proc.stdout.readline()
        assert "2 slide(s) at http://127.0.0.1:" in first
        assert "bound to 127.0.0.1 only" in second
        assert "not from the network" in second
        port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/slides")
        assert len(json.loads(conn.getresponse().read())) == 2
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_viewer_does_not_import_torch(view_out: Path) -> None:
    code = (
        "import sys, urllib.request; from liposcope.viewer import build_registry, start; "
        f"s = start(build_registry([{str(view_out)!r}])); "
        "urllib.request.urlopen(s.url + 'slides/" + HE_ID + "_files/0/0_0.jpeg').read(); s.close(); "
        "print('torch' in sys.modules)"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "False", time.monotonic() - started


def test_reports_link_to_the_viewer(server: ViewerServer, view_out: Path) -> None:
    for slide_id in (HE_ID, IHC_ID):
        html = (view_out / slide_id / "report.html").read_text()
        assert f"liposcope view {view_out.resolve()}" in html
        assert f'href="http://127.0.0.1:8000/slides/{slide_id}"' in html
        assert get(server, f"/slides/{slide_id}")[0] == 200  # the page the link names exists
