"""The streaming tar reader agrees with Python's tarfile on every format tarfile writes."""

from __future__ import annotations

import io
import tarfile

import pytest

from ci_gate.sources.tarstream import TarFormatError, TarReader

LONG = "very/" * 40 + "long-name.txt"


def make_tar(fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
        for name, data in (("a.txt", b"alpha"), (LONG, b"long" * 300), ("empty", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o4755
            info.uid = info.gid = 1000
            archive.addfile(info, io.BytesIO(data))
        for name, kind, target in (("d", tarfile.DIRTYPE, ""), ("s", tarfile.SYMTYPE, "/" + LONG),
                                   ("h", tarfile.LNKTYPE, "a.txt")):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            archive.addfile(info)
    return out.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_members_match_tarfile(fmt: int) -> None:
    data = make_tar(fmt) if fmt != tarfile.USTAR_FORMAT else None
    if data is None:  # ustar cannot hold the long name: check prefix/name splitting on a shorter one
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=fmt) as archive:
            info = tarfile.TarInfo("p" * 120 + "/file")
            info.size = 3
            archive.addfile(info, io.BytesIO(b"abc"))
        data = out.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        expected = [(m.name, m.size, m.mode, m.linkname, m.offset_data) for m in archive]
    reader = TarReader(io.BytesIO(data))
    seen = []
    contents = {}
    for member in reader:
        seen.append((member.name.rstrip("/"), member.size, member.mode, member.linkname, member.offset_data))
        contents[member.name] = reader.read(1 << 20)
    assert seen == expected
    if fmt != tarfile.USTAR_FORMAT:
        assert contents[LONG] == b"long" * 300
        assert contents["a.txt"] == b"alpha"


def test_partial_reads_then_skip_to_the_next_member() -> None:
    reader = TarReader(io.BytesIO(make_tar(tarfile.PAX_FORMAT)))
    names = []
    for member in reader:
        names.append(member.name)
        if member.name == LONG:
            assert reader.read(4) == b"long"
    assert names[:3] == ["a.txt", LONG, "empty"]


def test_non_tar_input_fails_at_the_first_header() -> None:
    with pytest.raises(TarFormatError, match="checksum"):
        list(TarReader(io.BytesIO(b"this is not a tar archive" * 40)))


def test_truncated_tar_is_reported() -> None:
    data = make_tar(tarfile.PAX_FORMAT)
    with pytest.raises(TarFormatError, match="end"):
        reader = TarReader(io.BytesIO(data[:1300]))
        for _ in reader:
            pass


def test_empty_stream_is_an_empty_layer() -> None:
    assert list(TarReader(io.BytesIO(b""))) == []


def test_base256_numbers_are_decoded() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo("big-uid")
        info.uid = 10**10  # too large for octal: GNU base-256
        archive.addfile(info, io.BytesIO(b""))
    (member,) = list(TarReader(io.BytesIO(out.getvalue())))
    assert member.uid == 10**10
