"""predict end to end with a model the project's own commands trained: files, resume, warnings, errors."""

from __future__ import annotations

import dataclasses
import html
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from liposcope.cli import main
from liposcope.errors import ModelCardError
from liposcope.synth import random_he_style, write_slide

TILING = ["--mpp", "2.0", "--tile-size", "48"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """features (seeded random test_resnet) + 2-fold abmil on a 16-slide synthetic cohort."""
    from liposcope.synth import write_cohort

    root = tmp_path_factory.mktemp("model")
    labels = write_cohort(root / "slides", n_slides=16, seed=8, width_px=1600, height_px=1200, mpp=0.5)
    slides = sorted(str(p) for p in (root / "slides").glob("*.tiff"))
    feats = ["features", *slides, "--out", str(root / "feats"), "--backbone", "test_resnet", "--weights", "random"]
    assert main([*feats, *TILING, "--workers", "0", "-q"]) == 0
    config = root / "tiny.yaml"
    config.write_text("max_epochs: 3\nmin_epochs: 1\npatience: 1\nhead:\n  name: abmil\n  hidden_dim: 32\n")
    run = ["train", "--config", str(config), "--labels", str(labels), "--features", str(root / "feats")]
    assert main([*run, "--out", str(root / "run"), "--folds", "2", "-q"]) == 0
    return root / "run" / "model"


def test_predict_writes_every_output_and_resumes(
    tiny_model: Path, he_slides: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slide = he_slides["DDLPS"]
    assert main(["predict", str(slide), "--model", str(tiny_model), "--out", str(tmp_path), "-q"]) == 0
    folder = tmp_path / slide.stem
    pred = json.loads((folder / "prediction.json").read_text())
    assert pred["predicted_class"] in pred["probabilities"]
    assert abs(sum(pred["probabilities"].values()) - 1) < 1e-5
    assert pred["tiles_analysed"] > 16
    assert pred["target_mpp"] == 2.0
    assert pred["provenance"]["model"]["sha256"]
    assert pred["provenance"]["slide"]["slide_id"] == slide.stem
    geo = json.loads((folder / "heatmap.geojson").read_text())
    assert len(geo["features"]) == pred["tiles_analysed"]
    heat = cv2.imread(str(folder / "heatmap.png"))
    assert heat is not None
    assert heat.shape[1] >= 1000
    assert cv2.imread(str(folder / "top_tiles.png")) is not None
    assert "data:image/png;base64" in (folder / "report.html").read_text()
    stamp = (folder / "prediction.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["predict", str(slide), "--model", str(tiny_model), "--out", str(tmp_path), "-q"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert (folder / "prediction.json").stat().st_mtime_ns == stamp


def _predict_stamp(slide: Path, model: Path, out: Path, *extra: str) -> int:
    assert main(["predict", str(slide), "--model", str(model), "--out", str(out), "-q", *extra]) == 0
    return (out / slide.stem / "prediction.json").stat().st_mtime_ns


def test_predict_recomputes_when_model_card_slide_mpp_or_slide_change(
    tiny_model: Path, he_slides: dict[str, Path], tmp_path: Path
) -> None:
    """The resume rule: same slide, settings and model skip; any of the three changed recomputes."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    slide = tmp_path / "case.tiff"
    shutil.copy(he_slides["DDLPS"], slide)
    out = tmp_path / "out"
    first = _predict_stamp(slide, model, out)
    assert _predict_stamp(slide, model, out) == first  # nothing changed: skipped

    card = json.loads((model / "model.json").read_text())
    card["calibration"]["temperature"] *= 3.0
    (model / "model.json").write_text(json.dumps(card))
    after_card = _predict_stamp(slide, model, out)
    assert after_card != first
    saved = json.loads((out / slide.stem / "prediction.json").read_text())
    assert saved["resume"]["model_sha256"] != ""

    mpp = json.loads((out / slide.stem / "prediction.json").read_text())["slide_mpp"]
    after_mpp = _predict_stamp(slide, model, out, "--slide-mpp", str(round(mpp * 1.1, 4)))
    assert after_mpp != after_card
    assert json.loads((out / slide.stem / "prediction.json").read_text())["slide_mpp"] == pytest.approx(mpp * 1.1, 1e-3)

    shutil.copy(he_slides["MLPS"], slide)  # another slide under the same name and path
    after_slide = _predict_stamp(slide, model, out, "--slide-mpp", str(round(mpp * 1.1, 4)))
    assert after_slide != after_mpp
    fingerprint = json.loads((out / slide.stem / "prediction.json").read_text())["resume"]["slide"]
    assert fingerprint["size"] == slide.stat().st_size


def test_predict_follows_the_card_tissue_settings_not_todays_config(
    he_slides: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from liposcope.inference import load_model, predict_slide
    from liposcope.inference.demo import demo_model_dir
    from liposcope.wsi.tissue import TissueParams

    model = load_model(demo_model_dir())
    assert model.card.tissue is not None

    def changed_config() -> TissueParams:
        raise AssertionError("predict read today's configs/tiling.yaml")

    monkeypatch.setattr(TissueParams, "default", staticmethod(changed_config))
    pred = predict_slide(he_slides["WDLPS"], model)
    assert pred.model["tissue"] == dataclasses.asdict(model.card.tissue)


def test_warnings_for_little_tissue_and_unusual_stain(tiny_model: Path, tmp_path: Path) -> None:
    from liposcope.inference import load_model, predict_slide

    model = load_model(tiny_model)
    small = tmp_path / "small.tiff"
    write_slide(small, label="WDLPS", seed=5, width_px=900, height_px=700, mpp=0.5)
    assert any("too little tissue" in w for w in predict_slide(small, model).warnings)
    odd = tmp_path / "odd.tiff"
    write_slide(
        odd,
        label="MLPS",
        seed=6,
        width_px=1600,
        height_px=1200,
        mpp=0.5,
        style=random_he_style(np.random.default_rng(0), variation=4.0),
    )
    warnings = predict_slide(odd, model).warnings
    assert any("stain colours are unlike" in w or "features are unlike" in w for w in warnings)


def test_batch_isolates_failures(tiny_model: Path, he_slides: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.svs"
    bad.write_text("not a slide")
    args = ["predict", str(bad), str(he_slides["PLPS"]), "--model", str(tiny_model), "--out", str(tmp_path / "o")]
    assert main([*args, "-q"]) == 2
    assert (tmp_path / "o" / "plps" / "prediction.json").is_file()
    assert not (tmp_path / "o" / "bad").exists()


def test_model_without_backbone_weights_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    from liposcope.inference import load_model

    card = json.loads((tiny_model / "model.json").read_text())
    card["backbone"]["weights_sha256"] = "0" * 64
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.json").write_text(json.dumps(card))
    (broken / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes())
    with pytest.raises(ModelCardError, match="pass --weights PATH"):
        load_model(broken)


def test_low_confidence_means_no_call_in_json_and_report(
    tiny_model: Path, he_slides: dict[str, Path], tmp_path: Path
) -> None:
    strict = tmp_path / "strict"
    shutil.copytree(tiny_model, strict)
    card = json.loads((strict / "model.json").read_text())
    assert card["abstention"]["min_confidence"] >= 0.5  # chosen on the out-of-fold predictions
    card["abstention"]["min_confidence"] = 1.0  # no probability reaches it
    (strict / "model.json").write_text(json.dumps(card))
    slide = he_slides["MLPS"]
    assert main(["predict", str(slide), "--model", str(strict), "--out", str(tmp_path / "out"), "-q"]) == 0
    folder = tmp_path / "out" / slide.stem
    pred = json.loads((folder / "prediction.json").read_text())
    assert pred["abstained"] is True
    assert pred["call"] is None
    assert any("low confidence" in r for r in pred["abstain_reasons"])
    assert pred["predicted_class"] in pred["probabilities"]  # still reported, for review
    report = (folder / "report.html").read_text()
    headline = report.split('class="call', 1)[1].split("</p>", 1)[0]
    assert "No call" in headline
    assert "low confidence" in headline
    assert "<b>" not in headline
    assert '<tr class="top">' not in report


def test_demo_model_abstains_on_a_real_skin_slide(shared_data: Path, tmp_path: Path) -> None:
    from liposcope.inference.demo import demo_model_dir

    slide = shared_data / "slides" / "CMU-1-Small-Region.svs"
    assert main(["predict", str(slide), "--model", str(demo_model_dir()), "--out", str(tmp_path), "-q"]) == 0
    pred = json.loads((tmp_path / slide.stem / "prediction.json").read_text())
    assert pred["abstained"] is True
    assert pred["abstain_reasons"]
    report = (tmp_path / slide.stem / "report.html").read_text()
    headline = html.unescape(report.split('class="call', 1)[1].split("</p>", 1)[0])
    assert "No call" in headline
    assert all(reason in headline for reason in pred["abstain_reasons"])
