"""The resume rule (liposcope.resume): what counts as done, and one writer per output at a time."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest

from liposcope.resume import RESUME_KEY, is_done, output_lock, recorded_key, resume_key, slide_fingerprint


def test_fingerprint_tells_a_replaced_file_from_the_same_one(tmp_path: Path) -> None:
    slide = tmp_path / "a.svs"
    slide.write_bytes(b"A" * 5000)
    first = slide_fingerprint(slide)
    assert slide_fingerprint(slide) == first
    stat = slide.stat()
    slide.write_bytes(b"B" * 5000)  # same size, same path; the mtime put back as well
    os.utime(slide, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    replaced = slide_fingerprint(slide)
    assert replaced["size"] == first["size"]
    assert replaced["mtime_ns"] == first["mtime_ns"]
    assert replaced["header_sha256"] != first["header_sha256"]


def test_done_only_with_the_same_slide_settings_and_model(tmp_path: Path) -> None:
    slide = tmp_path / "a.svs"
    slide.write_bytes(b"slide")
    key = resume_key(slide, {"tissue": {"min_od": 0.02}, "slide_mpp": None}, "m1")
    output = tmp_path / "result.json"
    assert not is_done(output, key)
    output.write_text(json.dumps({"value": 1, RESUME_KEY: key}))
    assert is_done(output, key)
    assert not is_done(output, resume_key(slide, {"tissue": {"min_od": 0.03}, "slide_mpp": None}, "m1"))
    assert not is_done(output, resume_key(slide, {"tissue": {"min_od": 0.02}, "slide_mpp": 0.5}, "m1"))
    assert not is_done(output, resume_key(slide, {"tissue": {"min_od": 0.02}, "slide_mpp": None}, "m2"))
    output.write_text("{not json")
    assert recorded_key(output) is None


def test_hdf5_outputs_record_their_manifest(tmp_path: Path) -> None:
    slide = tmp_path / "a.svs"
    slide.write_bytes(b"slide")
    key = resume_key(slide, {"precision": "fp32"})
    output = tmp_path / "a.h5"
    with h5py.File(output, "w") as h5:
        h5.attrs[RESUME_KEY] = json.dumps(key)
    assert is_done(output, key)
    with h5py.File(output, "w") as h5:
        h5.attrs["settings"] = "{}"  # a file from before the manifest
    assert not is_done(output, key)


def test_a_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    target = tmp_path / "out" / "case"
    events: list[str] = []

    def second() -> None:
        with output_lock(target):
            events.append("second")

    with output_lock(target):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        events.append("first done")
    thread.join(5)
    assert events == ["first done", "second"]


def test_a_killed_runs_lock_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "case"
    code = (
        "import sys, time\nfrom liposcope.resume import output_lock\n"
        f"with output_lock({str(target)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    lock = tmp_path / ".case.lock"
    assert f"pid {holder.pid}" in lock.read_text()
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="liposcope.resume"), output_lock(target):
        assert f"pid {os.getpid()}" in lock.read_text()
    assert time.perf_counter() - start < 5
    assert f"pid {holder.pid}" in caplog.text


def test_two_concurrent_runs_give_one_complete_result(he_slides: dict[str, Path], tmp_path: Path) -> None:
    slide = tmp_path / "case.tiff"
    shutil.copy(he_slides["DDLPS"], slide)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "liposcope", "tile", str(slide), "--out", str(out), "--save-images"]
    env = {**os.environ, "CI": "true"}
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in "ab"]
    results = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    summaries = [stdout.strip().splitlines()[-1] for stdout, _ in results]
    assert sorted(summaries) == ["0 done, 1 skipped, 0 failed", "1 done, 0 skipped, 0 failed"]
    with h5py.File(out / "case" / "tiles.h5", "r") as h5:
        n = len(h5["coords"])
    assert n == len(list((out / "case" / "tiles").glob("*.jpg"))) > 0
