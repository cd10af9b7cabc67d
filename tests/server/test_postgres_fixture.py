"""The tests' PostgreSQL server (tests/support/postgres.py): a real server, password logins over TCP,
data kept across a restart, a fresh database per test; a server whose starter was SIGKILLed does not
outlive it, and a stale one (a starter killed before the server had the parent-death signal) is stopped
by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.support.postgres import PostgresServer, _alive, stop_stale_servers

REPOSITORY = Path(__file__).resolve().parents[2]


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


_STARTER = """
import sys, time
from tests.support.postgres import PostgresServer
server = PostgresServer(max_connections=20, die_with_parent=sys.argv[1] == "dies-with-parent")
server.start()
print(server.base, server.pid, flush=True)
time.sleep(600)
"""


def _start_in_a_process_then_sigkill_it(how: str) -> tuple[Path, int]:
    """A process that starts a server, SIGKILLed (no finaliser runs): the server's base dir and pid."""
    starter = subprocess.Popen([sys.executable, "-c", _STARTER, how], stdout=subprocess.PIPE, text=True,
                               cwd=REPOSITORY, env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    try:
        assert starter.stdout is not None
        base, pid = starter.stdout.readline().split()
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait(30)
    return Path(base), int(pid)


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


def test_a_server_stops_when_the_process_that_started_it_is_sigkilled() -> None:
    base, pid = _start_in_a_process_then_sigkill_it("dies-with-parent")
    assert _gone(pid, within=30), f"postgres {pid} outlived the process that started it"
    assert base in stop_stale_servers() and not base.exists()  # and the next start removes what it left


def test_the_next_start_stops_a_stale_server_and_leaves_running_ones_alone(postgres: PostgresServer) -> None:
    base, pid = _start_in_a_process_then_sigkill_it("outlives-its-parent")  # as a fixture without the signal
    assert not _gone(pid, within=1.0)  # stale: nothing else stops it
    PostgresServer().close()  # the next fixture start
    assert _gone(pid, within=1.0) and not base.exists()
    assert postgres.running and postgres.base.exists()  # this session's server: its starter runs
    with psycopg.connect(postgres.url()) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
