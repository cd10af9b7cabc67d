"""The full flow over real HTTP: add → analyzing → analyzed → check → vulnerabilities, v2 and v1 shapes."""

from __future__ import annotations

import base64
from pathlib import Path

from tests.support.serve import ServeProcess


def test_add_wait_check_vulnerabilities_v2(fresh_server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    # Its own server: the image must be new to it (other tests add the same image to the module's server).
    server = fresh_server.start()
    tag, digest = pushed_images[0]
    response = server.add_tag(tag, dockerfile="FROM scratch\nUSER 1000\n")
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["image_digest"] == digest
    assert record["analysis_status"] in ("not_analyzed", "analyzing", "analyzed")
    assert record["image_detail"][0]["full_tag"] == tag
    assert record["image_detail"][0]["full_digest"] == f"{tag.rsplit(':', 1)[0]}@{digest}"

    done = server.wait_status(digest)
    assert done["analysis_status"] == "analyzed", done
    steps = [(s["from_status"], s["to_status"]) for s in done["analysis_status_detail"]]
    assert steps == [("", "not_analyzed"), ("not_analyzed", "analyzing"), ("analyzing", "analyzed")]
    metadata = done["image_content"]["metadata"]
    assert metadata["distro"] == "debian" and metadata["distro_version"] == "12"
    assert metadata["layer_count"] == 3 and metadata["dockerfile_mode"] == "Actual"

    check = server.get(f"/v2/images/{digest}/check", params={"tag": tag})
    assert check.status_code == 200, check.text
    evaluation = check.json()
    assert evaluation["image_digest"] == digest and evaluation["evaluated_tag"] == tag
    assert evaluation["policy_id"] == "ci-gate-default"
    result = evaluation["evaluations"][0]
    assert result["status"] == ("fail" if result["final_action"] == "stop" else "pass")
    assert result["final_action"] in ("go", "warn", "stop")
    assert result["details"]["policy"]["id"] == "ci-gate-default"
    gates = {f["gate"] for f in result["details"]["findings"]}
    assert "vulnerabilities" in gates, gates  # the critical openssl advisory fires

    listing = server.get(f"/v2/images/{digest}/vuln/all")
    assert listing.status_code == 200
    body = listing.json()
    assert set(body) >= {"image_digest", "base_digest", "base_image_problems", "vulnerability_type",
                         "extended_support", "vulnerabilities"}
    by_id = {v["vuln"]: v for v in body["vulnerabilities"]}
    assert set(by_id) == {"DSA-9999-1", "GHSA-test-demo-0001"}
    openssl = by_id["DSA-9999-1"]
    assert openssl["severity"] == "Critical" and openssl["fix"] == "3.0.13-1~deb12u1"
    assert openssl["package"] == "openssl-3.0.11-1~deb12u2" and openssl["package_type"] == "dpkg"
    assert openssl["nvd_data"][0]["id"] == "CVE-2099-0001"
    os_only = server.get(f"/v2/images/{digest}/vuln/os").json()["vulnerabilities"]
    non_os = server.get(f"/v2/images/{digest}/vulnerabilities", params={"type": "non-os"}).json()
    assert [v["vuln"] for v in os_only] == ["DSA-9999-1"]
    assert [v["vuln"] for v in non_os["vulnerabilities"]] == ["GHSA-test-demo-0001"]
    assert server.get(f"/v2/images/{digest}/vuln").json() == ["os", "non-os", "all"]

    content = server.get(f"/v2/images/{digest}/content/os").json()
    assert sorted(item["package"] for item in content["content"]) == ["openssl", "zlib1g"]

    by_tag = server.get("/v2/images", params={"full_tag": tag}).json()
    assert [item["image_digest"] for item in by_tag["items"]] == [digest]


def test_v1_shapes(server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    tag, digest = pushed_images[1]
    response = server.post("/v1/images", json={"tag": tag})
    assert response.status_code == 200, response.text
    records = response.json()
    assert isinstance(records, list) and records[0]["imageDigest"] == digest
    server.wait_status(digest)
    record = server.get(f"/v1/images/{digest}").json()
    assert record[0]["analysis_status"] == "analyzed" and record[0]["image_detail"][0]["fulltag"] == tag
    assert server.get("/v1/images", params={"fulltag": tag}).json()[0]["imageDigest"] == digest

    check = server.get(f"/v1/images/{digest}/check", params={"tag": tag, "detail": "true"}).json()
    entry = check[0][digest][tag][0]
    assert entry["policyId"] == "ci-gate-default"
    document = entry["detail"]["result"]
    table = document["result"][document["image_id"]]["result"]
    assert table["header"][2] == "Trigger_Id" and table["row_count"] == len(table["rows"])
    assert entry["status"] == ("fail" if document["final_action"] == "stop" else "pass")

    vulns = server.get(f"/v1/images/{digest}/vuln/all").json()
    assert vulns["imageDigest"] == digest and vulns["vulnerability_type"] == "all"
    assert {v["vuln"] for v in vulns["vulnerabilities"]} == {"DSA-9999-1", "GHSA-test-demo-0001"}
    assert all("package_cpe23" in v for v in vulns["vulnerabilities"])

    policies = server.get("/v1/policies").json()
    assert {p["policyId"] for p in policies} >= {"ci-gate-default", "ci-gate-cis", "ci-gate-dod"}
    assert [p["policyId"] for p in policies if p["active"]] == ["ci-gate-default"]


def test_not_analyzed_yet_is_404_with_the_documented_message(fresh_server: ServeProcess,
                                                             pushed_images: list[tuple[str, str]]) -> None:
    fresh_server.start(workers=0)  # queue only: the image stays not_analyzed
    tag, digest = pushed_images[2]
    assert fresh_server.add_tag(tag).status_code == 200
    check = fresh_server.get(f"/v2/images/{digest}/check", params={"tag": tag})
    assert check.status_code == 404
    assert check.json() == {"code": 404, "error_type": "not_found",
                            "message": "image is not analyzed - analysis_status: not_analyzed", "detail": {}}
    legacy = fresh_server.get(f"/v1/images/{digest}/vuln/all")
    assert legacy.status_code == 404
    assert legacy.json() == {"message": "image is not analyzed - analysis_status: not_analyzed", "httpcode": 404,
                             "detail": {"error_codes": []}}


def test_dockerfile_for_a_known_digest_needs_force(server: ServeProcess,
                                                    pushed_images: list[tuple[str, str]]) -> None:
    tag, digest = pushed_images[0]
    server.add_tag(tag)
    again = server.post("/v2/images", json={"source": {"digest": {
        "pull_string": f"{tag.rsplit(':', 1)[0]}@{digest}", "tag": tag,
        "dockerfile": base64.b64encode(b"FROM scratch\n").decode()}}})
    assert again.status_code == 400
    assert again.json()["message"].startswith("Cannot specify dockerfile for an image that already exists")


def test_content_files_unsupported_sources_and_delete(fresh_server: ServeProcess,
                                                      pushed_images: list[tuple[str, str]]) -> None:
    fresh_server.start(workers=1)
    tag, digest = pushed_images[3]
    fresh_server.add_tag(tag)
    fresh_server.wait_status(digest)
    types = fresh_server.get(f"/v2/images/{digest}/content").json()
    assert {"os", "files", "python"} <= set(types)
    files = fresh_server.get(f"/v1/images/{digest}/content/files").json()
    assert files["imageDigest"] == digest
    by_name = {item["filename"]: item for item in files["content"]}
    assert by_name["/etc/variant"]["mode"] == "00644" and by_name["/etc/variant"]["type"] == "file"
    python = fresh_server.get(f"/v2/images/{digest}/content/python").json()["content"]
    assert [(p["package"], p["version"]) for p in python] == [("demo", "1.0")]

    archive = fresh_server.post("/v2/images", json={"source": {"archive": {"digest": digest}}})
    assert archive.status_code == 501 and archive.json()["error_type"] == "not_implemented"
    two = fresh_server.post("/v2/images", json={"source": {"tag": {"pull_string": tag},
                                                           "digest": {"pull_string": tag, "tag": tag}}})
    assert two.status_code == 400
    wrapped = fresh_server.post("/v2/images", json={"source": {"tag": {"pull_string": tag,
                                                                       "dockerfile": "RlJP\nTQ=="}}})
    assert wrapped.status_code == 400 and "base64" in wrapped.json()["message"]

    deleted = fresh_server.session.delete(f"{fresh_server.url}/v2/images/{digest}", timeout=10)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleting"
    assert fresh_server.get(f"/v2/images/{digest}").status_code == 404
    assert fresh_server.get("/v2/images", params={"full_tag": tag}).json() == {"items": []}


def test_same_decision_as_the_local_backend(server: ServeProcess, pushed_images: list[tuple[str, str]],
                                            serve_vuln_db: Path) -> None:
    """The service is the embedded engine behind HTTP: same final action, same trigger ids."""
    from ci_gate.backends.interface import BackendRequest
    from ci_gate.backends.local import LocalBackend

    tag, digest = pushed_images[2]
    server.add_tag(tag)
    server.wait_status(digest)
    for policy in ("ci-gate-default", "ci-gate-dod"):
        remote = server.get(f"/v2/images/{digest}/check", params={"tag": tag, "policy_id": policy}).json()
        local = LocalBackend().run(BackendRequest(image=f"registry:{tag}", policy=f"builtin:{policy[8:]}",
                                                  vuln_db=serve_vuln_db, use_cache=False)).evaluation
        result = remote["evaluations"][0]
        assert result["final_action"] == local.final_action.lower()
        assert sorted(f["trigger_id"] for f in result["details"]["findings"]) == sorted(
            f.trigger_id for f in local.findings)
        assert local.findings  # a comparison of two empty lists would prove nothing


def test_filters_detail_and_malformed_requests(server: ServeProcess, pushed_images: list[tuple[str, str]]) -> None:
    tag, digest = pushed_images[0]
    server.add_tag(tag)
    server.wait_status(digest)
    analysed = server.get("/v2/images", params={"analysis_status": "analyzed"}).json()["items"]
    assert digest in [item["image_digest"] for item in analysed]
    assert server.get("/v2/images", params={"analysis_status": "analysis_failed",
                                            "full_tag": tag}).json() == {"items": []}
    short = server.get(f"/v2/images/{digest}/check", params={"tag": tag, "detail": "false"}).json()
    details = short["evaluations"][0]["details"]
    assert "findings" not in details and "policy" not in details
    assert server.get(f"/v2/images/{digest}/vuln/everything").status_code == 400
    assert server.post("/v1/images", json={"tag": ["not", "a", "string"]}).json()["httpcode"] == 400
    assert server.post("/v2/images", json={"source": {"digest": {"pull_string": tag, "tag": tag}}}).status_code == 400
    assert server.post("/v2/images", data=b"{not json", headers={"Content-Type": "application/json"}).json() == {
        "code": 400, "error_type": "bad_request", "message": "the request body is not valid JSON", "detail": {}}
    assert server.post("/v2/images", data=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
