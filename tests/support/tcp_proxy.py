"""A tiny TCP round-robin balancer on 127.0.0.1, as a Kubernetes Service or a cloud load balancer
stands in front of several `ci-gate serve` replicas.

Each accepted connection goes to the next backend in turn; a backend that refuses the connection
(a replica that was killed) is skipped for the next one, and a connection whose backend dies is
closed, so the client's retry opens a new one that lands on a live replica. Bytes are copied as
they are, nothing is parsed.

It runs as its own process (`python -m tests.support.tcp_proxy LISTEN_PORT BACKEND_PORT...`) so
that copying bytes for hundreds of clients does not compete with the test's own threads for the
GIL; `RoundRobinProxy` starts and stops it.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

__all__ = ["RoundRobinProxy"]

CONNECT_TIMEOUT_SECONDS = 2.0
COPY_CHUNK = 65536


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(COPY_CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve(listen_port: int, backends: list[int]) -> None:
    turn = itertools.cycle(range(len(backends)))

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        first = next(turn)
        for offset in range(len(backends)):  # the next live backend, starting with this one's turn
            port = backends[(first + offset) % len(backends)]
            try:
                backend_reader, backend_writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT_SECONDS)
            except (OSError, asyncio.TimeoutError):
                continue
            await asyncio.gather(_copy(client_reader, backend_writer), _copy(backend_reader, client_writer))
            return
        client_writer.close()  # no backend alive: the client sees a reset and retries

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, backlog=1024)
    async with server:
        await server.serve_forever()


class RoundRobinProxy:
    """The balancer process on a free port of 127.0.0.1 in front of `backend_ports`."""

    def __init__(self, backend_ports: list[int], log_path: Path) -> None:
        self.backend_ports = list(backend_ports)
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RoundRobinProxy:
        for _attempt in range(3):  # the free port may be taken between probe and bind
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = int(probe.getsockname()[1])
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "tests.support.tcp_proxy", str(self.port),
                     *map(str, self.backend_ports)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 30  # a Python start-up on a busy 2-core machine
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"the TCP proxy did not start: {self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def __enter__(self) -> RoundRobinProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1]), [int(port) for port in sys.argv[2:]]))
