"""Real rpm databases for tests: packages built with rpmbuild and installed with Debian's `rpm`.

Debian's rpm 4.18 writes only the SQLite backend. The Berkeley DB hash `Packages` file (RHEL 7/8)
and the NDB `Packages.db` (SUSE) are written here from their format descriptions (see
`ci_gate.analyze.catalogers.rpm_db`), holding the very header blobs rpm wrote to SQLite; syft (its
go-rpmdb reader) reading the same packages from them is the check that they are faithful.
"""

from __future__ import annotations

import sqlite3
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import require_tool

OS_RELEASE = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'

SPECS = {
    "hello-ci": """Name: hello-ci
Version: 1.0
Release: 3.el9
Epoch: 2
Summary: a test package with an epoch
License: MIT and (BSD or GPLv2+)
Vendor: ci-gate tests
BuildArch: noarch
%description
""" + "A long description makes this header span several Berkeley DB overflow pages. " * 150 + """
%install
mkdir -p %{buildroot}/usr/share/hello-ci
echo hi > %{buildroot}/usr/share/hello-ci/hello.txt
%files
/usr/share/hello-ci/hello.txt
""",
    "libdemo": """Name: libdemo
Version: 3.1
Release: 1
Summary: an arch package
License: GPL-2.0-or-later
%description
test
%install
mkdir -p %{buildroot}/usr/lib/libdemo
echo x > %{buildroot}/usr/lib/libdemo/f
%files
/usr/lib/libdemo/f
""",
    "tool": """Name: tool
Version: 0.5
Release: 7
Summary: another arch package
License: ASL 2.0
%description
test
%install
mkdir -p %{buildroot}/usr/lib/tool
echo x > %{buildroot}/usr/lib/tool/f
%files
/usr/lib/tool/f
""",
}


@dataclass(frozen=True)
class RpmRoots:
    """Three root filesystems holding the same installed packages in the three backends."""

    sqlite: Path
    bdb: Path
    ndb: Path
    blobs: tuple[bytes, ...]


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed: {(result.stdout + result.stderr)[-2000:]}")


def build_rpm_roots(work: Path) -> RpmRoots:
    require_tool("rpmbuild")
    require_tool("rpm")
    top = work / "rpmbuild"
    for name, spec in SPECS.items():
        spec_path = work / f"{name}.spec"
        spec_path.write_text(spec)
        _run(["rpmbuild", "--define", f"_topdir {top}", "--target", "x86_64", "-bb", str(spec_path)])
    packages = sorted(str(path) for path in top.glob("RPMS/*/*.rpm"))
    sqlite_root = work / "sqlite"
    (sqlite_root / "etc").mkdir(parents=True)
    (sqlite_root / "etc/os-release").write_text(OS_RELEASE)
    _run(["rpm", "--root", str(sqlite_root), "--dbpath", "/var/lib/rpm", "--initdb"])
    _run(["rpm", "--root", str(sqlite_root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts",
          "--ignorearch", "--ignoreos", *packages])
    database = sqlite_root / "var/lib/rpm/rpmdb.sqlite"
    with sqlite3.connect(database) as connection:
        blobs = tuple(bytes(row[0]) for row in connection.execute("SELECT blob FROM Packages ORDER BY hnum"))
    for extra in ("rpmdb.sqlite-shm", "rpmdb.sqlite-wal", ".rpm.lock"):
        (sqlite_root / "var/lib/rpm" / extra).unlink(missing_ok=True)
    roots = {}
    for backend, file_name, writer in (("bdb", "Packages", write_berkeley_db), ("ndb", "Packages.db", write_ndb)):
        root = work / backend
        (root / "etc").mkdir(parents=True)
        (root / "etc/os-release").write_text(OS_RELEASE)
        (root / "var/lib/rpm").mkdir(parents=True)
        (root / "var/lib/rpm" / file_name).write_bytes(writer(blobs))
        roots[backend] = root
    return RpmRoots(sqlite=sqlite_root, bdb=roots["bdb"], ndb=roots["ndb"], blobs=blobs)


# --- Berkeley DB hash database (db_page.h) ------------------------------------------------------

PAGE_SIZE = 4096
HEADER = 26


def _page_header(page_number: int, previous: int, next_page: int, entries: int, free_offset: int,
                 page_type: int, order: str = "<") -> bytes:
    return (b"\x00" * 8 + struct.pack(order + "IIIHHBB", page_number, previous, next_page, entries, free_offset,
                                      0, page_type))


def write_berkeley_db(blobs: tuple[bytes, ...], order: str = "<") -> bytes:
    """A hash database: metadata page, one hash page of key/H_OFFPAGE pairs, overflow chains.
    `order` is the byte order of the machine that wrote it: `<` little-endian, `>` big-endian."""
    pages: dict[int, bytes] = {}
    next_free = 2  # page 0 metadata, page 1 the hash page
    items: list[tuple[bytes, bytes]] = []
    for number, blob in enumerate(blobs, start=1):
        first = next_free
        chunks = [blob[i:i + PAGE_SIZE - HEADER] for i in range(0, len(blob), PAGE_SIZE - HEADER)]
        for position, chunk in enumerate(chunks):
            page_number = next_free
            next_page = page_number + 1 if position < len(chunks) - 1 else 0
            previous = page_number - 1 if position else 0
            header = _page_header(page_number, previous, next_page, 1, len(chunk), 7, order)
            pages[page_number] = (header + chunk).ljust(PAGE_SIZE, b"\x00")
            next_free += 1
        key = b"\x01" + struct.pack(order + "I", number)  # H_KEYDATA: the package's instance number
        value = b"\x03\x00\x00\x00" + struct.pack(order + "II", first, len(blob))  # H_OFFPAGE
        items.append((key, value))
    # The instance counter record rpm keeps under key 0: a small inline value the reader skips.
    items.insert(0, (b"\x01" + struct.pack(order + "I", 0), b"\x01" + struct.pack(order + "I", len(blobs))))
    body = bytearray(PAGE_SIZE)
    offsets: list[int] = []
    low = PAGE_SIZE
    for key, value in items:
        for item in (key, value):
            low -= len(item)
            body[low:low + len(item)] = item
            offsets.append(low)
    body[:HEADER] = _page_header(1, 0, 0, len(offsets), low, 13, order)
    for index, offset in enumerate(offsets):
        struct.pack_into(order + "H", body, HEADER + 2 * index, offset)
    pages[1] = bytes(body)
    last_page = next_free - 1
    meta = bytearray(PAGE_SIZE)
    struct.pack_into(order + "IIII", meta, 8, 0, 0x061561, 9, PAGE_SIZE)  # page no, magic, version, size
    meta[24] = 0  # no encryption
    meta[25] = 8  # hash metadata page
    struct.pack_into(order + "III", meta, 28, 0, last_page, 1)  # free list, last page, partitions
    struct.pack_into(order + "II", meta, 40, len(blobs), len(blobs))  # key and record counts
    struct.pack_into(order + "IIIIII", meta, 72, 0, 1, 0, 0, len(blobs) + 1, 0)  # max bucket, masks, ...
    pages[0] = bytes(meta)
    return b"".join(pages[number] for number in range(last_page + 1))


# --- NDB (rpm lib/backend/ndb/rpmpkg.c) ---------------------------------------------------------


def write_ndb(blobs: tuple[bytes, ...]) -> bytes:
    """One slot page (header + 254 slots) then 16-byte-aligned blobs `BlbS` + header blob + tail."""
    slots = bytearray()
    area = bytearray()
    block = 4096 // 16  # blobs start after the slot page, offsets count 16-byte blocks
    for number, blob in enumerate(blobs, start=1):
        record = struct.pack("<4sIII", b"BlbS", number, zlib.adler32(blob), len(blob)) + blob
        record += struct.pack("<4sII", b"BlbE", zlib.adler32(blob), len(blob))  # tail
        record = record.ljust((len(record) + 15) // 16 * 16, b"\x00")
        slots += struct.pack("<4sIII", b"Slot", number, block, len(record) // 16)
        block += len(record) // 16
        area += record
    while len(slots) < (4096 - 32):
        slots += struct.pack("<4sIII", b"Slot", 0, 0, 0)
    header = struct.pack("<4sIII16x", b"RpmP", 0, 1, 1)
    return header + bytes(slots) + bytes(area)
