"""Tile read throughput and `liposcope tile` memory on synthetic 40x JPEG-tiled slides.

Measures, in one run (see bench/README.md):
  (a) naive: one ``openslide.OpenSlide.read_region`` of the 448-px level-0 region per tile + resize,
  (b) liposcope: ``TileReader`` over the tissue grid (blocks of tiles, direct JPEG decode),
  (c) decode limit: libjpeg-turbo (imagecodecs) decoding each file tile under the grid once;
then (b) through ``DataLoader(TileBlockDataset, num_workers=k)``, and the peak RSS of
``liposcope tile`` on a small vs a large slide.

Usage:
    python bench/tiling.py            # full run (generates and caches slides under bench/.cache)
    python bench/tiling.py --quick    # about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
import openslide
import tifffile
import torch
from torch.utils.data import DataLoader

from liposcope.errors import NoTissueError
from liposcope.wsi import Slide, TileBlockDataset, TileGrid, TileReader, TileSpec, build_grid, detect_tissue

SLIDE_MPP, TILE_MPP, TILE_PX = 0.25, 0.5, 224
RSS_HELPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def one_thread() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _worker_init(_: int) -> None:
    one_thread()


def synthetic_slide(workdir: Path, size: int) -> Path:
    """A cached ``size`` x ``size`` synthetic DDLPS slide at 0.25 µm/px (generic tiled JPEG TIFF)."""
    from liposcope.synth import write_slide

    path = workdir / f"ddlps_{size}px_mpp{SLIDE_MPP}.tiff"
    if not path.is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        write_slide(path, label="DDLPS", seed=0, width_px=size, height_px=size, mpp=SLIDE_MPP)
        print(f"  wrote {path} in {time.perf_counter() - t0:.0f} s")
    return path


def tissue_grid(slide: Slide, max_tiles: int) -> TileGrid:
    """The tissue grid of 224-px tiles at 0.5 µm/px, cut to its first ``max_tiles`` tiles."""
    spec = TileSpec(TILE_MPP, TILE_PX, 0, 0.5)
    try:
        grid = build_grid(slide, detect_tissue(slide)[0], spec)
    except NoTissueError:  # fall back to every grid position
        size0, (width, height) = spec.size_level0(slide.mpp), slide.dimensions
        xs, ys = np.arange(0, width - size0 + 1, size0), np.arange(0, height - size0 + 1, size0)
        coords = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2).astype(np.int64)
        grid = TileGrid(coords, np.ones(len(coords)), spec, size0, slide.mpp, "bench", slide.slide_id, str(slide.path))
    return subset(grid, np.arange(min(max_tiles, len(grid))))


def subset(grid: TileGrid, indices: np.ndarray) -> TileGrid:
    return replace(grid, coords_level0=grid.coords_level0[indices], tissue_fraction=grid.tissue_fraction[indices])


def best_times(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best wall time of each function over ``rounds`` interleaved rounds (fair under varying load)."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def naive(path: Path, grid: TileGrid) -> list[np.ndarray]:
    """(a): one openslide read per tile, resized to the tile size."""
    side = grid.tile_size_level0
    with openslide.OpenSlide(str(path)) as osr:
        return [
            cv2.resize(
                np.asarray(osr.read_region((int(x), int(y)), 0, (side, side)))[..., :3],
                (TILE_PX, TILE_PX),
                interpolation=cv2.INTER_AREA,
            )
            for x, y in grid.coords_level0
        ]


def liposcope_blocks(slide: Slide, grid: TileGrid) -> int:
    """(b): every tile through TileReader; returns the number of tiles."""
    return sum(len(tiles) for _, tiles in TileReader(slide, grid))


def decode_limit_inputs(path: Path, grid: TileGrid) -> tuple[list[bytes], bytes | None]:
    """The compressed level-0 file tiles covering the grid's tiles, each once."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        tw, th = page.tilewidth, page.tilelength
        across = -(-page.imagewidth // tw)
        wanted: set[int] = set()
        for x, y in grid.coords_level0:
            x1, y1 = x + grid.tile_size_level0 - 1, y + grid.tile_size_level0 - 1
            for ty in range(y // th, y1 // th + 1):
                wanted.update(ty * across + tx for tx in range(x // tw, x1 // tw + 1))
        fh = tif.filehandle
        chunks = []
        for index in sorted(wanted):
            fh.seek(page.dataoffsets[index])
            chunks.append(fh.read(page.databytecounts[index]))
        return chunks, page.jpegtables


def decode_all(chunks: list[bytes], tables: bytes | None) -> None:
    """(c): decode every file tile once with libjpeg-turbo."""
    for data in chunks:
        imagecodecs.jpeg8_decode(data, tables=tables)


def loader_pass(path: Path, grid: TileGrid, workers: int) -> tuple[float, float]:
    """Tiles/s of one pass over ``TileBlockDataset`` with ``workers`` DataLoader workers.

    Returns:
        The rate over the whole pass (worker start-up included) and after the first block arrived.
    """
    loader = DataLoader(
        TileBlockDataset(str(path), grid), batch_size=None, num_workers=workers, worker_init_fn=_worker_init
    )
    t0 = time.perf_counter()
    count, first, t_first = 0, 0, t0
    for indices, _ in loader:
        if count == 0:
            first, t_first = len(indices), time.perf_counter()
        count += len(indices)
    t_end = time.perf_counter()
    if count != len(grid):
        raise RuntimeError(f"loader gave {count} tiles, grid has {len(grid)}")
    return count / (t_end - t0), (count - first) / max(t_end - t_first, 1e-9)


def peak_rss_tile(path: Path) -> tuple[int, float]:
    """Peak RSS (MiB) and seconds of ``liposcope tile`` on ``path``, in a fresh process."""
    exe = Path(sys.executable).with_name("liposcope")
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", RSS_HELPER, str(exe), "tile", str(path), "--out", out]
        t0 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - t0
    rc, kib = (int(v) for v in result.stdout.split())
    if rc != 0:
        raise RuntimeError(f"liposcope tile {path} exited with {rc}")
    return kib // 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(__file__).parent / ".cache")
    parser.add_argument("--quick", action="store_true", help="small slides: about a minute")
    parser.add_argument("--size", type=int, help="throughput slide side in px (default 20000, quick 10000)")
    parser.add_argument("--max-tiles", type=int, help="tiles read per measurement (default 2000, quick 400)")
    parser.add_argument(
        "--rss-sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="default 10000 50000 (quick 5000 15000)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of (a), (b), (c); best counts")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    size = args.size or (10000 if args.quick else 20000)
    max_tiles = args.max_tiles or (400 if args.quick else 2000)
    rss_sizes = args.rss_sizes or ((5000, 15000) if args.quick else (10000, 50000))
    one_thread()
    results: dict[str, object] = {"cpu_count": os.cpu_count(), "openslide": openslide.__library_version__}

    print(f"slide {size}x{size} px at {SLIDE_MPP} µm/px; tiles {TILE_PX} px at {TILE_MPP} µm/px")
    path = synthetic_slide(args.workdir, size)
    with Slide(path) as slide:
        grid = tissue_grid(slide, max_tiles)
        n = len(grid)
        fast = slide._fast is not None and slide._fast.serves(0)
        print(f"  {n} tiles (448-px level-0 regions); direct JPEG path active: {fast}")
        indices, ours = next(iter(TileReader(slide, grid)))
        ref = naive(path, subset(grid, indices))
        diff = max(float(np.abs(ours[k].astype(int) - ref[k]).mean()) for k in range(len(indices)))
        chunks, tables = decode_limit_inputs(path, grid)
        fns: dict[str, Callable[[], object]] = {
            "a_naive_openslide": lambda: naive(path, grid),
            "b_liposcope": lambda: liposcope_blocks(slide, grid),
            "c_decode_limit": lambda: decode_all(chunks, tables),
        }
        rates = {name: n / seconds for name, seconds in best_times(fns, args.repeat).items()}
    print("one core (tiles/s):")
    for name, rate in rates.items():
        print(f"  {name:18s} {rate:8.1f}   x{rate / rates['a_naive_openslide']:.2f} vs (a)")
    print(f"  (c) decodes {len(chunks)} file tiles; (a) vs (b) tile mean abs diff ≤ {diff:.3f}")
    results.update(slide_px=size, tiles=n, file_tiles=len(chunks), rates=rates, ab_max_mean_abs_diff=diff)

    scaling = {k: {"with_startup": 0.0, "steady": 0.0} for k in args.workers}
    for _ in range(args.repeat):  # interleaved rounds; the best pass of each k counts
        for k in args.workers:
            total, steady = loader_pass(path, grid, k)
            scaling[k] = {
                "with_startup": max(total, scaling[k]["with_startup"]),
                "steady": max(steady, scaling[k]["steady"]),
            }
    print("(b) through DataLoader(TileBlockDataset, batch_size=None, num_workers=k) (tiles/s):")
    base = scaling[args.workers[0]]["steady"]
    for k, by_k in scaling.items():
        print(
            f"  workers={k}: {by_k['with_startup']:8.1f} incl. start-up, {by_k['steady']:8.1f} steady   "
            f"x{by_k['steady'] / base:.2f} (steady)"
        )
    results["loader_tiles_per_s"] = scaling

    if not args.skip_rss:
        print("peak RSS of `liposcope tile`:")
        rss = {}
        for side in rss_sizes:
            mib, seconds = peak_rss_tile(synthetic_slide(args.workdir, side))
            rss[side] = mib
            print(f"  {side}x{side} px: {mib} MiB ({seconds:.0f} s)")
        small, large = rss_sizes
        ratio = rss[large] / rss[small]
        print(f"  ratio {large} / {small}: {ratio:.2f} (goal ≤ 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
        results.update(rss_mib=rss, rss_ratio=ratio)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
