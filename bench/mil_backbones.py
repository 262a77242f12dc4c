"""MIL heads against the logistic-regression baseline on features of several encoders.

For each feature folder (one per backbone, written by ``liposcope features``) and each head config,
runs ``train_mil`` with the same folds and prints the pooled out-of-fold balanced accuracy of the
baseline and the head. Config overrides (``--set lr=1e-3``) are applied to every head, so a
candidate default is judged on every backbone at once.

    python bench/mil_backbones.py --labels cohort/labels.csv --features f_resnet18 f_mobilenet --folds 4
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import yaml

from liposcope.training.crossval import load_train_config, train_mil

HEADS = ("abmil", "meanpool", "transmil")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, required=True, help="labels.csv of the cohort")
    parser.add_argument("--features", type=Path, nargs="+", required=True, help="one feature folder per backbone")
    parser.add_argument("--heads", nargs="+", default=list(HEADS), help="configs to run (default: all three)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="config override KEY=YAML_VALUE (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    rows = []
    print("| features | head | baseline | head | gap | seconds |\n|---|---|---:|---:|---:|---:|")
    for folder in args.features:
        for head in args.heads:
            cfg = load_train_config(head, **overrides)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                result = train_mil(cfg, args.labels, folder, out, folds=args.folds, seed=args.seed)
            row = {
                "features": folder.name,
                "head": head,
                "baseline": result.baseline["balanced_accuracy"],
                "head_bacc": result.metrics["balanced_accuracy"],
                "seconds": time.perf_counter() - start,
            }
            rows.append(row)
            print(
                f"| {row['features']} | {head} | {row['baseline']:.3f} | {row['head_bacc']:.3f} | "
                f"{row['head_bacc'] - row['baseline']:+.3f} | {row['seconds']:.0f} |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps({"overrides": overrides, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
