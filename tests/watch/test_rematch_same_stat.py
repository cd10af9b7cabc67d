"""A saved analysis replaced by different bytes of the same size under the same mtime (`touch -r`, a
tool that keeps timestamps) is judged on its new content, not trusted on its size and mtime."""

from __future__ import annotations

import os
from pathlib import Path

from ci_gate.saved_sbom import save_analysis
from ci_gate.vulns.importers.osv import import_paths
from tests.watch.conftest import osv_record
from tests.watch.test_rematch import _image, _run, _write


def test_same_size_same_mtime_different_content_is_indexed_again(tmp_path: Path) -> None:
    store, sboms, state = tmp_path / "vulns.sqlite", tmp_path / "sboms", tmp_path / "state.sqlite"
    import_paths([_write(tmp_path / "a" / "DSA-1.json", osv_record("DSA-1", "zlib", "1.2.13-1"))], store)
    saved = save_analysis(_image(1, ("libfoo", "1.0-1")), sboms)
    assert _run(state, sboms, store) == ([], 0)  # the baseline: libfoo

    replacement = save_analysis(_image(1, ("libbar", "1.0-1")), tmp_path / "other")
    new_bytes = replacement.read_bytes()
    assert len(new_bytes) == saved.stat().st_size and new_bytes != saved.read_bytes()
    stamp = saved.stat()
    saved.write_bytes(new_bytes)
    os.utime(saved, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # touch -r: size and mtime as before
    assert (saved.stat().st_size, saved.stat().st_mtime_ns) == (stamp.st_size, stamp.st_mtime_ns)
    assert _run(state, sboms, store) == ([], 0)  # the new content is a new baseline

    # the day's advisory for the package the image holds NOW is an event (it was silently missed:
    # the old content, libfoo, stayed indexed)
    import_paths([_write(tmp_path / "b" / "DSA-2.json", osv_record("DSA-2", "libbar", "1.0-2"))], store)
    diffs, _ = _run(state, sboms, store)
    assert [(tag, [e["CVE_ID"] for e in result["added"]]) for tag, result in diffs] == [
        ("registry.example/app1:1", ["DSA-2"])]
