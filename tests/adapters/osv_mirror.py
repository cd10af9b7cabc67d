"""A mirror of OSV's export bucket on 127.0.0.1, laid out as the real one (https://google.github.io/osv.dev/
data/#data-dumps): `GET /<ECOSYSTEM>/all.zip` is a zip of that ecosystem's OSV JSON records and
`GET /ecosystems.txt` lists the ecosystems, one per line. Debian holds the example advisories
(examples/vulndb); every other default ecosystem an export with no records. Requests are counted so a
test can tell a download from a cache hit.
"""

from __future__ import annotations

import http.server
import io
import threading
import zipfile
from pathlib import Path
from types import TracebackType

from ci_gate.vulns.update import DEFAULT_ECOSYSTEMS

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE_RECORDS = REPOSITORY / "examples" / "vulndb"


def _export(records: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.write(record, record.name)
    return buffer.getvalue()


class OsvMirror:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/ecosystems.txt": "\n".join(DEFAULT_ECOSYSTEMS).encode() + b"\n"}
        for ecosystem in DEFAULT_ECOSYSTEMS:
            records = sorted(EXAMPLE_RECORDS.glob("*.json")) if ecosystem == "Debian" else []
            self.files[f"/{ecosystem.replace(' ', '%20')}/all.zip"] = _export(records)
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def downloads(self) -> list[str]:
        return [path for path in self.requests if path.endswith("/all.zip")]

    def __enter__(self) -> OsvMirror:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
