"""Fault suite: every crafted bad input gives exit 2, one line on stderr, no traceback, nothing complete in OUT.

Inputs are made here from a small generated slide (no binary fixtures). Each case runs the real CLI entry
point; the disk-full cases with a file-size limit run as separate ``liposcope`` processes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from liposcope.cli import main
from liposcope.wsi.jpegtiff import CHECKED_TILES

DEMO_MODEL = Path(__file__).resolve().parents[1] / "inference" / "demo_model"
#: Files whose presence makes a rerun skip the slide.
COMPLETE = ("tiles.h5", "prediction.json", "ihc.json", "mitoses.json")
FEATURES = ["--backbone", "mobilenetv3_small_050", "--weights", "random", "--tile-size", "128"]


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated H&E slide (pyramidal JPEG TIFF, 0.5 µm/px)."""
    from liposcope.synth import write_slide

    path = tmp_path_factory.mktemp("faults") / "case.tiff"
    write_slide(path, label="DDLPS", seed=3, width_px=1600, height_px=1200, mpp=0.5)
    return path


def process(argv: list[str], fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    """``liposcope ARGV`` as its own process (warnings reach stderr as they would for a user)."""

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    code = "import sys; from liposcope.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=180,
        check=False,
        env={**os.environ, "CI": "true"},
    )


def cli(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in this process; library warnings print to stderr as they would in a user's process."""
    capfd.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = _to_stderr
        code = main(argv)
    return code, capfd.readouterr().err


def _to_stderr(message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: object) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))


def assert_refused(code: int, err: str, out: Path, *words: str) -> None:
    """Exit 2, at most two stderr lines (the error last), no traceback, no output a rerun takes as complete."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert 1 <= len(lines) <= 2, err
    assert lines[-1].startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[-1], err
    assert not incomplete_outputs(out)


def incomplete_outputs(out: Path) -> list[Path]:
    """Anything in ``out`` that a rerun would take as finished, and leftover temporaries."""
    if not out.exists():
        return []
    return [
        p for p in out.rglob("*") if p.name in COMPLETE or p.suffix == ".h5" or ".tmp-" in p.name or p.name == "tiles"
    ]


def flip_tile(path: Path, index: int, page: int = 0) -> None:
    """Flip a few bytes in the middle of one JPEG tile's entropy-coded data."""
    with tifffile.TiffFile(path) as tif:
        offset, count = tif.pages[page].dataoffsets[index], tif.pages[page].databytecounts[index]
    data = bytearray(path.read_bytes())
    for k in range(5):
        data[offset + count // 2 + 7 * k] ^= 0x5A
    path.write_bytes(bytes(data))


@pytest.fixture
def flipped(slide: Path, tmp_path: Path) -> Path:
    path = tmp_path / "flipped.tiff"
    shutil.copy(slide, path)
    with tifffile.TiffFile(path) as tif:
        n = len(tif.pages[0].dataoffsets)
    checked = set(np.linspace(0, n - 1, CHECKED_TILES).round().astype(int).tolist())
    for index in sorted(set(range(1, n, 2)) - checked):  # tiles the open-time check does not compare
        flip_tile(path, index)
    return path


# -- corrupt pixels ------------------------------------------------------------------------------------
def test_corrupt_jpeg_tile_is_an_error_not_grey_pixels(
    flipped: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, err = cli(["tile", str(flipped), "--out", str(out), "--save-images", "--tile-size", "128"], capfd)
    assert_refused(code, err, out, "corrupt JPEG data in tile", "re-copy or re-export the slide")


def test_worker_error_is_the_same_one_line(flipped: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "feats"
    lines = []
    for workers in ("0", "2"):
        code, err = cli(["features", str(flipped), "--out", str(out), *FEATURES, "--workers", workers], capfd)
        assert_refused(code, err, out, "corrupt JPEG data in tile")
        lines.append(err.strip().splitlines()[-1])
    assert lines[0] == lines[1]


# -- batches -------------------------------------------------------------------------------------------
def test_slide_id_collision_is_refused_up_front(slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = shutil.copy(slide, tmp_path / "a" / "x.tiff"), shutil.copy(slide, tmp_path / "b" / "x.tiff")
    out = tmp_path / "out"
    code, err = cli(["tile", str(first), str(second), "--out", str(out)], capfd)
    assert_refused(code, err, out, str(first), str(second), "same slide id")
    assert not out.exists() or not any(out.iterdir())


def test_stale_temporaries_are_removed_at_the_next_run(slide: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "case").mkdir(parents=True)
    dead = 2**22 + 12345  # above the kernel's pid limit: never running
    stale = [out / f".case.h5.tmp-{dead}", out / "case" / f".tiles.h5.tmp-{dead}", out / "case" / f".tiles.tmp-{dead}"]
    stale[0].write_bytes(b"x" * 1000)
    stale[1].write_bytes(b"x" * 1000)
    stale[2].mkdir()
    live = out / f".other.h5.tmp-{os.getpid()}"
    live.write_bytes(b"")
    assert main(["tile", str(slide), "--out", str(out), "--tile-size", "128", "-q"]) == 0
    assert not any(p.exists() for p in stale)
    assert live.exists()  # a running process's temporary is left alone


# -- model cards -----------------------------------------------------------------------------------------
CARD_FAULTS = {
    "temperature 0": (lambda c: c["calibration"].update(temperature=0), "temperature"),
    "temperature NaN": (lambda c: c["calibration"].update(temperature=float("nan")), "temperature"),
    "temperature -1": (lambda c: c["calibration"].update(temperature=-1.0), "temperature"),
    "duplicate classes": (lambda c: c.update(classes=["WDLPS", "WDLPS", "MLPS", "PLPS"]), "repeat"),
    "tiny target mpp": (lambda c: c["tiling"].update(target_mpp=1e-9), "1e-09"),
    "huge tile": (lambda c: c["tiling"].update(tile_px=10**6), "tile_px"),
    "huge head": (lambda c: c["head"]["config"].update(hidden_dim=10**9), "hidden_dim"),
    "head over budget": (
        lambda c: c["head"]["config"].update(hidden_dim=16384, attn_dim=16384, branches=16384),
        "parameters",
    ),
    "short OOD mean": (lambda c: c["ood"].update(mean=c["ood"]["mean"][:10]), "ood"),
    "ragged OOD components": (lambda c: c["ood"].update(components=[row[:5] for row in c["ood"]["components"]]), "ood"),
}


@pytest.mark.parametrize("fault", list(CARD_FAULTS))
def test_bad_model_card_is_refused(fault: str, slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model"
    shutil.copytree(DEMO_MODEL, model)
    card = json.loads((model / "model.json").read_text())
    edit, word = CARD_FAULTS[fault]
    edit(card)
    (model / "model.json").write_text(json.dumps(card))  # NaN is written as the JSON extension Python reads
    out = tmp_path / "out"
    code, err = cli(["predict", str(slide), "--model", str(model), "--out", str(out)], capfd)
    assert_refused(code, err, out, "model.json", word)


# -- output that cannot be written --------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 96 KiB tmpfs: a real full disk (needs root and mount; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True
        ).returncode
    ):
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_one_line(slide: Path, small_disk: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (small_disk / "filler").write_bytes(b"\0" * (80 * 1024))
    for command in (["tile", "--save-images", "--tile-size", "128"], ["features", *FEATURES, "--workers", "0"]):
        code, err = cli([command[0], str(slide), "--out", str(small_disk), *command[1:]], capfd)
        assert_refused(code, err, small_disk, "no space left on device", "free disk space")


def test_read_only_output_is_one_line(slide: Path, small_disk: Path, capfd: pytest.CaptureFixture[str]) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, err = cli(["tile", str(slide), "--out", str(small_disk / "out")], capfd)
    assert_refused(code, err, small_disk, "read-only")


def test_file_in_place_of_output_folder(slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.write_text("not a folder")
    code, err = cli(["tile", str(slide), "--out", str(out)], capfd)
    assert_refused(code, err, tmp_path, "choose another --out")


def test_file_size_limit_is_one_line(slide: Path, tmp_path: Path) -> None:
    """A real ``liposcope features`` process under RLIMIT_FSIZE (it crashed on a full disk): one line, exit 2."""
    out = tmp_path / "out"
    run = process(["features", str(slide), "--out", str(out), *FEATURES, "--workers", "0"], fsize=20_000)
    assert_refused(run.returncode, run.stderr, out, "file size limit")


# -- memory ----------------------------------------------------------------------------------------------
def write_tiled_tiff(path: Path, width: int, height: int, tile: int = 512) -> None:
    """A single-level tiled JPEG TIFF declaring ``width`` x ``height``, every tile sharing one white JPEG."""
    ok, jpeg = cv2.imencode(".jpg", np.full((tile, tile, 3), 240, np.uint8))
    assert ok
    n = -(-width // tile) * -(-height // tile)
    data = jpeg.tobytes()
    at_bits, at_res, at_data = 8, 14, 30
    at_offsets = at_data + len(data)
    at_counts = at_offsets + 4 * n
    at_ifd = at_counts + 4 * n
    tags = [
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, at_bits), (259, 3, 1, 7), (262, 3, 1, 6),
        (277, 3, 1, 3), (282, 5, 1, at_res), (283, 5, 1, at_res + 8), (284, 3, 1, 1), (296, 3, 1, 3),
        (322, 4, 1, tile), (323, 4, 1, tile), (324, 4, n, at_offsets), (325, 4, n, at_counts),
    ]  # fmt: skip
    with open(path, "wb") as fh:
        fh.write(b"II*\0" + struct.pack("<I", at_ifd) + struct.pack("<3H", 8, 8, 8))
        fh.write(struct.pack("<4I", 20000, 1, 20000, 1))  # 20000 px/cm: 0.5 µm/px
        fh.write(data + struct.pack(f"<{n}I", *([at_data] * n)) + struct.pack(f"<{n}I", *([len(data)] * n)))
        fh.write(struct.pack("<H", len(tags)))
        for tag, kind, count, value in tags:
            packed = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 else struct.pack("<I", value)
            fh.write(struct.pack("<HHI", tag, kind, count) + packed)
        fh.write(struct.pack("<I", 0))


def test_pyramid_less_huge_slide_is_refused(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "huge.tiff"
    write_tiled_tiff(path, 100_000, 100_000)
    out = tmp_path / "out"
    code, err = cli(["tile", str(path), "--out", str(out)], capfd)
    assert_refused(code, err, out, "100000x100000", "pyramidal")


def test_tile_resolution_out_of_bounds_is_refused(
    slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, err = cli(["tile", str(slide), "--out", str(out), "--mpp", "1e-9"], capfd)
    assert_refused(code, err, out, "target mpp 1e-09 must be in")
    code, err = cli(["tile", str(slide), "--out", str(out), "--slide-mpp", "200"], capfd)  # 320 x 240 mm
    assert_refused(code, err, out, "larger than any glass slide")


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB pixels (its data is one empty row)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 1_000_000])
def test_decompression_bomb_is_refused(side: int, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Over PIL's limit (10k x 10k: its warning band, where PIL only warns; 1M x 1M: its error)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(side, side))
    out = tmp_path / "out"
    code, err = cli(["tile", str(path), "--out", str(out), "--slide-mpp", "0.5"], capfd)
    assert_refused(code, err, out, str(path), "megapixel")


# -- names and truncated files -------------------------------------------------------------------------------
def test_undecodable_and_odd_names_work_end_to_end(
    slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    name = os.fsdecode(b"caf\xe9 \xff [1] ;'$x.tiff")
    odd = tmp_path / name
    shutil.copy(slide, odd)
    out = tmp_path / "out"
    code, err = cli(["tile", str(odd), "--out", str(out), "--tile-size", "128", "-q"], capfd)
    assert code == 0, err
    assert (out / odd.stem / "tiles.h5").is_file()
    code, err = cli(["features", str(odd), "--out", str(out / "f"), *FEATURES, "--workers", "0", "-q"], capfd)
    assert code == 0, err
    assert (out / "f" / f"{odd.stem}.h5").is_file()
    code, err = cli(["tile", str(odd), "--out", str(out), "--tile-size", "128"], capfd)
    assert code == 0, err  # resumes: the stored path compares equal
    for command in (["predict", "--model", str(DEMO_MODEL)], ["ihc", "--marker", "ki67"]):
        code, err = cli([command[0], str(odd), "--out", str(out / command[0]), *command[1:], "-q"], capfd)
        assert code == 0, err
        assert (out / command[0] / odd.stem / "report.html").is_file()


def test_error_about_a_name_with_a_newline_is_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two\nlines.svs"
    path.write_bytes(b"not a slide at all")
    out = tmp_path / "out"
    code, err = cli(["tile", str(path), "--out", str(out)], capfd)
    assert_refused(code, err, out, "two\\nlines.svs")


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("mpp", [None, "0.5"])
def test_truncated_tiff_is_named_truncated(
    fraction: float, mpp: str | None, slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.svs"
    data = slide.read_bytes()
    cut.write_bytes(data[: int(len(data) * fraction)])
    out = tmp_path / "out"
    code, err = cli(["tile", str(cut), "--out", str(out), *(["--slide-mpp", mpp] if mpp else [])], capfd)
    assert_refused(code, err, out, "file is truncated", "re-copy")


def test_truncated_real_svs_is_named_truncated(
    shared_data: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = shared_data / "slides" / "CMU-1-Small-Region.svs"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    data = source.read_bytes()
    for fraction in (0.99, 0.7):
        cut = tmp_path / f"cut{fraction}.svs"
        cut.write_bytes(data[: int(len(data) * fraction)])
        out = tmp_path / "out"
        code, err = cli(["tile", str(cut), "--out", str(out), "--slide-mpp", "0.5"], capfd)
        assert_refused(code, err, out, "file is truncated")


# -- annotations ---------------------------------------------------------------------------------------
def train_args(slide: Path, tmp_path: Path, annotations: Path) -> tuple[list[str], Path]:
    """``train-mitosis`` on two copies of ``slide`` (1600 x 1200 level-0 px), ``a`` and ``b``."""
    slides = [shutil.copy(slide, tmp_path / f"{name}.tiff") for name in "ab"]
    out = tmp_path / "out"
    args = ["train-mitosis", *map(str, slides), "--annotations", str(annotations), "--out", str(out)]
    return [*args, "--backbone", "mobilenetv3_small_050", "--weights", "random", "--epochs", "1", "-q"], out


@pytest.mark.parametrize(("point", "shown"), [("1600,10", "x=1600, y=10"), ("10,-0.5", "x=10, y=-0.5")])
def test_annotations_off_the_slide_are_refused(
    point: str, shown: str, slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "points.csv"
    points.write_text(
        f"slide_id,x,y,label\na,800,600,mitosis\nb,{point},mitosis\nb,1599,1199,non-mitosis\nb,{point},0\n"
    )
    args, out = train_args(slide, tmp_path, points)
    code, err = cli(args, capfd)
    assert_refused(code, err, out, str(points), "b.tiff", "2 of 3 points", shown, "level-0 pixels of this slide")
    assert not out.exists()


def test_too_many_annotation_points_are_refused_up_front(
    slide: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    points = tmp_path / "points.csv"
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (300_000, 2)).round(1)
    points.write_text("slide_id,x,y,label\n" + "".join(f"a,{x},{y},mitosis\n" for x, y in xy.tolist()))
    args, out = train_args(slide, tmp_path, points)
    code, err = cli(args, capfd)
    assert_refused(code, err, out, str(points), "more than 100,000 points on slide 'a'")
    assert not out.exists()
