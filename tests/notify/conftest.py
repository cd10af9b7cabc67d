"""Fixtures of the notification tests: a real serve store (SQLite, then PostgreSQL) and the credential box."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_gate.server.records import CredentialBox, initialise_subscriptions
from ci_gate.server.store import Store

TAG = "registry.example.test/team/app:1.0"
"""The tag every notification test subscribes to."""


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A serve store on SQLite, then on a fresh database of the tests' real PostgreSQL server."""
    from ci_gate.database_url import DEFAULT_DATABASE, parse_database_url

    database = DEFAULT_DATABASE if request.param == "sqlite" else parse_database_url(
        request.getfixturevalue("postgres_url"))
    opened = Store(tmp_path / "data", database)
    initialise_subscriptions(opened, TAG, ("analysis_update", "tag_update", "policy_eval", "vuln_update"))
    yield opened
    opened.close()


@pytest.fixture
def box() -> CredentialBox:
    return CredentialBox("notify-test-admin-password")
