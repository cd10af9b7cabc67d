"""The analysis queue: failures end analysis_failed with a reason, a restart resumes queued and
interrupted work, and one digest is analysed once however many times it is submitted."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess, build_variant


def test_unpullable_image_ends_analysis_failed_with_a_reason(server: ServeProcess, registry: RegistryServer) -> None:
    missing = "sha256:" + "ab" * 32
    response = server.post("/v2/images", json={"source": {"digest": {
        "pull_string": f"{registry.host}/serve/missing@{missing}", "tag": f"{registry.host}/serve/missing:1"}}})
    assert response.status_code == 200, response.text
    record = server.wait_status(missing)
    assert record["analysis_status"] == "analysis_failed"
    assert "not found" in record["analysis_failure_reason"]
    assert record["analysis_status_detail"][-1]["detail"] == record["analysis_failure_reason"]
    check = server.get(f"/v2/images/{missing}/check", params={"tag": f"{registry.host}/serve/missing:1"})
    assert check.status_code == 404 and "analysis_failed" in check.json()["message"]


def test_unknown_tag_is_refused_at_add(server: ServeProcess, registry: RegistryServer) -> None:
    response = server.add_tag(f"{registry.host}/serve/never-pushed:1")
    assert response.status_code == 400
    assert response.json()["message"].startswith("cannot fetch image digest/manifest from registry")


def test_restart_resumes_queued_and_interrupted_work(fresh_server: ServeProcess,
                                                     pushed_images: list[tuple[str, str]]) -> None:
    fresh_server.start(workers=0)  # accept and queue, analyse nothing
    (tag_a, digest_a), (tag_b, digest_b) = pushed_images[2], pushed_images[3]
    assert fresh_server.add_tag(tag_a).status_code == 200
    assert fresh_server.add_tag(tag_b).status_code == 200
    fresh_server.kill()
    # A crash in the middle of an analysis leaves the row `analyzing`: make B look like that.
    with sqlite3.connect(fresh_server.data_dir / "ci-gate-serve.sqlite") as connection:
        connection.execute("UPDATE images SET analysis_status = 'analyzing' WHERE digest = ?", (digest_b,))
    fresh_server.start(workers=2)
    for digest in (digest_a, digest_b):
        record = fresh_server.wait_status(digest)
        assert record["analysis_status"] == "analyzed", (record, fresh_server.log())
    resumed = fresh_server.get(f"/v2/images/{digest_b}").json()["analysis_status_detail"]
    assert ("analyzing", "not_analyzed", "startup") in [(s["from_status"], s["to_status"], s["source"])
                                                        for s in resumed], (resumed, fresh_server.log())
    fresh_server.stop()
    fresh_server.start(workers=1)  # analysed images stay analysed across a clean restart
    assert fresh_server.get(f"/v2/images/{digest_a}").json()["analysis_status"] == "analyzed"
    assert fresh_server.get(f"/v2/images/{digest_a}/check", params={"tag": tag_a}).status_code == 200


def test_concurrent_submissions_of_one_digest_share_one_analysis(fresh_server: ServeProcess,
                                                                  pushed_images: list[tuple[str, str]]) -> None:
    fresh_server.start(workers=2)
    tag, digest = pushed_images[1]
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: fresh_server.add_tag(tag), range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert {a.json()["image_digest"] for a in answers} == {digest}
    fresh_server.wait_status(digest)
    with ThreadPoolExecutor(5) as pool:  # re-adding an analysed digest does not analyse it again
        assert all(a.status_code == 200 for a in pool.map(lambda _: fresh_server.add_tag(tag), range(5)))
    status = fresh_server.get("/status").json()
    assert status["detail"]["analyses_by_digest"] == {digest: 1}
    assert status["detail"]["analyses_started_since_start"] == 1
    forced = fresh_server.add_tag(tag, force=True).json()
    assert forced["analysis_status"] == "not_analyzed"
    fresh_server.wait_status(digest)
    assert fresh_server.get("/status").json()["detail"]["analyses_by_digest"] == {digest: 2}


def test_two_tags_of_one_digest_share_one_record_and_one_analysis(
        fresh_server: ServeProcess, pushed_images: list[tuple[str, str]], registry: RegistryServer,
        tmp_path: Path) -> None:
    tag, digest = pushed_images[0]
    alias = push(build_variant(tmp_path / "oci", 0), registry.host, "serve/alias:same")  # byte-identical image
    fresh_server.start(workers=1)
    first = fresh_server.add_tag(tag).json()
    second = fresh_server.add_tag(alias).json()
    assert first["image_digest"] == second["image_digest"] == digest
    fresh_server.wait_status(digest)
    record = fresh_server.get(f"/v2/images/{digest}").json()
    assert sorted(d["full_tag"] for d in record["image_detail"]) == sorted([tag, alias])
    assert fresh_server.get("/status").json()["detail"]["analyses_by_digest"] == {digest: 1}
    check = fresh_server.get(f"/v2/images/{digest}/check", params={"tag": alias}).json()
    assert check["evaluated_tag"] == alias


def test_registry_credentials_are_used_and_never_shown(tmp_path: Path, auth_registry: RegistryServer,
                                                       serve_vuln_db: Path) -> None:
    assert auth_registry.username and auth_registry.password
    tag = push(build_variant(tmp_path / "oci", 40), auth_registry.host, "private/app:1",
               creds=(auth_registry.username, auth_registry.password))
    without = ServeProcess(tmp_path / "anonymous", vuln_db=serve_vuln_db, workers=1,
                           environment={"DOCKER_CONFIG": str(tmp_path / "no-docker-config")})
    with without:
        refused = without.add_tag(tag)
        assert refused.status_code == 400 and "cannot fetch image digest/manifest" in refused.json()["message"]
    with ServeProcess(tmp_path / "with-credentials", vuln_db=serve_vuln_db, workers=1, environment={
            "CI_GATE_REGISTRY_USERNAME": auth_registry.username,
            "CI_GATE_REGISTRY_PASSWORD": auth_registry.password,
            "CI_GATE_REGISTRY_HOST": auth_registry.host}) as server:
        added = server.add_tag(tag)
        assert added.status_code == 200, added.text
        digest = added.json()["image_digest"]
        assert server.wait_status(digest)["analysis_status"] == "analyzed"
        bodies = [server.get(f"/v2/images/{digest}").text, server.get(f"/v2/images/{digest}/check",
                                                                      params={"tag": tag}).text]
        log = server.full_log()
    for text in [*bodies, refused.text, log, without.full_log()]:
        assert auth_registry.password not in text
