"""What the commands share: the parser pieces (one definition per flag, so a flag means the same everywhere) and
the per-slide batch runner."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from liposcope.batch import JobResult
from liposcope.errors import LiposcopeError, closest, did_you_mean

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

SUBTYPES = ("WDLPS", "DDLPS", "MLPS", "PLPS")
PRECISIONS = ("fp32", "bf16", "fp16")
WORKERS = 2  # DataLoader processes reading tiles, in every command that reads tiles
BATCH_SIZE = 64  # tiles per forward pass, in every command that encodes tiles
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def command(
    sub: Subparsers, name: str, summary: str, handler: Callable[[argparse.Namespace], int], epilog: str = ""
) -> argparse.ArgumentParser:
    """A subcommand with -v/-q that runs ``handler(args)``."""
    p = sub.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks for internal errors")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only, no progress bars")
    p.set_defaults(handler=handler)
    return p


def add_slides(p: argparse.ArgumentParser) -> None:
    """SLIDE..., --out and --slide-mpp."""
    p.add_argument("slides", nargs="+", metavar="SLIDE", help="slide files (any openslide format)")
    p.add_argument("--out", required=True, type=Path, help="output folder; results go to OUT/<slide_id>/")
    add_slide_mpp(p)


def add_slide_mpp(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--slide-mpp", type=float, metavar="M", help="level-0 µm per pixel, for slides whose metadata lacks it"
    )


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", type=device, default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)"
    )


def add_encoding(p: argparse.ArgumentParser) -> None:
    """--device, --batch-size, --workers and --precision: how tiles are read and encoded."""
    add_device(p)
    add_batch_size(p)
    add_workers(p)
    p.add_argument(
        "--precision", type=choice(PRECISIONS), default="fp32", help=f"autocast precision: {', '.join(PRECISIONS)}"
    )


def add_batch_size(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"tiles per step (default {BATCH_SIZE})")


def add_workers(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=WORKERS, help=f"worker processes reading tiles (default {WORKERS})")


def add_config(p: argparse.ArgumentParser, packaged: str, what: str) -> None:
    """--config: a YAML whose keys override ``configs/<packaged>.yaml``."""
    p.add_argument("--config", help=f"YAML overriding configs/{packaged}.yaml ({what})")


def add_tiling(p: argparse.ArgumentParser) -> None:
    """--mpp, --tile-size, --overlap, --min-tissue and --config, with defaults read from configs/tiling.yaml."""
    from liposcope.config import load_yaml

    d = load_yaml("tiling")
    p.add_argument("--mpp", type=float, help=f"tile resolution in µm per pixel (default {d['target_mpp']})")
    p.add_argument("--tile-size", type=int, help=f"tile side in pixels at --mpp (default {d['tile_px']})")
    p.add_argument("--overlap", type=int, help=f"overlap between tiles in pixels at --mpp (default {d['overlap_px']})")
    p.add_argument(
        "--min-tissue", type=float, help=f"keep tiles with at least this tissue fraction (default {d['min_tissue']})"
    )
    add_config(p, "tiling", "tile and tissue settings")


def tiling(args: argparse.Namespace) -> tuple[Any, Any]:
    """The TileSpec and TissueParams the tiling flags resolve to."""
    from liposcope.wsi.tiling import tiling_config

    return tiling_config(
        args.config, target_mpp=args.mpp, tile_px=args.tile_size, overlap_px=args.overlap, min_tissue=args.min_tissue
    )


def add_backbone(p: argparse.ArgumentParser, weights_default: str | None, weights_help: str) -> None:
    """--backbone, --weights and --model-arg."""
    p.add_argument("--backbone", required=True, help="timm model name, e.g. resnet50 or vit_large_patch16_224")
    p.add_argument("--weights", default=weights_default, help=weights_help)
    p.add_argument(
        "--model-arg", action="append", default=[], metavar="KEY=VALUE", help="extra timm.create_model argument"
    )


def key_values(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=true"]`` → ``{"a": 1, "b": True}`` (values parsed as YAML scalars)."""
    import yaml

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            msg = f"--model-arg {item}: expected KEY=VALUE; e.g. --model-arg init_values=1e-5"
            raise LiposcopeError(msg)
        out[key.strip()] = yaml.safe_load(value)
    return out


def box(text: str) -> tuple[float, float, float, float]:
    """``X,Y,W,H`` in level-0 pixels."""
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        msg = f"expected X,Y,W,H (four numbers, level-0 pixels), got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    return (x, y, w, h)


def choice(options: Sequence[str]) -> Callable[[str], str]:
    """An argparse type taking one of ``options``, in any case; another value gets a suggestion."""

    def parse(text: str) -> str:
        match = closest(text, options)
        if match is not None and match.lower() == text.lower():
            return match
        msg = f"{text!r} is not one of {', '.join(options)}{did_you_mean(text, options)}"
        raise argparse.ArgumentTypeError(msg)

    parse.__name__ = "choice"
    return parse


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if _DEVICE.match(text.lower()):
        return text.lower()
    msg = f"{text!r} is not a device; use auto, cpu, cuda or cuda:N{did_you_mean(text, ('auto', 'cpu', 'cuda'))}"
    raise argparse.ArgumentTypeError(msg)


def run_slides(slides: Sequence[str], job: Callable[[Path], JobResult], desc: str) -> int:
    """Run ``job`` per slide, print the summary, return the batch's exit status."""
    from liposcope.batch import exit_code, run_batch, summary

    outcomes = run_batch(slides, job, desc=desc)
    print(summary(outcomes))  # noqa: T201
    return exit_code(outcomes)
