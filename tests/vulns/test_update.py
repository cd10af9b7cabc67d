"""`db update` against a local HTTP server laid out like OSV's bucket, and against a mirror folder.

The server follows the bucket's public layout: `/ecosystems.txt`, `/<ECOSYSTEM>/all.zip` (URL-quoted
ecosystem names), 404 for anything else.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from ci_gate.cli.db import app
from ci_gate.errors import VulnerabilityDataError
from ci_gate.vulns.store import VulnerabilityStore
from ci_gate.vulns.update import UpdateOptions, update

from .conftest import zip_folder


class _Bucket(http.server.BaseHTTPRequestHandler):
    root: Path
    failures: dict[str, int]
    truncate: set[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = unquote(self.path.split("?", 1)[0]).lstrip("/")
        if self.failures.get(path, 0) > 0:
            self.failures[path] -= 1
            self.send_response(503)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        file = self.root / path
        if not path or not file.is_file():
            body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
            self.send_response(404)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/zip" if path.endswith(".zip") else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if path in self.truncate else data)


@pytest.fixture
def bucket(tmp_path: Path, osv_tree: Path) -> Iterator[tuple[str, type[_Bucket], Path]]:
    root = tmp_path / "bucket"
    for ecosystem in ("Debian", "PyPI", "Red Hat"):
        (root / ecosystem).mkdir(parents=True)
        zip_folder(osv_tree / ecosystem, root / ecosystem / "all.zip")
    (root / "ecosystems.txt").write_text("Debian\nPyPI\nRed Hat\nnpm\n")
    handler = type("Bucket", (_Bucket,), {"root": root, "failures": {}, "truncate": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler, root
    finally:
        server.shutdown()
        server.server_close()


def test_update_downloads_and_imports(tmp_path: Path, bucket: tuple[str, type[_Bucket], Path]) -> None:
    url, handler, _ = bucket
    handler.failures["PyPI/all.zip"] = 1  # a transient 503 is retried
    store = tmp_path / "vulns.sqlite"
    result = update(UpdateOptions(source=url, ecosystems=("Debian", "PyPI", "Red Hat"), store_path=store))
    assert result.total.added == 7
    with VulnerabilityStore(store) as opened:
        status = opened.status()
    assert [s.location for s in status.sources] == [f"{url}/Debian/all.zip", f"{url}/PyPI/all.zip",
                                                    f"{url}/Red%20Hat/all.zip"]
    assert not list(tmp_path.glob(".osv-*"))  # temporary downloads are removed


def test_unknown_ecosystem_is_refused_before_any_download(tmp_path: Path,
                                                          bucket: tuple[str, type[_Bucket], Path]) -> None:
    url, _, _ = bucket
    with pytest.raises(VulnerabilityDataError, match="unknown ecosystem 'pypi'"):
        update(UpdateOptions(source=url, ecosystems=("pypi",), store_path=tmp_path / "vulns.sqlite"))
    assert not (tmp_path / "vulns.sqlite").exists()


def test_broken_downloads_leave_the_store_intact(tmp_path: Path, store_path: Path,
                                                 bucket: tuple[str, type[_Bucket], Path]) -> None:
    url, handler, _ = bucket
    with VulnerabilityStore(store_path) as store:
        before = store.status().sources
    with pytest.raises(VulnerabilityDataError, match="does not exist \\(404\\)"):
        update(UpdateOptions(source=url, ecosystems=("Debian", "npm"), store_path=store_path))
    handler.truncate.add("Debian/all.zip")
    with pytest.raises(VulnerabilityDataError, match=r"cut short|broke off"):
        update(UpdateOptions(source=url, ecosystems=("Debian",), store_path=store_path))
    with VulnerabilityStore(store_path) as store:
        assert store.status().sources == before


def test_mirror_folder_and_cli(tmp_path: Path, bucket: tuple[str, type[_Bucket], Path]) -> None:
    _, _, root = bucket
    store = tmp_path / "vulns.sqlite"
    runner = CliRunner()
    result = runner.invoke(app, ["update", "--source", str(root), "--ecosystem", "Red Hat", "--vuln-db", str(store)])
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output
    status = runner.invoke(app, ["status", "--vuln-db", str(store)])
    assert status.exit_code == 0
    assert "Red Hat:enterprise_linux:9::baseos" in status.output and "last update:" in status.output
    as_json = runner.invoke(app, ["status", "--vuln-db", str(store), "-o", "json"])
    assert '"vulnerability_count": 1' in as_json.output
    missing = runner.invoke(app, ["update", "--source", str(root), "--ecosystem", "Go", "--vuln-db", str(store)])
    assert missing.exit_code != 0 and "mirror has no export" in str(missing.exception)


def test_cli_import_reports_skips(tmp_path: Path) -> None:
    from .conftest import OSV

    runner = CliRunner()
    result = runner.invoke(app, ["import", str(OSV / "Invalid"), str(OSV / "Go"), "--vuln-db",
                                 str(tmp_path / "v.sqlite")])
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output and "2 skipped" in result.output
