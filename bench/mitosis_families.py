"""Leave-one-family-out: train the mitosis classifier without one figure family, test on fresh seeds.

For each family of ``liposcope.synth.mitosis_shapes.FAMILIES``, the classifier is trained (``train-mitosis``'s recipe,
fewer epochs) on slides whose figures of that family are left out of the patches (neither positive nor
negative), its threshold chosen on validation slides without them; then it runs end to end (threshold, NMS,
7.5 µm matching) on test slides of seeds never used, every family planted. Reported per held-out family:
stage-1 recall of that family, its recall after stage 2, and the pooled F1 and precision on all figures.

python bench/mitosis_families.py                     # ~30 min on 2 cores
python bench/mitosis_families.py --epochs 2 --train 4   # quicker, noisier
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from liposcope.mitoses.annotations import read_annotations
from liposcope.mitoses.detect import CLASSES, KIND, Detector, suppress
from liposcope.mitoses.settings import MitosisTrainConfig, load_settings
from liposcope.mitoses.train import SlideSamples, collect_samples, fit_classifier
from liposcope.models.backbones import create_backbone
from liposcope.models.card import HeadSpec, ModelCard
from liposcope.synth.mitoses import (
    FAMILIES,
    SHAPES,
    family_of,
    load_mitosis_truth,
    mitosis_truth_path,
    write_mitosis_slide,
)
from liposcope.wsi.grid import TileSpec
from liposcope.wsi.points import f1_score, match_points

LABELS = ("PLPS", "MLPS", "WDLPS", "DDLPS")


def make_slides(folder: Path, seeds: range, rate: float, variation: float, side: int) -> list[Path]:
    """Slides of every family (written once, then reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in seeds:
        path = folder / f"fam-{s}.tiff"
        if not path.exists():
            label = LABELS[s % 4]
            write_mitosis_slide(
                path, label=label, seed=s, width_px=side, height_px=side, per_10hpf=rate, lookalike_ratio=1.5,
                shapes=SHAPES, stain_variation=variation,
            )  # fmt: skip
        out.append(path)
    return out


def families_of(sample: SlideSamples, path: Path, match_um: float) -> tuple[np.ndarray, np.ndarray]:
    """Family of the figure each patch lies on ('' for none), and of each true figure."""
    truth = load_mitosis_truth(path)
    fig = truth.mitotic
    fam = np.array([family_of(s) for s in np.array(truth.shapes)[fig]] or [""], object)[: int(fig.sum())]
    near = np.full(len(sample.xy), "", object)
    if fig.any() and len(sample.xy):
        dist, idx = cKDTree(truth.xy[fig] * sample.mpp).query(sample.xy * sample.mpp, distance_upper_bound=match_um)
        hit = np.isfinite(dist)
        near[hit] = fam[idx[hit]]
    return near, fam


def without(sample: SlideSamples, near: np.ndarray, true_fam: np.ndarray, family: str) -> SlideSamples:
    """The sample with the patches and true figures of ``family`` removed."""
    keep = near != family
    return replace(
        sample, xy=sample.xy[keep], patches=sample.patches[keep], label=sample.label[keep], hard=sample.hard[keep],
        candidate=sample.candidate[keep], truth_um=sample.truth_um[true_fam != family],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("bench/.cache/families"))
    parser.add_argument("--train", type=int, default=8, help="training slides (default 8)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--side", type=int, default=3072, help="slide side, px at 0.25 µm/px")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = load_settings()
    cfg = MitosisTrainConfig(epochs=args.epochs)
    train_paths = make_slides(args.workdir, range(8000, 8000 + args.train), 300.0, 1.3, args.side)
    val_paths = make_slides(args.workdir, range(8100, 8103), 300.0, 1.3, args.side)
    test_paths = make_slides(args.workdir, range(8200, 8204), 200.0, 1.0, args.side)

    def load(paths: list[Path], keep_all: bool) -> list[tuple[SlideSamples, np.ndarray, np.ndarray]]:
        out = []
        for p in paths:
            s = collect_samples(p, read_annotations(mitosis_truth_path(p)), settings, cfg, keep_all=keep_all)
            out.append((s, *families_of(s, p, cfg.match_um)))
        return out

    train, val, test = load(train_paths, False), load(val_paths, True), load(test_paths, True)
    rows = []
    for family in FAMILIES:
        backbone = create_backbone(cfg.backbone, cfg.weights, seed=cfg.seed)
        backbone.model.reset_classifier(len(CLASSES))  # type: ignore[operator]
        card = ModelCard(
            KIND, CLASSES, HeadSpec("linear", {}), backbone.spec, TileSpec(0.25, settings.patch_px, 0, 0.0)
        )
        detector = Detector(backbone, card, "lofo")
        best, _ = fit_classifier(
            detector, [without(*t, family) for t in train], [without(*v, family) for v in val], cfg, settings
        )
        backbone.model.load_state_dict(best["state"])
        rows.append(score_family(detector, test, family, best["metrics"]["threshold"], settings.nms_um, cfg.match_um))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def score_family(
    detector: Detector, test: list[tuple[SlideSamples, np.ndarray, np.ndarray]], family: str, t: float, nms: float,
    match_um: float,
) -> dict[str, object]:  # fmt: skip
    """Stage-1 and end-to-end recall of ``family`` and pooled F1 on the test slides."""
    tp = fp = fn = found1 = found2 = total = 0
    for s, _, fam in test:
        p = detector.score(s.patches[s.candidate])
        xy_um = s.xy[s.candidate] * s.mpp
        kept = suppress(xy_um[p >= t], p[p >= t], nms)
        det = xy_um[p >= t][kept]
        a, b, c = match_points(det, s.truth_um, match_um)
        tp, fp, fn = tp + a, fp + b, fn + c
        held = s.truth_um[fam == family]
        total += len(held)
        if len(held):
            found1 += int((cKDTree(xy_um).query(held, distance_upper_bound=match_um)[0] < np.inf).sum())
            if len(det):
                found2 += int((cKDTree(det).query(held, distance_upper_bound=match_um)[0] < np.inf).sum())
    return {
        "held_out": family, "threshold": t, "figures": total,
        "stage1_recall": round(found1 / max(total, 1), 3), "recall": round(found2 / max(total, 1), 3),
        "f1_all": round(f1_score(tp, fp, fn), 3), "precision_all": round(tp / max(tp + fp, 1), 3),
    }  # fmt: skip


if __name__ == "__main__":
    main()
