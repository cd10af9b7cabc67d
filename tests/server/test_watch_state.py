"""The vulnerability watcher's state kept in the database (ci_gate/server/watch_state.py), on SQLite and on
PostgreSQL: the next holder takes the last holder's state, and a holder that lost its lease mid-pass does
not overwrite its successor's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_gate.database_url import DEFAULT_DATABASE, parse_database_url
from ci_gate.server.store import Store
from ci_gate.server.watch_state import SharedState


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    database = DEFAULT_DATABASE if request.param == "sqlite" else parse_database_url(
        request.getfixturevalue("postgres_url"))
    opened = Store(tmp_path / "data", database)
    yield opened
    opened.close()


def test_the_next_holder_continues_from_the_stored_state_and_a_late_one_does_not_overwrite_it(
        store: Store, tmp_path: Path) -> None:
    first, second = (SharedState("vuln-watch", tmp_path / name / "vuln-watch.sqlite") for name in ("a", "b"))
    for state in (first, second):
        state.path.parent.mkdir()
    assert first.pull(store) is False  # nothing stored yet: the local file (none here) is used
    first.path.write_bytes(b"state after A's pass")
    assert first.push(store) is True

    Path(str(second.path) + "-journal").write_bytes(b"a crashed pass's journal")
    assert second.pull(store) is True and second.path.read_bytes() == b"state after A's pass"
    assert not Path(str(second.path) + "-journal").exists()  # it must not roll back onto the pulled state
    assert second.path.stat().st_mode & 0o077 == 0
    assert second.pull(store) is False  # the same generation: nothing to fetch
    second.path.write_bytes(b"state after B's pass")
    assert second.push(store) is True

    first.path.write_bytes(b"A's pass after it lost the lease")
    assert first.push(store) is False  # B stored a newer generation meanwhile: A's is dropped
    assert first.pull(store) is True and first.path.read_bytes() == b"state after B's pass"
    first.path.write_bytes(b"state after A's next pass")
    assert first.push(store) is True
    assert second.pull(store) is True and second.path.read_bytes() == b"state after A's next pass"
