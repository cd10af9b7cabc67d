"""Report and output files are written whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.errors import ReportError
from ci_gate.fileio import atomic_text_writer, write_atomic


def test_write_atomic_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "analysis.json"
    target.write_text("previous")
    with pytest.raises(RuntimeError), atomic_text_writer(target) as out:
        out.write('{"half": ')
        raise RuntimeError("the encoder failed halfway")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["analysis.json"]


def test_a_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="does the folder"):
        write_atomic(tmp_path / "no" / "such" / "dir" / "out.json", "{}")
