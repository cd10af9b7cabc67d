"""The three rpm database backends, read from bytes in pure Python: each yields header blobs.

- SQLite `rpmdb.sqlite` (RHEL/UBI 9, Fedora 33+, rpm >= 4.16): table `Packages(hnum, blob)`.
- Berkeley DB `Packages` (RHEL/CentOS/UBI 7-8, Amazon Linux 2): a hash database whose values (the
  headers) sit on overflow pages. Layout (Berkeley DB's dbinc/db_page.h): a metadata page (magic
  0x061561 at byte 12, page size at 20, last page number at 32); hash pages (type 13, or 2 before
  4.6) with a 26-byte header (entry count at 20, type at 25) followed by 16-bit offsets of
  key/value items; a value of type H_OFFPAGE (3) names the first overflow page (type 7) of a chain
  linked by the next-page field at 16; each overflow page carries data from byte 26, the last one
  up to its free-area offset (at 22).
- NDB `Packages.db` (SUSE, rpm's lib/backend/ndb/rpmpkg.c): a 32-byte header (`RpmP`, version 0,
  generation, slot page count), then slot pages of 16-byte slots (`Slot`, package index, block
  offset, block count), each naming a blob (`BlbS`, package index, checksum, length) at
  block offset x 16, the header blob right after the blob's 16-byte header.

Nothing here raises for bad input: problems come back as text, with the blobs that could be read.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

SQLITE_MAGIC = b"SQLite format 3\x00"
BDB_HASH_MAGIC = 0x00061561
NDB_HEADER_MAGIC = int.from_bytes(b"RpmP", "little")
NDB_SLOT_MAGIC = int.from_bytes(b"Slot", "little")
NDB_BLOB_MAGIC = int.from_bytes(b"BlbS", "little")
NDB_SLOT_SIZE = 16
NDB_SLOTS_PER_PAGE = 4096 // NDB_SLOT_SIZE
NDB_MAX_SLOT_PAGES = 2048

BDB_PAGE_HEADER = 26
BDB_OVERFLOW_PAGE = 7
BDB_HASH_PAGES = (2, 13)
BDB_HASH_METADATA_PAGE = 8
BDB_OFFPAGE_ITEM = 3
BDB_PAGE_SIZES = frozenset(2**power for power in range(9, 17))


@dataclass
class DatabaseRead:
    """The header blobs of one database and what went wrong reading it."""

    backend: str
    blobs: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def detect_backend(content: bytes) -> str:
    """sqlite, bdb, ndb, or unknown, from the file's magic numbers."""
    if content.startswith(SQLITE_MAGIC):
        return "sqlite"
    if len(content) >= 4 and int.from_bytes(content[:4], "little") == NDB_HEADER_MAGIC:
        return "ndb"
    if len(content) >= 16:
        magic_le = int.from_bytes(content[12:16], "little")
        magic_be = int.from_bytes(content[12:16], "big")
        if BDB_HASH_MAGIC in (magic_le, magic_be):
            return "bdb"
    return "unknown"


def read_database(content: bytes) -> DatabaseRead:
    """The header blobs of an rpm database of any backend; problems are reported, never raised."""
    backend = detect_backend(content)
    readers = {"sqlite": read_sqlite, "bdb": read_berkeley_db, "ndb": read_ndb}
    if backend not in readers:
        return DatabaseRead(
            "unknown", problems=["not an rpm database (no SQLite, Berkeley DB hash or NDB magic)"]
        )
    try:
        return readers[backend](content)
    except (struct.error, IndexError) as error:
        return DatabaseRead(backend, problems=[f"the {backend} database is cut off or corrupt ({error})"])


def read_sqlite(content: bytes) -> DatabaseRead:
    # Imported for the first SQLite rpmdb: an image without one (Debian, Alpine) never pays for it (~3 ms).
    import sqlite3

    result = DatabaseRead("sqlite")
    data = bytearray(content)
    # rpm keeps its database in WAL mode (header bytes 18-19 = 2); an in-memory copy cannot use
    # WAL, so mark it as a rollback-journal database: the main file's pages read the same.
    if len(data) > 20 and data[18] == 2 and data[19] == 2:
        data[18] = data[19] = 1
    try:
        with contextlib.closing(_open_sqlite(bytes(data))) as connection:
            rows = connection.execute("SELECT blob FROM Packages").fetchall()
    except (sqlite3.Error, OSError) as error:
        result.problems.append(f"the SQLite database cannot be read ({error})")
        return result
    result.blobs = [bytes(row[0]) for row in rows if isinstance(row[0], (bytes, memoryview))]
    return result


SQLITE_STEP_BUDGET = 50_000
"""Progress-handler calls (each 10,000 virtual-machine steps) one database may take: a real rpmdb
reads in a few hundred; a hostile one (a view with a runaway recursive query) is stopped."""


def _guard(connection: sqlite3.Connection) -> sqlite3.Connection:
    """Refuse work a package database never needs: untrusted schema functions, endless queries."""
    import sqlite3

    calls = 0

    def progress() -> int:
        nonlocal calls
        calls += 1
        return 1 if calls > SQLITE_STEP_BUDGET else 0

    connection.set_progress_handler(progress, 10_000)
    connection.execute("PRAGMA trusted_schema = OFF")
    connection.execute("PRAGMA query_only = ON")
    kind = connection.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
    if kind is None or kind[0] != "table":
        raise sqlite3.DatabaseError("it has no Packages table")
    return connection


def _open_sqlite(data: bytes) -> sqlite3.Connection:
    import sqlite3

    connection = sqlite3.connect(":memory:")
    deserialize = getattr(connection, "deserialize", None)
    if deserialize is not None:  # Python 3.11+
        deserialize(data)
        return _guard(connection)
    connection.close()
    # Python 3.10: sqlite needs a file. It is ours, private and deleted straight after opening.
    handle, name = tempfile.mkstemp(prefix="ci-gate-rpmdb-", suffix=".sqlite")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        connection = sqlite3.connect(f"file:{name}?mode=ro&immutable=1", uri=True)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # open it before unlinking
        return _guard(connection)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def read_berkeley_db(content: bytes) -> DatabaseRead:
    result = DatabaseRead("bdb")
    order = "<" if int.from_bytes(content[12:16], "little") == BDB_HASH_MAGIC else ">"
    page_size = struct.unpack_from(order + "I", content, 20)[0]
    last_page = struct.unpack_from(order + "I", content, 32)[0]
    encryption = content[24]
    page_type = content[25]
    if page_size not in BDB_PAGE_SIZES:
        result.problems.append(f"Berkeley DB page size {page_size} is not a power of two from 512 to 65536")
        return result
    if encryption != 0:
        result.problems.append("the Berkeley DB is encrypted")
        return result
    if page_type != BDB_HASH_METADATA_PAGE:
        result.problems.append(f"the first page has type {page_type}, not a hash metadata page")
        return result
    page_count = len(content) // page_size
    budget = _Budget(4 * len(content))
    if last_page >= page_count:
        result.problems.append(
            f"the database claims {last_page + 1} pages but holds {page_count}; it is truncated"
        )
        last_page = page_count - 1
    for page_number in range(last_page + 1):
        page = content[page_number * page_size : (page_number + 1) * page_size]
        if page[25] not in BDB_HASH_PAGES:
            continue
        entries = struct.unpack_from(order + "H", page, 20)[0]
        if entries % 2 or BDB_PAGE_HEADER + 2 * entries > page_size:
            result.problems.append(f"hash page {page_number} has a bad entry count {entries}")
            continue
        # Items come in key/value pairs; the value of each pair is the odd index.
        for item in range(1, entries, 2):
            offset = struct.unpack_from(order + "H", page, BDB_PAGE_HEADER + 2 * item)[0]
            if offset + 12 > page_size or page[offset] != BDB_OFFPAGE_ITEM:
                continue  # small inline values (the rpm instance counter), not headers
            first_page, length = struct.unpack_from(order + "II", page, offset + 4)
            if first_page in budget.seen:
                continue  # two items naming one chain: read it once
            budget.seen.add(first_page)
            blob = _overflow_chain(content, first_page, length, page_size, order, result.problems)
            if blob is not None:
                if not budget.spend(len(blob)):
                    result.problems.append("the database's items add up to far more than its size; stopped")
                    return result
                result.blobs.append(blob)
    return result


@dataclass
class _Budget:
    """Bytes a hostile database may make us collect (a few times its own size), and chains seen."""

    remaining: int
    seen: set[int] = field(default_factory=set)

    def spend(self, amount: int) -> bool:
        self.remaining -= amount
        return self.remaining >= 0


def _overflow_chain(
    content: bytes, first_page: int, length: int, page_size: int, order: str, problems: list[str]
) -> bytes | None:
    chunks: list[bytes] = []
    collected = 0
    seen: set[int] = set()
    page_number = first_page
    while page_number != 0:
        if page_number in seen or (page_number + 1) * page_size > len(content):
            problems.append(f"an overflow chain from page {first_page} is broken at page {page_number}")
            return None
        seen.add(page_number)
        page = content[page_number * page_size : (page_number + 1) * page_size]
        if page[25] != BDB_OVERFLOW_PAGE:
            problems.append(f"page {page_number} in an overflow chain is not an overflow page")
            return None
        next_page = struct.unpack_from(order + "I", page, 16)[0]
        if next_page == 0:
            used = struct.unpack_from(order + "H", page, 22)[0]
            chunks.append(page[BDB_PAGE_HEADER : BDB_PAGE_HEADER + used])
        else:
            chunks.append(page[BDB_PAGE_HEADER:])
        collected += len(chunks[-1])
        if collected > length + page_size:
            problems.append(f"an overflow chain from page {first_page} is longer than its item")
            return None
        page_number = next_page
    return b"".join(chunks)[:length]


def read_ndb(content: bytes) -> DatabaseRead:
    result = DatabaseRead("ndb")
    if len(content) < 32:
        result.problems.append("the NDB header is cut off")
        return result
    _magic, version, _generation, slot_pages = struct.unpack_from("<IIII", content, 0)
    if version != 0 or not 0 < slot_pages <= NDB_MAX_SLOT_PAGES:
        result.problems.append(f"unsupported NDB version {version} or slot page count {slot_pages}")
        return result
    slot_count = slot_pages * NDB_SLOTS_PER_PAGE - 2  # the 32-byte header takes two slots' room
    budget = _Budget(4 * len(content))
    for number in range(slot_count):
        position = 32 + number * NDB_SLOT_SIZE
        if position + NDB_SLOT_SIZE > len(content):
            result.problems.append("the slot pages are cut off")
            break
        slot_magic, package_index, block_offset, _block_count = struct.unpack_from("<IIII", content, position)
        if slot_magic != NDB_SLOT_MAGIC:
            result.problems.append(f"slot {number} has a bad magic number")
            break
        if package_index == 0:
            continue
        blob_position = block_offset * 16
        if blob_position + 16 > len(content):
            result.problems.append(f"package {package_index}'s blob lies past the end of the file")
            continue
        blob_magic, blob_index, _checksum, blob_length = struct.unpack_from("<IIII", content, blob_position)
        if blob_magic != NDB_BLOB_MAGIC or blob_index != package_index:
            result.problems.append(f"package {package_index}'s blob has a bad header")
            continue
        if blob_position + 16 + blob_length > len(content):
            result.problems.append(f"package {package_index}'s blob is cut off")
            continue
        if block_offset in budget.seen:
            continue  # two slots naming one blob: read it once
        budget.seen.add(block_offset)
        if not budget.spend(blob_length):
            result.problems.append("the database's blobs add up to far more than its size; stopped")
            break
        result.blobs.append(content[blob_position + 16 : blob_position + 16 + blob_length])
    return result
