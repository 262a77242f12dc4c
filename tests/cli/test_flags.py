"""The command line as a whole: one meaning per flag, suggestions for mistyped values, the packaged model by name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from liposcope.cli import build_parser, main

SHARED = ("--workers", "--device", "--batch-size", "--precision", "--slide-mpp")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("flag", SHARED)
def test_a_flag_has_one_default_and_one_help_everywhere(flag: str) -> None:
    seen = {}
    for name, command in _commands().items():
        for action in command._actions:
            if flag in action.option_strings:
                seen[name] = (action.default, action.help, getattr(action.type, "__name__", action.type))
    assert len(seen) >= 2, seen
    assert len(set(seen.values())) == 1, seen


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["ihc", "s.svs", "--out", "o", "--marker", "Ki-67"], "did you mean 'ki67'"),
        (["features", "s.svs", "--out", "o", "--backbone", "resnet18", "--device", "cuda1"], "did you mean 'cuda'"),
        (["predict", "s.svs", "--out", "o", "--model", "demo", "--precision", "bf61"], "did you mean 'bf16'"),
    ],
)
def test_mistyped_values_get_a_suggestion(
    argv: list[str],
    suggestion: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.svs").write_bytes(b"not read")
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse refuses the value itself
        status = exc.code
    assert status == 2
    assert suggestion in capsys.readouterr().err


def test_subtype_names_take_any_case(tmp_path: Path) -> None:
    args = build_parser().parse_args(["demo", "--subtype", "ddlps", "--out", str(tmp_path)])
    assert args.subtype == "DDLPS"


def test_model_demo_names_the_packaged_model(he_slides: dict[str, Path], tmp_path: Path) -> None:
    assert main(["predict", str(he_slides["MLPS"]), "--model", "demo", "--out", str(tmp_path), "-q"]) == 0
    saved = json.loads((tmp_path / "mlps" / "prediction.json").read_text())
    assert saved["provenance"]["model"]["name"] == "demo_model"
    assert saved["provenance"]["model"]["tissue"]["min_od"] > 0
