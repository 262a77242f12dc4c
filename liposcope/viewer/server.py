"""The read-only HTTP server of ``liposcope view``: Deep Zoom tiles, layer GeoJSON, results and the page.

Routes (GET and HEAD only; anything else is 405, anything not listed is 404):

- ``/`` and ``/slides/<slide_id>``: the slide list and the viewer page;
- ``/api/slides``, ``/api/slides/<slide_id>/layers``, ``/api/slides/<slide_id>/layers/<name>.geojson``,
  ``/api/slides/<slide_id>/results``;
- ``/slides/<slide_id>.dzi``, ``/slides/<slide_id>_files/<level>/<col>_<row>.<jpeg|png>``;
- ``/static/<file>``: the page's own files (OpenSeadragon vendored with its licence).

Request paths are never joined onto the file system: ids and names are looked up in the registry, so
traversal (``..``, encoded or not), unknown ids and odd encodings all end in 404.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from liposcope.viewer.registry import SlideEntry
from liposcope.viewer.tiles import FORMATS, TileSource

log = logging.getLogger(__name__)

_NUM = r"(0|[1-9][0-9]{0,6})"
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/"), "index"),
    (re.compile(r"/api/slides"), "slides"),
    (re.compile(r"/api/slides/(?P<id>[^/]+)/layers"), "layers"),
    (re.compile(r"/api/slides/(?P<id>[^/]+)/layers/(?P<name>[^/]+)\.geojson"), "layer"),
    (re.compile(r"/api/slides/(?P<id>[^/]+)/results"), "results"),
    (re.compile(r"/slides/(?P<id>[^/]+)\.dzi"), "dzi"),
    (
        re.compile(
            rf"/slides/(?P<id>[^/]+)_files/(?P<level>{_NUM})/(?P<col>{_NUM})_(?P<row>{_NUM})\.(?P<fmt>jpeg|png)"
        ),
        "tile",
    ),
    (re.compile(r"/slides/(?P<id>[^/]+)"), "page"),
    (re.compile(r"/static/(?P<name>[A-Za-z0-9_./-]+)"), "static"),
]
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Only the page's own files run; eval stays allowed so browser automation (Playwright's wait_for_function) works.
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-eval'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def static_files() -> dict[str, bytes]:
    """The page's files, read once from the package: relative name → bytes."""
    root = resources.files("liposcope.viewer") / "static"
    files: dict[str, bytes] = {}

    def walk(folder: Any, prefix: str) -> None:
        for item in folder.iterdir():
            if item.is_dir():
                walk(item, f"{prefix}{item.name}/")
            elif Path(item.name).suffix in _TYPES:
                files[prefix + item.name] = item.read_bytes()

    walk(root, "")
    return files


class ViewerServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` over a registry; ``serve_forever`` in a thread, ``close`` when done."""

    daemon_threads = True

    def __init__(self, registry: dict[str, SlideEntry], host: str = "127.0.0.1", port: int = 8000) -> None:
        self.registry = registry
        self.tiles = TileSource({k: e.slide_path for k, e in registry.items()})
        self.static = static_files()
        self.loopback = is_loopback(host)
        self.thread: threading.Thread | None = None
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), ViewerHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        name = f"[{host}]" if ":" in host else host
        return f"http://{name}:{port}/"

    def start(self) -> ViewerServer:
        """Serve in a daemon thread (for tests and notebooks); ``close()`` stops it."""
        self.thread = threading.Thread(target=self.serve_forever, name="liposcope-view", daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        """Stop the serving thread (if started), release the socket and the slides."""
        if self.thread is not None:
            self.shutdown()
            self.thread.join()
            self.thread = None
        self.server_close()
        self.tiles.close()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``127.0.0.1``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ViewerHandler(BaseHTTPRequestHandler):
    """Routes a GET or HEAD to one of the read-only handlers; every failure is a bare 404."""

    server: ViewerServer
    server_version = "liposcope-view"
    sys_version = ""

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _refuse(self) -> None:
        allow = {"Allow": "GET, HEAD"}
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: GET and HEAD only\n", "text/plain", allow)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _respond(self, head: bool) -> None:
        try:
            found = self._route() if self._host_allowed() else None
        except Exception:  # a slide that fails to read: the page shows a gap, the log says why
            log.exception("%s failed", self.path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n", "text/plain", head=head)
            return
        if found is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head=head)
            return
        body, content_type = found
        self._send(HTTPStatus.OK, body, content_type, head=head)

    def _host_allowed(self) -> bool:
        """On a loopback bind, only loopback Host names (a web page cannot reach it by DNS rebinding)."""
        host = self.headers.get("Host")
        if not self.server.loopback or host is None:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]").lower() in _LOOPBACK_NAMES

    def _route(self) -> tuple[bytes, str] | None:
        path = decode_path(self.path)
        if path is None:
            return None
        for pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match:
                return _HANDLERS[name](self.server, match.groupdict())
        return None

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
        *,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in {**_SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)


def decode_path(raw: str) -> str | None:
    """The request path, percent-decoded once as strict UTF-8; ``None`` for anything odd.

    Refused: no leading ``/``, a decoding error, a ``%`` left after decoding (double encoding), control
    characters, backslashes, and ``.``/``..`` segments.

    Example:
        >>> decode_path("/slides/case%201"), decode_path("/slides/%2e%2e/x"), decode_path("/a%252e")
        ('/slides/case 1', None, None)
    """
    target = raw.split("?", 1)[0].split("#", 1)[0]
    if not target.startswith("/"):
        return None
    try:
        path = unquote(target, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        return None
    if "%" in path or "\\" in path or any(ord(c) < 32 or ord(c) == 127 for c in path):
        return None
    if any(part in (".", "..") for part in path.split("/")):
        return None
    return path


def _json(value: Any) -> tuple[bytes, str]:
    return json.dumps(value, allow_nan=False).encode(), "application/json"


def _entry(server: ViewerServer, args: dict[str, str]) -> SlideEntry | None:
    return server.registry.get(args["id"])


def _index(server: ViewerServer, _: dict[str, str]) -> tuple[bytes, str] | None:
    return server.static["index.html"], _TYPES[".html"]


def _page(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    return (server.static["viewer.html"], _TYPES[".html"]) if _entry(server, args) else None


def _slides(server: ViewerServer, _: dict[str, str]) -> tuple[bytes, str] | None:
    return _json([e.describe() for e in server.registry.values()])


def _layers(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    entry = _entry(server, args)
    return None if entry is None else _json(sorted(entry.layers))


def _layer(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    entry = _entry(server, args)
    make = entry.layers.get(args["name"]) if entry else None
    return None if make is None else (make(), "application/geo+json")


def _results(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    entry = _entry(server, args)
    return None if entry is None else _json(entry.results)


def _dzi(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    xml = server.tiles.dzi(args["id"])
    return None if xml is None else (xml.encode(), "application/xml")


def _tile(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    level, col, row = int(args["level"]), int(args["col"]), int(args["row"])
    data = server.tiles.tile(args["id"], level, col, row, args["fmt"])
    return None if data is None else (data, FORMATS[args["fmt"]])


def _static(server: ViewerServer, args: dict[str, str]) -> tuple[bytes, str] | None:
    data = server.static.get(args["name"])
    return None if data is None else (data, _TYPES[Path(args["name"]).suffix])


_HANDLERS: dict[str, Callable[[ViewerServer, dict[str, str]], tuple[bytes, str] | None]] = {
    "index": _index,
    "slides": _slides,
    "layers": _layers,
    "layer": _layer,
    "results": _results,
    "dzi": _dzi,
    "tile": _tile,
    "page": _page,
    "static": _static,
}


def start(registry: dict[str, SlideEntry], host: str = "127.0.0.1", port: int = 0) -> ViewerServer:
    """A server already serving in a daemon thread (port 0: a free one, see ``.url``); ``close()`` stops it."""
    return ViewerServer(registry, host, port).start()
