"""``view``: the slides and their layers in the browser."""

from __future__ import annotations

import argparse

from liposcope.cli.common import (
    Subparsers,
    command,
)


def register(sub: Subparsers) -> None:
    _add_view(sub)


def _add_view(sub: Subparsers) -> None:
    p = command(
        sub,
        "view",
        "Review slides with their heatmap, nuclei, mitoses and hotspots in the browser (read-only, local).",
        _view,
        epilog=(
            "PATH is an --out folder of predict/ihc/mitoses/tile (each OUT/<slide_id>/ names its slide in the\n"
            "provenance of its results) or slide files. Serves Deep Zoom tiles, the layers' GeoJSON and a page\n"
            "at http://127.0.0.1:PORT/slides/<slide_id>; binds to 127.0.0.1 (this machine only) unless --host says\n"
            "otherwise. Nothing is written. Ctrl+C stops.\n"
            "examples:\n  liposcope view results\n  liposcope view results/case1 --port 8080 --no-browser"
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="output folders of the commands, or slide files")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")


def _view(args: argparse.Namespace) -> int:
    from liposcope.viewer import serve

    serve(args.paths, host=args.host, port=args.port, open_browser=not args.no_browser)
    return 0
