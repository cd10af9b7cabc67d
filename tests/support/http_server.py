"""Serving a local stand-in from a background thread: the start/stop every test server shares."""

from __future__ import annotations

import http.server
import socketserver
import threading
from typing import TypeVar

Served = TypeVar("Served", bound="BackgroundServer")


class BackgroundServer:
    """A socketserver served from a daemon thread while the `with` block runs."""

    def __init__(self, server: socketserver.BaseServer) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def __enter__(self: Served) -> Served:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalHttpServer(BackgroundServer):
    """An HTTP server on a free port of 127.0.0.1, one thread per connection."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._http = server
        super().__init__(server)

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`."""
        return f"127.0.0.1:{self._http.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"
