"""The re-match engine on a real store: KEV listing changes, shared variants, new and removed images."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path

from ci_gate.model import Analysis, Distro, ImageIdentity, Location, Package
from ci_gate.rematch import RematchState
from ci_gate.saved_sbom import save_analysis
from ci_gate.vulns.importers.osv import import_paths
from ci_gate.vulns.store import VulnerabilityStore, utc_now
from tests.watch.conftest import osv_record

DEBIAN = Distro(id="debian", version_id="12", version_codename="bookworm")


def _image(number: int, *packages: tuple[str, str]) -> Analysis:
    digest = f"sha256:{number:064x}"
    return Analysis(identity=ImageIdentity(reference=f"registry:app{number}", scheme="registry",
                                           manifest_digest=digest, config_digest=digest,
                                           repo_tags=(f"registry.example/app{number}:1",)),
                    distro=DEBIAN, packages=tuple(
                        Package(name=name, version=version, type="deb", metadata={"source": name},
                                locations=(Location("/var/lib/dpkg/status", 0),)) for name, version in packages))


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def _run(state: Path, sboms: Path, store: Path) -> tuple[list[tuple[str, dict[str, list[dict[str, object]]]]], int]:
    with VulnerabilityStore(store) as vulns, RematchState(state) as watch:
        result = watch.rematch(vulns, sboms)
        watch.commit()
    return [(d.tag, d.result()) for d in result.diffs], result.rematched_variants


def test_kev_listing_updates_only_images_with_the_cve(tmp_path: Path) -> None:
    store, sboms, state = tmp_path / "vulns.sqlite", tmp_path / "sboms", tmp_path / "state.sqlite"
    import_paths([_write(tmp_path / "a" / "DSA-1.json", osv_record("DSA-1", "openssl", "3.0.13-1",
                                                                    aliases=("CVE-2099-1111",)))], store)
    save_analysis(_image(1, ("openssl", "3.0.11-1"), ("zlib", "1.2.13-1")), sboms)
    save_analysis(_image(2, ("openssl", "3.0.11-1")), sboms)  # the same variant as image 1's openssl
    save_analysis(_image(3, ("zlib", "1.2.13-1")), sboms)
    assert _run(state, sboms, store) == ([], 0)  # the baseline

    _write(tmp_path / "kev" / "known_exploited_vulnerabilities.json", {
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2099.01.01",
        "dateReleased": "2099-01-01T00:00:00.000Z", "count": 1,
        "vulnerabilities": [{"cveID": "CVE-2099-1111", "vendorProject": "OpenSSL", "product": "OpenSSL",
                             "vulnerabilityName": "flaw", "dateAdded": "2099-01-01", "shortDescription": "",
                             "requiredAction": "", "dueDate": "2099-01-21",
                             "knownRansomwareCampaignUse": "Unknown", "notes": ""}]})
    import_paths([tmp_path / "kev"], store)
    diffs, rematched = _run(state, sboms, store)
    assert rematched == 1  # one openssl variant, shared by two images
    assert [tag for tag, _ in diffs] == ["registry.example/app1:1", "registry.example/app2:1"]
    for _, result in diffs:
        assert result["added"] == [] and result["removed"] == []
        assert [(e["CVE_ID"], e["KEV"]) for e in result["updated"]] == [("DSA-1", True)]


def test_new_images_are_a_baseline_and_removed_ones_are_forgotten(tmp_path: Path) -> None:
    store, sboms, state = tmp_path / "vulns.sqlite", tmp_path / "sboms", tmp_path / "state.sqlite"
    import_paths([_write(tmp_path / "a" / "DSA-1.json", osv_record("DSA-1", "openssl", "3.0.13-1"))], store)
    first = save_analysis(_image(1, ("openssl", "3.0.11-1")), sboms)
    _run(state, sboms, store)
    save_analysis(_image(2, ("openssl", "3.0.11-1")), sboms)
    first.unlink()
    import_paths([_write(tmp_path / "b" / "DSA-2.json", osv_record("DSA-2", "openssl", "3.0.14-1"))], store)
    diffs, _ = _run(state, sboms, store)
    assert diffs == []  # image 1 is gone; image 2 is new: its first look is its baseline, DSA-2 included
    import_paths([_write(tmp_path / "c" / "DSA-3.json", osv_record("DSA-3", "openssl", "3.0.15-1"))], store)
    diffs, _ = _run(state, sboms, store)
    assert [(tag, [e["CVE_ID"] for e in result["added"]]) for tag, result in diffs] == [
        ("registry.example/app2:1", ["DSA-3"])]


def test_a_state_that_keyed_files_by_absolute_path_keeps_its_baseline(tmp_path: Path) -> None:
    """A state written before files were known by name (absolute path, `size:mtime_ns`) is adopted on
    upgrade: its images are not re-baselined, so the day's new advisory is still an event."""
    store, sboms, state = tmp_path / "vulns.sqlite", tmp_path / "sboms", tmp_path / "state.sqlite"
    import_paths([_write(tmp_path / "a" / "DSA-1.json", osv_record("DSA-1", "openssl", "3.0.13-1"))], store)
    saved = save_analysis(_image(1, ("openssl", "3.0.11-1")), sboms)
    _run(state, sboms, store)
    with sqlite3.connect(state) as connection:  # as the previous release wrote it
        connection.execute("UPDATE images SET file = ?, fingerprint = ?", (
            str(saved.resolve()), f"{saved.stat().st_size}:{saved.stat().st_mtime_ns}"))
    import_paths([_write(tmp_path / "b" / "DSA-2.json", osv_record("DSA-2", "openssl", "3.0.14-1"))], store)
    diffs, _ = _run(state, sboms, store)
    assert [(tag, [e["CVE_ID"] for e in result["added"]]) for tag, result in diffs] == [
        ("registry.example/app1:1", ["DSA-2"])]
    with sqlite3.connect(state) as connection:  # adopted: its name, and its content hash from now on
        [(file, fingerprint)] = connection.execute("SELECT file, fingerprint FROM images").fetchall()
    assert file == saved.name and fingerprint.endswith(":" + hashlib.sha256(saved.read_bytes()).hexdigest())


def test_images_indexed_by_a_server_without_a_folder(tmp_path: Path) -> None:
    """serve's path: analyses indexed with add_image, then re-matched; a new image is a baseline, not an event."""
    store, state = tmp_path / "vulns.sqlite", tmp_path / "state.sqlite"
    import_paths([_write(tmp_path / "a" / "DSA-1.json", osv_record("DSA-1", "openssl", "3.0.13-1"))], store)

    def add(watch: RematchState, vulns: VulnerabilityStore, number: int) -> None:
        package = {"name": "openssl", "version": "3.0.11-1", "type": "deb", "metadata": {"source": "openssl"},
                   "locations": [{"path": "/var/lib/dpkg/status"}]}
        watch.add_image(f"sha256:{number:064x}", f"app:{number}", f"serve:{number}", "1", {"id": "debian",
                        "version_id": "12"}, [package], vulns.ecosystems(), [])

    with VulnerabilityStore(store) as vulns, RematchState(state) as watch:
        add(watch, vulns, 1)
        assert watch.rematch(vulns).diffs == []
        watch.commit()
    import_paths([_write(tmp_path / "b" / "DSA-2.json", osv_record("DSA-2", "openssl", "3.0.14-1"))], store)
    with VulnerabilityStore(store) as vulns, RematchState(state) as watch:
        add(watch, vulns, 2)  # shares the changed openssl variant, but is seen for the first time
        diffs = watch.rematch(vulns).diffs
        watch.commit()
    assert [(d.tag, [e["CVE_ID"] for e in d.added]) for d in diffs] == [("app:1", ["DSA-2"])]


def _waiting_in_store_writer(thread: threading.Thread) -> bool:
    """True while `thread` is inside StoreWriter.__enter__: where an import waits for the store's write lock."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "__enter__" and frame.f_code.co_filename.endswith("store_writer.py"):
            return True
        frame = frame.f_back
    return False


def test_an_import_that_waited_for_the_write_lock_is_stamped_after_it(tmp_path: Path) -> None:
    """Re-matching asks for the records imported after the last stamp it saw (`changed_since`). An import
    stamped before it held the write lock could commit after an import stamped later, and a re-match in
    between would skip its records for good: the stamp must be taken once the lock is held."""
    store = tmp_path / "vulns.sqlite"
    import_paths([_write(tmp_path / "a" / "DSA-1.json", osv_record("DSA-1", "zlib", "1.2.13-2"))], store)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another import holds the store
    waiting = threading.Thread(target=import_paths, args=(
        [_write(tmp_path / "b" / "DSA-2.json", osv_record("DSA-2", "openssl", "3.0.13-1"))], store))
    waiting.start()
    try:
        deadline = time.monotonic() + 60
        while not _waiting_in_store_writer(waiting):
            assert waiting.is_alive() and time.monotonic() < deadline, "the second import never reached the lock"
            time.sleep(0.01)
        released = utc_now()
    finally:
        holder.execute("COMMIT")
        holder.close()
        waiting.join(60)
    with VulnerabilityStore(store) as vulns:
        record = vulns.record("DSA-2")
    assert record is not None and record.imported_at > released, (record, released)
