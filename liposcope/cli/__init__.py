"""The ``liposcope`` command line: parses arguments and calls library functions, nothing more.

One module per command family (``subtype``: demo, predict; ``slides``: synth, tile, features; ``train``: train,
train-tiles; ``markers``: ihc; ``mitosis``: mitoses, train-mitosis; ``review``: view), the flags they share in
``common``; each handler imports its library code when it runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from liposcope import __version__
from liposcope.cli import markers, mitosis, review, slides, subtype, train
from liposcope.errors import LiposcopeError, from_os_error, one_line

log = logging.getLogger("liposcope")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 1 internal error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    if hasattr(signal, "SIGXFSZ"):  # a file size limit fails the write (EFBIG) instead of killing the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        _clean_output(args)
        return int(args.handler(args))
    except (LiposcopeError, OSError) as exc:
        user = exc if isinstance(exc, LiposcopeError) else from_os_error(exc)
        if user is None:
            return _internal_error(exc)
        log.error("%s", one_line(str(user)))
        return 2
    except KeyboardInterrupt:
        log.error("interrupted; rerun the same command to resume")
        return 130
    except Exception as exc:  # noqa: BLE001 (a bug: logged with its traceback under -v)
        return _internal_error(exc)


def _internal_error(exc: BaseException) -> int:
    """A bug: one line for the user, the traceback with -v."""
    message = f"internal error ({type(exc).__name__}: {exc}); rerun with -v for the traceback and report it"
    log.error("%s", one_line(message))
    log.debug("traceback", exc_info=True)
    return 1


def _clean_output(args: argparse.Namespace) -> None:
    """Remove the temporaries that killed runs left in the output folder."""
    from liposcope.io import clean_stale_temps

    out = getattr(args, "out", None)
    if isinstance(out, Path):
        for path in clean_stale_temps(out):
            log.debug("removed %s, left by an interrupted run", path)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand (building it imports no torch)."""
    parser = argparse.ArgumentParser(
        prog="liposcope",
        description="Whole-slide image analysis for liposarcoma (research use, not for diagnosis).",
    )
    parser.add_argument("--version", action="version", version=f"liposcope {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for family in (subtype, slides, train, markers, mitosis, review):
        family.register(sub)
    return parser


def _configure_logging(verbose: bool, quiet: bool) -> None:
    from liposcope.progress import set_enabled

    set_enabled(not quiet)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    warnings.showwarning = _log_warning  # library warnings (PIL, numpy, torch) only with -v, never before the error
    logging.addLevelName(logging.ERROR, "error")
    logging.addLevelName(logging.WARNING, "warning")
    logging.addLevelName(logging.INFO, "info")


def _log_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """``warnings.showwarning`` for the CLI: a debug log line (shown with -v), not text on stderr."""
    log.debug("%s", one_line(warnings.formatwarning(message, category, filename, lineno, line).strip()))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests and notebooks swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass
