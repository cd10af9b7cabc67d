"""The constant-memory zip reader agrees with zipfile and refuses damaged archives."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ci_gate.vulns.importers.zipstream import ZipFormatError, read_members


def test_reads_what_zipfile_wrote(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr(zipfile.ZipInfo("dir/"), b"")
        out.writestr("stored.json", b'{"id": "A"}', compress_type=zipfile.ZIP_STORED)
        out.writestr("deflated.json", b'{"id": "B"}' * 1000, compress_type=zipfile.ZIP_DEFLATED)
        with out.open("forced-zip64.json", "w", force_zip64=True) as member:
            member.write(b'{"id": "C"}')
        out.writestr("big.json", b"x" * 30000, compress_type=zipfile.ZIP_DEFLATED)
    read = {member.name: data for member, data in read_members(archive, max_size=20000)}
    assert read == {"stored.json": b'{"id": "A"}', "deflated.json": b'{"id": "B"}' * 1000,
                    "forced-zip64.json": b'{"id": "C"}', "big.json": None}


def test_refuses_damage(tmp_path: Path) -> None:
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        out.writestr("one.json", b'{"id": "A", "padding": "' + b"y" * 2000 + b'"}')
    data = archive.read_bytes()
    (tmp_path / "truncated.zip").write_bytes(data[:-30])
    with pytest.raises(ZipFormatError, match="end-of-central-directory"):
        list(read_members(tmp_path / "truncated.zip", 1 << 20))
    damaged = bytearray(data)
    damaged[50:58] = b"\xff" * 8
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    with pytest.raises(ZipFormatError):
        list(read_members(tmp_path / "damaged.zip", 1 << 20))
