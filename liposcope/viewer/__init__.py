"""``liposcope view``: a read-only local web viewer of slides and the outputs of the commands.

Example:
    >>> from liposcope.viewer import build_registry, start
    >>> server = start(build_registry(["results"]))  # doctest: +SKIP
    >>> server.url, server.close()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import webbrowser
from collections.abc import Sequence
from pathlib import Path

from liposcope.errors import LiposcopeError
from liposcope.viewer.registry import SlideEntry, build_registry
from liposcope.viewer.server import ViewerServer, is_loopback, start

__all__ = ["SlideEntry", "ViewerServer", "build_registry", "serve", "start"]

log = logging.getLogger(__name__)


def serve(paths: Sequence[str | Path], host: str = "127.0.0.1", port: int = 8000, open_browser: bool = True) -> None:
    """Register ``paths``, serve them until Ctrl+C and say where (and who can reach it).

    Raises:
        LiposcopeError: nothing to view, or the address cannot be bound.
    """
    registry = build_registry(paths)
    try:
        server = ViewerServer(registry, host, port)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port (0 picks a free one)"
        raise LiposcopeError(msg) from exc
    first = next(iter(registry))
    page = server.url if len(registry) > 1 else f"{server.url}slides/{first}"
    reach = (
        f"bound to {host} only: reachable from this machine, not from the network"
        if is_loopback(host)
        else f"bound to {host}: anyone who can reach this machine can see these slides"
    )
    print(f"liposcope view: {len(registry)} slide(s) at {page}\n{reach}; read-only. Ctrl+C stops.", flush=True)  # noqa: T201
    if open_browser:
        webbrowser.open(page)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        server.server_close()
        server.tiles.close()
