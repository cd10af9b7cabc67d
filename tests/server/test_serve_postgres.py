"""`ci-gate serve --database postgresql://…` with `--role api|worker`: a real PostgreSQL server, a
real registry, real serve processes. An API replica and a worker replica on different data dirs
share everything through the database; a database restart gives API callers 503 (Anchore's error
shape), never a crash, and both replicas carry on afterwards. A bad or unreachable --database is one
line on stderr and exit 2, without the password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ci_gate.vulns.importers.osv import import_paths
from tests.server import test_keys_and_races, test_queue, test_vuln_watch
from tests.support.drift_images import build_drift_images
from tests.support.oci import push
from tests.support.postgres import PostgresServer
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD, ServeProcess
from tests.watch.conftest import osv_record

REPOSITORY = Path(__file__).resolve().parents[2]


def _serve_once(tmp_path: Path, database: str, *, via_environment: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ci_gate.cli", "serve", "--port", "1", "--data-dir", str(tmp_path / "data")]
    environment = {**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD, "PYTHONPATH": str(REPOSITORY)}
    if via_environment:
        environment["CI_GATE_DATABASE"] = database
    else:
        command += ["--database", database]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment, check=False)


@pytest.mark.parametrize(("database", "expected"), [
    ("postgresql://ci:hunter2-secret@127.0.0.1:notaport/db", "is not a valid URL"),
    ("mysql://ci:hunter2-secret@127.0.0.1/db", "is not a PostgreSQL URL"),
    ("postgresql://ci:hunter2-secret@127.0.0.1:5432", "needs a host and a database name"),
])
def test_a_malformed_database_url_is_one_line_without_the_password(tmp_path: Path, database: str,
                                                                    expected: str) -> None:
    result = _serve_once(tmp_path, database)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert expected in lines[0] and "hunter2-secret" not in result.stderr + result.stdout
    assert "give --database postgresql://USER@HOST[:PORT]/DATABASE" in lines[0]


def test_an_unknown_role_is_one_line_exit_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "serve", "--role", "analyzer", "--data-dir",
                             str(tmp_path / "data")], capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD, "PYTHONPATH": str(REPOSITORY)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["ci-gate: error: --role must be api, worker or all, not 'analyzer'"]


def test_an_unreachable_database_or_a_wrong_password_is_one_line_exit_2(tmp_path: Path,
                                                                        postgres: PostgresServer) -> None:
    from tests.support.serve import free_port

    closed = f"postgresql://ci_gate:hunter2-secret@127.0.0.1:{free_port()}/nothing"
    result = _serve_once(tmp_path, closed, via_environment=True)  # $CI_GATE_DATABASE
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("ci-gate: error: cannot connect to the database postgresql://ci_gate:")
    assert "hunter2-secret" not in result.stderr and "Traceback" not in result.stderr
    wrong = postgres.url("postgres").replace(postgres.password, "hunter2-secret")
    result = _serve_once(tmp_path, wrong)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "password authentication failed" in lines[0] and "hunter2-secret" not in result.stderr


def test_api_and_worker_replicas_share_one_database_through_a_restart(
        tmp_path: Path, postgres: PostgresServer, postgres_url: str, serve_vuln_db: Path,
        pushed_images: list[tuple[str, str]]) -> None:
    api = ServeProcess(tmp_path / "api", vuln_db=serve_vuln_db, extra_args=["--database", postgres_url,
                                                                           "--role", "api"])
    worker = ServeProcess(tmp_path / "worker", vuln_db=serve_vuln_db, extra_args=["--database", postgres_url,
                                                                                  "--role", "worker",
                                                                                  "--lease-seconds", "5"])
    try:
        api.start()
        (tag_a, digest_a), (tag_b, digest_b) = pushed_images[0], pushed_images[1]
        assert api.add_tag(tag_a).status_code == 200
        time.sleep(3)  # the API replica analyses nothing
        assert api.get(f"/v2/images/{digest_a}").json()["analysis_status"] == "not_analyzed"
        worker.start()
        assert worker.get("/v2/images").status_code == 404  # a worker serves no API
        assert api.wait_status(digest_a)["analysis_status"] == "analyzed", worker.log()
        check = api.get(f"/v2/images/{digest_a}/check", params={"tag": tag_a})
        assert check.status_code == 200, check.text

        postgres.stop()
        try:
            outage = api.get(f"/v2/images/{digest_a}")
            assert outage.status_code == 503, outage.text
            assert outage.json()["code"] == 503 and "retry" in outage.json()["message"]
            assert outage.headers["Retry-After"]
            assert api.get("/v1/images").json()["httpcode"] == 503  # v1 callers get the engine's shape
            time.sleep(2)  # the worker polls the queue meanwhile, and must back off, not die
        finally:
            postgres.start()
        assert api.process is not None and api.process.poll() is None
        assert worker.process is not None and worker.process.poll() is None
        deadline = time.monotonic() + 20
        while api.get(f"/v2/images/{digest_a}").status_code != 200:
            assert time.monotonic() < deadline, api.log()
            time.sleep(0.2)
        assert api.add_tag(tag_b).status_code == 200  # after the restart: queued by one, analysed by the other
        assert api.wait_status(digest_b)["analysis_status"] == "analyzed", worker.log()
        assert "Traceback" not in api.log() + worker.log()
        counts = api.get("/status").json()["detail"]["analyses_by_digest"]
        assert counts[digest_a] == 1 and counts[digest_b] == 1
    finally:
        api.stop()
        worker.stop()
        if not postgres.running:
            postgres.start()


def test_the_server_log_never_shows_the_database_password(tmp_path: Path, postgres_url: str) -> None:
    with ServeProcess(tmp_path / "data", extra_args=["--database", postgres_url]) as server:
        assert server.get("/health").status_code == 200
        log = server.log()
    password = postgres_url.split(":")[2].split("@")[0]
    assert "database postgresql://ci_gate:***@127.0.0.1" in log and password not in log


# --- the SQLite serve tests again, on PostgreSQL ------------------------------------------------------


@pytest.fixture
def pg_server(tmp_path: Path, serve_vuln_db: Path, postgres_url: str) -> Iterator[ServeProcess]:
    """As `fresh_server` (started by the test), with its state in a fresh PostgreSQL database."""
    process = ServeProcess(tmp_path / "data", vuln_db=serve_vuln_db, extra_args=["--database", postgres_url])
    try:
        yield process
    finally:
        process.stop()


def test_concurrent_submissions_share_one_analysis_on_postgres(pg_server: ServeProcess,
                                                               pushed_images: list[tuple[str, str]]) -> None:
    test_queue.test_concurrent_submissions_of_one_digest_share_one_analysis(pg_server, pushed_images)


def test_policy_races_leave_one_active_policy_on_postgres(pg_server: ServeProcess) -> None:
    test_keys_and_races.test_activate_and_delete_racing_always_leave_exactly_one_active_policy(pg_server)


def test_two_replicas_analyse_each_digest_once(tmp_path: Path, postgres_url: str, serve_vuln_db: Path,
                                               pushed_images: list[tuple[str, str]]) -> None:
    """Two full replicas (role all) on one database, every image submitted to both at once."""
    replicas = [ServeProcess(tmp_path / f"replica-{n}", vuln_db=serve_vuln_db,
                             extra_args=["--database", postgres_url]) for n in range(2)]
    try:
        for replica in replicas:
            replica.start()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda job: replicas[job % 2].add_tag(pushed_images[job % 4][0]), range(32)))
        assert [a.status_code for a in answers] == [200] * 32
        for _, digest in pushed_images:
            assert replicas[1].wait_status(digest)["analysis_status"] == "analyzed"
        counts = replicas[0].get("/status").json()["detail"]["analyses_by_digest"]
        assert counts == {digest: 1 for _, digest in pushed_images}
        events = replicas[1].get("/v2/events", params={"limit": 100}).json()["results"]
        completed = [e for e in events if e["event"]["type"] == "user.image.analysis.completed"]
        assert sorted(e["event"]["details"]["image_digest"] for e in completed) == sorted(
            digest for _, digest in pushed_images)  # one analysis_update event per digest, from one replica
    finally:
        for replica in replicas:
            replica.stop()


def test_two_replicas_record_a_vulnerability_update_once(tmp_path: Path, postgres_url: str,
                                                         registry: RegistryServer) -> None:
    """Both replicas run the vulnerability watcher, on the same store; only the lease holder makes passes,
    so an import that adds a CVE to the subscribed image is one vuln_update and one policy_eval."""
    images = build_drift_images(tmp_path / "images")  # app:2 has curl
    tag = push(images.app_v2_image, registry.host, f"vulnwatch/fleet-{uuid.uuid4().hex[:8]}:2")
    vuln_db = tmp_path / "vulns.sqlite"
    unrelated = tmp_path / "osv0" / "DLA-0000-1.json"
    unrelated.parent.mkdir()
    unrelated.write_text(json.dumps(osv_record("DLA-0000-1", "glibc", "2.36-9+deb12u4")))
    import_paths([unrelated], vuln_db)
    replicas = [ServeProcess(tmp_path / f"replica-{n}", vuln_db=vuln_db, extra_args=["--database", postgres_url],
                             environment={"CI_GATE_SERVE_VULN_POLL_SECONDS": "0.2"}) for n in range(2)]
    try:
        for replica in replicas:
            replica.start()
        first, second = replicas
        test_vuln_watch._watch(first.session, first.url, tag, images.app_v2_image.manifest_digest, first)
        states = [replica.data_dir / "vuln-watch.sqlite" for replica in replicas]
        first.wait_until(lambda: sum(replica.vuln_watch_images() for replica in replicas) == 1,
                         "the baseline, on one replica")
        time.sleep(1.0)  # polls of both replicas: a second watcher would have its baseline by now
        delta = tmp_path / "delta" / "DSA-9999-1.json"
        delta.parent.mkdir()
        delta.write_text(json.dumps(osv_record("DSA-9999-1", "curl", "7.88.1-10+deb12u5")))
        import_paths([delta], vuln_db)
        second.wait_until(lambda: test_vuln_watch._events(second.session, second.url, test_vuln_watch.POLICY_EVAL),
                          "the policy_eval")
        time.sleep(1.5)  # both replicas keep polling the changed store: neither may record it again
        updates = test_vuln_watch._events(second.session, second.url, test_vuln_watch.VULN_UPDATE)
        flips = test_vuln_watch._events(first.session, first.url, test_vuln_watch.POLICY_EVAL)
        assert len(updates) == 1 and len(flips) == 1, (updates, flips)
        assert [state.exists() for state in states].count(True) == 1  # only the lease holder ever made a pass
    finally:
        for replica in replicas:
            replica.stop()


def _added(event: dict[str, Any]) -> list[str]:
    """The vulnerability ids a vuln_update event says were added."""
    return sorted(str(entry["CVE_ID"]) for entry in event["details"]["diff_vulnerability_result"]["added"])


def test_a_replica_taking_the_vulnerability_watcher_over_continues_where_the_last_holder_stopped(
        tmp_path: Path, postgres_url: str, registry: RegistryServer) -> None:
    """The watcher's lease moves from replica A to B and back (each stop hands it over). B was never the
    holder: its first pass must not be a new baseline that misses the import made meanwhile. A's own state
    file is from before that import: its pass must not record the import's change again."""
    images = build_drift_images(tmp_path / "images")  # app:2 has curl and openssl
    tag = push(images.app_v2_image, registry.host, f"vulnwatch/handover-{uuid.uuid4().hex[:8]}:2")
    vuln_db = tmp_path / "vulns.sqlite"

    def import_record(identifier: str, package: str, fixed: str) -> None:
        record = tmp_path / identifier / f"{identifier}.json"
        record.parent.mkdir()
        record.write_text(json.dumps(osv_record(identifier, package, fixed)))
        import_paths([record], vuln_db)

    def vuln_updates(replica: ServeProcess) -> list[dict[str, Any]]:
        return test_vuln_watch._events(replica.session, replica.url, test_vuln_watch.VULN_UPDATE)

    import_record("DLA-0000-1", "glibc", "2.36-9+deb12u4")  # unrelated to the image
    a, b = (ServeProcess(tmp_path / f"replica-{name}", vuln_db=vuln_db, extra_args=["--database", postgres_url],
                         environment={"CI_GATE_SERVE_VULN_POLL_SECONDS": "0.2"}) for name in "ab")
    try:
        a.start()
        test_vuln_watch._watch(a.session, a.url, tag, images.app_v2_image.manifest_digest, a)
        a.wait_until(lambda: a.vuln_watch_images() == 1, "the baseline, on A")
        a.stop()  # hands the lease over
        b.start()
        import_record("DSA-9999-1", "curl", "7.88.1-10+deb12u5")
        b.wait_until(lambda: vuln_updates(b), "B recording the curl advisory", timeout=60)
        b.stop()
        a.start()  # its own state file still knows nothing of the curl advisory
        import_record("DSA-9999-2", "openssl", "3.0.11-1~deb12u3")
        a.wait_until(lambda: len(vuln_updates(a)) >= 2, "A recording the openssl advisory", timeout=60)
        time.sleep(1.5)  # further polls of A: nothing is recorded again
        updates = vuln_updates(a)
    finally:
        a.stop()
        b.stop()
    assert sorted(_added(event) for event in updates) == [["DSA-9999-1"], ["DSA-9999-2"]], updates
