"""Call serve's ASGI application in-process with raw requests (any method, path bytes, header or body).

No HTTP client in between, so a fuzzer can send what a client library would refuse to build:
undecodable paths, duplicated or binary headers, a Content-Length that lies. The application is
the real one (`create_app`) on a real data dir; only the socket is missing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def _call(app: Starlette, method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]],
                chunks: list[bytes], client: str) -> Answer:
    from urllib.parse import unquote

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": method, "scheme": "http", "root_path": "", "server": ("127.0.0.1", 8228),
        "client": (client, 40000), "path": unquote(raw_path.decode("ascii")),  # as uvicorn decodes it
        "raw_path": raw_path, "query_string": query, "headers": headers, "state": {},
    }
    pending = list(chunks) or [b""]

    async def receive() -> dict[str, Any]:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    status = 0
    response_headers: dict[str, str] = {}
    body = bytearray()

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for key, value in message.get("headers", []):
                response_headers[key.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await asyncio.wait_for(app(scope, receive, send), 60)
    return Answer(status, response_headers, bytes(body))


class Driver:
    """The application and one event loop for all its requests (as under uvicorn)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()

    def call(self, method: str, path: str | bytes, *, query: bytes = b"",
             headers: list[tuple[bytes, bytes]] | None = None, body: bytes | list[bytes] = b"",
             client: str = "127.0.0.1") -> Answer:
        """One request through the application; the answer as the client would read it."""
        raw_path = path.encode("utf-8", "surrogatepass") if isinstance(path, str) else path
        # What reaches an application under uvicorn: h11 refuses targets that are not visible ASCII.
        raw_path = quote(raw_path, safe="/:@!$&'()*+,;=-._~%").encode("ascii")
        chunks = body if isinstance(body, list) else [body]
        return self.loop.run_until_complete(_call(self.app, method, raw_path, query, list(headers or []), chunks,
                                                  client))

    def close(self) -> None:
        self.loop.close()
