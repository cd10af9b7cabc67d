"""The store and the OSV importer: round trip, incremental updates, bad input, atomicity."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from ci_gate.errors import VulnerabilityDataError
from ci_gate.vulns import records as records_module
from ci_gate.vulns.importers.osv import import_paths
from ci_gate.vulns.store import VulnerabilityStore, default_path, resolve_path

from .conftest import OSV, zip_folder


def test_import_folder_round_trips_a_record(store_path: Path) -> None:
    with VulnerabilityStore(store_path) as store:
        record = store.record("GHSA-jfh8-c2jp-5v3q")
        assert record is not None
        assert record.aliases == ("CVE-2021-44228",)
        assert record.severity == "critical"
        assert record.best_cvss() is not None and record.best_cvss().base_score == 10.0  # type: ignore[union-attr]
        assert record.published == "2021-12-10T00:40:56.000000Z"
        assert [a.fixed_versions for a in record.affected] == [("2.15.0", "2.3.1", "2.12.2")]
        assert record.source.endswith("osv") and record.imported_at
        v4 = store.record("GHSA-67hx-6x53-jw92")
        assert v4 is not None and v4.best_cvss(("4.0",)) is not None
        assert v4.best_cvss(("4.0",)).base_score == 8.7  # type: ignore[union-attr]
        status = store.status()
    ecosystems = dict(status.ecosystems)
    assert ecosystems["Debian:12"] == 2 and ecosystems["Debian:11"] == 1
    assert ecosystems["PyPI"] == 4 and ecosystems["FooEco"] == 1
    assert status.vulnerability_count == 16 and status.withdrawn_count == 1
    assert status.updated_at and status.built_at and status.newest_modified.startswith("2024-01-01")
    assert len(status.sources) == 1 and status.sources[0].added == 16


def test_pep503_lookup_key(store_path: Path) -> None:
    with VulnerabilityStore(store_path) as store:
        hits = store.affected("PyPI", ["requests"])
        assert sorted(vuln for vuln, _ in hits) == ["GHSA-j8r2-6x86-q33q", "PYSEC-0000-WITHDRAWN"]
        assert store.affected("PyPI", ["zope-interface"])[0][1].name == "zope.interface"


def test_reimport_is_idempotent_and_incremental(tmp_path: Path, osv_tree: Path, store_path: Path) -> None:
    again = import_paths([osv_tree], store_path).total
    assert (again.added, again.updated, again.unchanged) == (0, 0, 16)
    # A newer version of one record replaces it; an older one is ignored.
    document = json.loads((osv_tree / "PyPI" / "GHSA-j8r2-6x86-q33q.json").read_text())
    newer = dict(document, modified="2025-01-01T00:00:00Z", summary="updated summary")
    older = dict(document, modified="2020-01-01T00:00:00Z", summary="stale summary")
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    (tmp_path / "older.json").write_text(json.dumps(older))
    first = import_paths([tmp_path / "newer.json"], store_path).total
    second = import_paths([tmp_path / "older.json"], store_path).total
    assert (first.updated, second.unchanged) == (1, 1)
    with VulnerabilityStore(store_path) as store:
        record = store.record("GHSA-j8r2-6x86-q33q")
        assert record is not None and record.summary == "updated summary"
        assert len(store.affected("PyPI", ["requests"])) == 2  # replaced, not duplicated


def test_zip_import_matches_folder_import(tmp_path: Path, osv_tree: Path) -> None:
    archive = zip_folder(osv_tree / "npm", tmp_path / "all.zip")
    result = import_paths([archive], tmp_path / "zip.sqlite")
    assert result.total.added == 2
    with VulnerabilityStore(tmp_path / "zip.sqlite") as store:
        assert [v for v, _ in store.affected("npm", ["@babel/traverse"])] == ["GHSA-67hx-6x53-jw92"] * 2


def test_invalid_documents_are_skipped_and_counted(tmp_path: Path, osv_tree: Path) -> None:
    result = import_paths([OSV / "Invalid", osv_tree / "Go"], tmp_path / "store.sqlite").total
    assert result.skipped == 2 and result.added == 1
    assert result.problems is not None and any("not valid JSON" in p for p in result.problems)
    assert any("missing id" in p for p in result.problems)


def test_unknown_ecosystem_is_stored_and_counted(tmp_path: Path, osv_tree: Path) -> None:
    result = import_paths([osv_tree / "Unknown"], tmp_path / "store.sqlite").total
    assert result.added == 1 and result.unknown_ecosystems == 1
    with VulnerabilityStore(tmp_path / "store.sqlite") as store:
        assert store.ecosystems() == ["FooEco"]


def test_ecosystem_filter(tmp_path: Path, osv_tree: Path) -> None:
    result = import_paths([osv_tree], tmp_path / "store.sqlite", ecosystems=["Alpine", "Debian:11"]).total
    assert result.added == 2  # ALPINE-CVE-2023-5678 and DSA-5532-1 (which also names Debian:11)


def _snapshot(path: Path) -> list[tuple[str, str]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT id, modified FROM vulnerabilities ORDER BY id").fetchall()
    finally:
        connection.close()


def test_corrupt_zip_leaves_the_store_intact(tmp_path: Path, osv_tree: Path, store_path: Path) -> None:
    before = _snapshot(store_path)
    good = zip_folder(osv_tree / "Maven", tmp_path / "good.zip").read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(VulnerabilityDataError, match="not a valid zip"):
        import_paths([truncated], store_path)
    # Flip bytes inside a member's compressed data: the CRC check fails.
    damaged = bytearray(good)
    offset = good.index(b"PK\x03\x04") + 30 + len("GHSA-jfh8-c2jp-5v3q.json") + 20
    damaged[offset:offset + 8] = b"\x00" * 8
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    with pytest.raises(VulnerabilityDataError, match="corrupt"):
        import_paths([osv_tree / "npm", tmp_path / "damaged.zip"], store_path)
    assert _snapshot(store_path) == before


def test_failure_mid_import_rolls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_path: Path) -> None:
    before = _snapshot(store_path)
    export = tmp_path / "many"
    export.mkdir()
    for number in range(2500):
        (export / f"X-{number}.json").write_text(json.dumps({
            "id": f"X-{number}", "modified": "2024-05-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": f"pkg{number}"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]}))
    real = records_module.from_osv
    calls = {"n": 0}

    def failing(*args: object, **kwargs: object) -> records_module.VulnerabilityRecord:
        calls["n"] += 1
        if calls["n"] == 2200:  # after two batches were written inside the transaction
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("ci_gate.vulns.importers.osv.from_osv", failing)
    with pytest.raises(RuntimeError):
        import_paths([export], store_path)
    assert _snapshot(store_path) == before
    with VulnerabilityStore(store_path) as store:
        assert store.affected("PyPI", ["pkg1"]) == []


def test_killed_import_leaves_a_usable_store(tmp_path: Path, store_path: Path) -> None:
    """SIGKILL a real `ci-gate db import` process half-way: the old contents survive."""
    before = _snapshot(store_path)
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as out:
        for number in range(20000):
            out.writestr(f"Y-{number}.json", json.dumps({
                "id": f"Y-{number}", "modified": "2024-05-01T00:00:00Z", "summary": "x" * 200,
                "affected": [{"package": {"ecosystem": "npm", "name": f"pkg{number}"},
                              "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]}]}))
    journal = store_path.with_name(store_path.name + "-journal")
    # A second source that never ends: a FIFO whose only writer (this test) never writes. The import
    # writes the zip's records, then waits on it inside its transaction, so it is certainly still
    # running, half-way, when it is killed (no timing guess: a fast runner cannot finish first).
    never_ending = tmp_path / "more.json"
    os.mkfifo(never_ending)
    writer = os.open(never_ending, os.O_RDWR)  # keeps the FIFO open: the import's read blocks, never sees EOF
    process = subprocess.Popen([sys.executable, "-m", "ci_gate.cli", "db", "import", "--vuln-db", str(store_path),
                                str(archive), str(never_ending)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        # Wait until the import has written into the store (the rollback journal holds the old pages).
        while time.monotonic() < deadline and process.poll() is None:
            if journal.exists() and journal.stat().st_size > 0:
                break
            time.sleep(0.01)
        assert process.poll() is None, "the import ended before it could be interrupted"
        assert journal.exists() and journal.stat().st_size > 0, "the import never wrote into the store"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        os.close(writer)
    assert _snapshot(store_path) == before
    with VulnerabilityStore(store_path) as store:
        assert store.affected("npm", ["pkg10"]) == []
        assert store.record("GHSA-p6mc-m468-83gw") is not None


def test_missing_and_foreign_store_files(tmp_path: Path) -> None:
    with pytest.raises(VulnerabilityDataError, match=r"absent\.sqlite does not exist: create it with `ci-gate db"):
        VulnerabilityStore(tmp_path / "absent.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(VulnerabilityDataError, match="not a ci-gate vulnerability store"):
        VulnerabilityStore(tmp_path / "junk.sqlite")
    with pytest.raises(VulnerabilityDataError, match="does not exist"):
        import_paths([tmp_path / "nothing.zip"], tmp_path / "new.sqlite")
    assert not (tmp_path / "new.sqlite").exists()


def test_store_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("CI_GATE_VULN_DB", raising=False)
    assert default_path() == tmp_path / "data" / "ci-gate" / "vulns.sqlite"
    assert resolve_path() == default_path()
    monkeypatch.setenv("CI_GATE_VULN_DB", str(tmp_path / "env.sqlite"))
    assert resolve_path() == tmp_path / "env.sqlite"
    assert resolve_path(tmp_path / "flag.sqlite") == tmp_path / "flag.sqlite"


def test_odd_shapes_are_skipped_not_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    base = {"modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "x"}, "versions": ["1.0"]}]}
    references = ["junk", {"type": "WEB", "url": "u"}]
    (folder / "a.json").write_text(json.dumps({**base, "id": "OK-1", "references": references}))
    (folder / "b.json").write_text(json.dumps({**base, "id": "BAD-1", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "x"}, "versions": [1, 2]}]}))
    (folder / "c.json").write_text(json.dumps({**base, "id": "BAD-2", "modified": "yesterday"}))
    (folder / "d.json").write_text(json.dumps([{"id": "LIST-1"}]))
    (folder / "e.json").write_text(json.dumps({**base, "id": "BAD-3", "affected": [
        {"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": 1}]}]}]}))
    result = import_paths([folder], tmp_path / "store.sqlite").total
    assert (result.added, result.skipped) == (1, 4)
    with VulnerabilityStore(tmp_path / "store.sqlite") as store:
        record = store.record("OK-1")
        assert record is not None and record.references == ("u",)
