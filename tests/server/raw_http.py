"""Raw-socket HTTP for the tests that a client library would not let misbehave: partial headers,
lying Content-Length, uploads the server refuses half-way, other source addresses."""

from __future__ import annotations

import base64
import json
import socket
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawAnswer:
    status: int
    """0 when the connection closed (or was reset) before a status line arrived."""
    headers: dict[str, str]
    body: bytes
    sent: int
    """Body bytes the server accepted before it answered or closed."""

    def json(self) -> Any:
        return json.loads(self.body)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def connect(port: int, source: str = "127.0.0.1", timeout: float = 30) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    return sock


def read_answer(sock: socket.socket, sent: int = 0) -> RawAnswer:
    data = bytearray()
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/"):
            return RawAnswer(0, {}, b"", sent)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        body = bytearray(rest)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return RawAnswer(int(lines[0].split()[1]), headers, bytes(body), sent)
    except (ConnectionResetError, TimeoutError):
        return RawAnswer(0, {}, b"", sent)


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"",
            source: str = "127.0.0.1", chunk: int = 1 << 20, timeout: float = 30) -> RawAnswer:
    """Send a request; the body in `chunk`-sized writes, stopping when the server stops taking it."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    all_headers = {"Content-Length": str(len(body)), **(headers or {})}
    head += "".join(f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
    with connect(port, source, timeout) as sock:
        sock.sendall(head.encode("latin-1"))
        sent = 0
        try:
            view = memoryview(body)
            while sent < len(body):
                sock.sendall(view[sent:sent + chunk])
                sent += min(chunk, len(body) - sent)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        return read_answer(sock, sent)


def seconds_until_closed(sock: socket.socket, limit: float) -> float:
    """How long until the server closes `sock` (recv returns b"" or the socket resets); `limit` if it never does."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            if not sock.recv(65536):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    return time.monotonic() - start
