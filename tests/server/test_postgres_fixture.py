"""The tests' PostgreSQL server (tests/support/postgres.py): a real server, password logins over TCP,
data kept across a restart, a fresh database per test."""

from __future__ import annotations

import psycopg

from tests.support.postgres import PostgresServer


def test_postgres_fixture_serves_password_logins_and_keeps_data_across_restart(postgres: PostgresServer,
                                                                                postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (value TEXT)")
        connection.execute("INSERT INTO kept VALUES ('before restart')")
        user = connection.execute("SELECT current_user").fetchone()
    assert user == ("ci_gate",)
    wrong = postgres_url.replace(postgres.password, "not-the-password")
    try:
        psycopg.connect(wrong, connect_timeout=5).close()
        raise AssertionError("a wrong password was accepted")
    except psycopg.OperationalError as error:
        assert "password authentication failed" in str(error)
    postgres.restart(mode="immediate")
    with psycopg.connect(postgres_url) as connection:
        assert connection.execute("SELECT value FROM kept").fetchall() == [("before restart",)]
    assert postgres.create_database() != postgres_url
