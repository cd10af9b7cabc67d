"""`ci-gate serve --database/--role/--lease-seconds` and `gate --backend anchore --timeout` as an operator
meets them: the values they get wrong.

The real CLI in a fresh process, a real PostgreSQL (tests/support/postgres.py) where a URL must log in,
and the Anchore stand-in (tests/backends/anchore_standin.py) for a gate that waits. A wrong value is one
line on stderr and exit 2 before anything starts, and a database password never reaches any output:
a URL that does not parse may hold its password anywhere, so it is never quoted.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tests.backends.anchore_standin import AnchoreStandIn
from tests.support.postgres import SUPERUSER, PostgresServer
from tests.support.serve import PASSWORD, ServeProcess, free_port

pytest.importorskip("uvicorn", reason="ci-gate serve needs the server extra (pip install '.[server]')")

SECRET = "Hunter2-Secret-77"


def _serve(tmp_path: Path, *arguments: str, timeout: float = 30,
           database_variable: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD, "XDG_DATA_HOME": str(tmp_path)}
    environment.pop("CI_GATE_DATABASE", None)
    if database_variable is not None:
        environment["CI_GATE_DATABASE"] = database_variable
    try:
        return subprocess.run([sys.executable, "-m", "ci_gate.cli", "serve", "--port", str(free_port()),
                               "--data-dir", str(tmp_path / "data"), *arguments],
                              capture_output=True, text=True, timeout=timeout, env=environment, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ci-gate serve started with {arguments} instead of refusing it")


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


@pytest.mark.parametrize(("database", "needle"), [
    # not PostgreSQL: the password was masked by the generic masker, which keeps four characters
    (f"mysql://ci:{SECRET}@127.0.0.1/db", "it starts with mysql://"),
    # no scheme at all: quoted whole before
    (f"ci:{SECRET}@127.0.0.1/db", "does not start with postgresql://"),
    # an unencoded @ in the password: libpq took "Secret-77@127.0.0.1" for the host and said so
    ("postgresql://ci:Hunter2@Secret-77@127.0.0.1:1/db", "@ as %40"),
    # an unencoded space: libpq quoted the password to say spaces must be %20
    ("postgresql://ci:Hunter2 Secret77@127.0.0.1:1/db", "a space as %20"),
    # a broken escape: libpq quotes the "token" it could not decode
    ("postgresql://ci:Hunter2%zzSecret77@127.0.0.1:1/db", "% as %25"),
])
def test_a_database_url_that_hides_its_password_is_refused_without_quoting_it(tmp_path: Path, database: str,
                                                                               needle: str) -> None:
    for result in (_serve(tmp_path, "--database", database), _serve(tmp_path, database_variable=database)):
        line = _one_line(result, needle, "--database")
        output = result.stdout + line
        for fragment in ("Hunter2", "Secret", "Hunt"):
            assert fragment not in output, output
        assert not (tmp_path / "data").exists()  # refused before the data dir was made


def test_a_password_in_the_query_never_reaches_the_log(tmp_path: Path, postgres: PostgresServer) -> None:
    """libpq takes `?password=`: the start line named the URL with it in full."""
    name = postgres.create_database().rsplit("/", 1)[1]
    query = urllib.parse.urlencode({"password": postgres.password, "application_name": "ci-gate-qa"})
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{postgres.port}/{name}?{query}"
    with ServeProcess(tmp_path / "data", extra_args=["--database", url]) as server:
        assert server.get("/health").status_code == 200
        status = server.get("/status").text + server.get("/version").text
        log = server.log()
    assert f"database postgresql://{SUPERUSER}@127.0.0.1:{postgres.port}/{name}?password=***" in log, log
    assert postgres.password not in log + status


def test_a_unix_socket_url_in_libpq_form_starts_serve(tmp_path: Path, postgres: PostgresServer) -> None:
    """`postgresql:///DB?host=/socket/dir` is libpq's documented form for a Unix-domain socket (a sidecar
    proxy's); it was refused as having no host."""
    name = postgres.create_database().rsplit("/", 1)[1]
    url = f"postgresql:///{name}?host={postgres.socket_dir}&port={postgres.port}&user={SUPERUSER}"
    with ServeProcess(tmp_path / "data", extra_args=["--database", url]) as server:
        assert server.get("/health").status_code == 200
        assert server.get("/v2/images").json() == {"items": []}  # the tables are in that database
        assert f"database {url}" in server.log()


def test_an_unencoded_at_sign_is_refused_and_the_encoded_one_logs_in(tmp_path: Path,
                                                                     postgres: PostgresServer) -> None:
    """A password holding URL-special characters works percent-encoded, and only so."""
    import psycopg

    role = f"qa_{secrets.token_hex(4)}"
    password = "p@ss:w/rd?#%&=+ x"
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'p@ss:w/rd?#%&=+ x'")
        connection.execute(f"CREATE DATABASE {role} OWNER {role}")
    raw = _serve(tmp_path, "--database", f"postgresql://{role}:{password}@127.0.0.1:{postgres.port}/{role}")
    line = _one_line(raw, "percent-encode")
    assert "ss:w" not in line and "rd?" not in line
    encoded = urllib.parse.quote(password, safe="")
    url = f"postgresql://{role}:{encoded}@127.0.0.1:{postgres.port}/{role}"
    with ServeProcess(tmp_path / "data", extra_args=["--database", url]) as server:
        assert server.get("/v2/images").status_code == 200
        log = server.log()
    assert f"postgresql://{role}:***@127.0.0.1:{postgres.port}/{role}" in log and encoded not in log


@pytest.mark.parametrize(("option", "value"), [
    ("--lease-seconds", "nan"),  # the heartbeat waited nan seconds: a loop of lease renewals
    ("--lease-seconds", "inf"),  # the heartbeat thread died on its first wait (OverflowError)
    ("--lease-seconds", "1e308"),
    ("--watch-interval", "nan"),  # the tag watcher spun, a core at 40 %
    ("--request-timeout", "inf"),
    ("--registry-timeout", "nan"),
])
def test_a_non_finite_or_huge_number_of_seconds_is_one_line(tmp_path: Path, option: str, value: str) -> None:
    _one_line(_serve(tmp_path, option, value, timeout=20), option, "a number of seconds")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_gate_timeout_that_never_comes_is_refused(tmp_path: Path, value: str) -> None:
    """`--timeout nan` made the deadline one no clock reaches: the gate polled for ever."""
    with AnchoreStandIn(states=["not_analyzed", "analyzing"]).running() as server:
        environment = {key: item for key, item in os.environ.items()
                       if not key.startswith(("ANCHORE", "CI_GATE_", "GITHUB_", "GITLAB", "CI_"))}
        environment.update({"ANCHORE_URL": server.url, "ANCHORE_USER": "admin", "ANCHORE_PASS": "s3cret-Passw0rd",
                            "CI": "true"})
        try:
            result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", "registry.example/app:1",
                                     "--backend", "anchore", "--poll-interval", "0.05", "--timeout", value],
                                    capture_output=True, text=True, env=environment, cwd=tmp_path, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"gate --timeout {value} waited for ever")
    _one_line(result, "timeout", value, "a number of seconds")
