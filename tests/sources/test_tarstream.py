"""The streaming tar reader agrees with Python's tarfile on every format tarfile writes."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from ci_gate.sources.tarstream import (
    MAX_RECORD_BYTES,
    MetadataBudget,
    TarFormatError,
    TarMetadataLimitError,
    TarReader,
)
from tests.support import hostile

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


# --- hostile headers -----------------------------------------------------------------------------------


def _members(data: bytes, budget: MetadataBudget | None = None) -> list[tuple[str, int]]:
    return [(member.name, member.size) for member in TarReader(io.BytesIO(data), budget)]


def test_a_negative_pax_size_is_refused() -> None:
    data = b"".join(hostile.layer(hostile.data_member("etc/x", b"", pax={"size": "-5"})))
    with pytest.raises(TarFormatError, match="negative PAX size"):
        _members(data)


def test_pax_records_are_written_and_read_back_exactly() -> None:
    # The corpus writer's own PAX records must be what tar readers expect, or the tests below prove nothing.
    data = b"".join(hostile.layer(hostile.data_member("x" * 150, b"abc", pax={"uid": "77"})))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert [(m.name, m.uid, m.size) for m in archive.getmembers()] == [("x" * 150, 77, 3)]
    assert _members(data) == [("x" * 150, 3)]


@pytest.mark.parametrize("carrier", ["pax", "gnu"])
def test_a_name_longer_than_path_max_is_refused(carrier: str) -> None:
    name = "d/" * 2100 + "f"  # 4,201 bytes
    if carrier == "pax":
        data = b"".join(hostile.layer(hostile.data_member(name, b"x")))
    else:
        data = b"".join(hostile.layer([hostile.gnu_long_name(name)], hostile.data_member("short", b"x")))
    with pytest.raises(TarFormatError, match="longer than PATH_MAX"):
        _members(data)
    at_limit = "d/" * 2047 + "f"  # 4,095 bytes: allowed
    assert _members(b"".join(hostile.layer(hostile.data_member(at_limit, b"x")))) == [(at_limit, 1)]


def test_one_metadata_budget_spans_every_layer_of_an_image() -> None:
    layer = b"".join(hostile.layer(*(hostile.data_member(f"{index}/" + "n" * 3000, b"") for index in range(10))))
    budget = MetadataBudget(100_000)
    assert len(_members(layer, budget)) == 10  # ~60 KB of names and PAX records: within the budget
    with pytest.raises(TarMetadataLimitError, match="exceed 100,000 bytes"):
        _members(layer, budget)  # the same again, as the next layer of the same image: over it
    assert len(_members(layer, MetadataBudget(100_000))) == 10  # a new image starts afresh


def test_one_pax_record_is_bounded_on_its_own() -> None:
    data = b"".join(hostile.layer(hostile.data_member("x", b"", pax={"comment": "c" * (MAX_RECORD_BYTES + 1)})))
    with pytest.raises(TarFormatError, match="oversized tar metadata record"):
        _members(data)


def test_a_pax_record_whose_length_runs_past_its_header_is_refused() -> None:
    records = b"999 path=x\n"
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = len(records)
    data = (info.tobuf(format=tarfile.USTAR_FORMAT) + records + hostile.padding(len(records))
            + b"".join(hostile.layer(hostile.data_member("y", b""))))
    with pytest.raises(TarFormatError, match="invalid PAX record length"):
        _members(data)


def test_names_that_are_not_utf8_read_as_replacement_characters() -> None:
    info = tarfile.TarInfo("caf\udce9")
    data = info.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="surrogateescape") + b"\0" * 1024
    [(name, _)] = _members(data)
    assert name == "caf\ufffd"
    name.encode("utf-8")  # never a lone surrogate that a report writer would choke on


def test_a_base256_size_beyond_any_disk_is_refused() -> None:
    # Found by fuzzing: a 12-byte base-256 size field holds up to 2**95, which no read or seek can take.
    block = bytearray(tarfile.TarInfo("x").tobuf(format=tarfile.USTAR_FORMAT))
    block[124:136] = b"\x80" + (1 << 80).to_bytes(11, "big")
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    with pytest.raises(TarFormatError, match="implausible member size"):
        _members(bytes(block) + b"\0" * 1024)


def test_the_header_checksum_counts_every_byte() -> None:
    """The checksum's byte sum (computed in C) is exact at its extremes, and one changed byte of a
    header anywhere, the name's last byte or the padding, fails the check."""
    from ci_gate.sources.tarstream import _byte_sum

    rng = random.Random(18)
    for block in (bytes(512), b"\xff" * 512, b"\xff" * 256 + bytes(256), *(rng.randbytes(512) for _ in range(500))):
        assert _byte_sum(block) == sum(block)
    good = make_tar(tarfile.GNU_FORMAT)  # the first header: "a.txt"
    for position in (0, 99, 157, 300, 511):
        damaged = bytearray(good)
        damaged[position] = (damaged[position] + 1) % 256
        with pytest.raises(TarFormatError, match="checksum"):
            list(TarReader(io.BytesIO(bytes(damaged))))
