"""serve's vulnerability watcher across accounts: an OSV import that adds a CVE for a package of one account's
subscribed image records exactly one vuln_update, in that account only, and a policy_eval when the image's
verdict flips; the other account's image (without the package) gets neither."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from ci_gate.vulns.importers.osv import import_paths
from tests.support.drift_images import build_drift_images
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess
from tests.watch.conftest import osv_record

BOB_PASSWORD = "bob-password-5e1d77"  # a test value, not a secret
VULN_UPDATE = "user.checks.tag.vulnerabilities.update"
POLICY_EVAL = "user.checks.tag.policy_evaluation.update"
POLICY = {
    "id": "stop-high", "name": "stop on high", "version": "2",
    "rule_sets": [{"id": "rs", "name": "vulns", "version": "2", "rules": [
        {"id": "high", "gate": "vulnerabilities", "trigger": "package", "action": "STOP", "params": [
            {"name": "package_type", "value": "all"}, {"name": "severity_comparison", "value": ">="},
            {"name": "severity", "value": "high"}]}]}],
    "allowlists": [],
    "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                  "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": []}],
}


def _events(session: requests.Session, url: str, event_type: str) -> list[dict[str, Any]]:
    answer = session.get(f"{url}/v1/events", params={"event_type": event_type}, timeout=10)
    answer.raise_for_status()
    return [result["event"] for result in answer.json()["results"]]


def _watch(session: requests.Session, url: str, tag: str, digest: str, serve: ServeProcess) -> None:
    """As the session's account: the strict policy active, the tag added and analysed, vuln_update on."""
    assert session.post(f"{url}/v2/policies", json=POLICY, timeout=10).status_code == 200
    assert session.put(f"{url}/v2/policies/{POLICY['id']}", params={"active": "true"}, json={},
                       timeout=10).status_code == 200
    assert session.post(f"{url}/v2/images", json={"source": {"tag": {"pull_string": tag}}},
                        timeout=30).status_code == 200
    serve.wait_until(lambda: session.get(f"{url}/v2/images/{digest}", timeout=10).json()["analysis_status"]
                     == "analyzed", f"analysis of {tag}")
    [subscription] = session.get(f"{url}/v2/subscriptions", params={
        "subscription_key": tag, "subscription_type": "vuln_update"}, timeout=10).json()
    assert session.put(f"{url}/v2/subscriptions/{subscription['subscription_id']}", json={"active": True},
                       timeout=10).status_code == 200


def test_an_import_notifies_only_the_account_whose_image_has_the_package(
        tmp_path: Path, registry: RegistryServer) -> None:
    images = build_drift_images(tmp_path / "images")  # app:2 is app:1 plus curl
    run = uuid.uuid4().hex[:8]
    admin_tag = push(images.app_v1_image, registry.host, f"vulnwatch/admin-{run}:1")
    bob_tag = push(images.app_v2_image, registry.host, f"vulnwatch/bob-{run}:2")
    vuln_db = tmp_path / "vulns.sqlite"
    unrelated = tmp_path / "osv0" / "DLA-0000-1.json"
    unrelated.parent.mkdir()
    unrelated.write_text(json.dumps(osv_record("DLA-0000-1", "glibc", "2.36-9+deb12u4")))
    import_paths([unrelated], vuln_db)

    with ServeProcess(tmp_path / "data", vuln_db=vuln_db,
                      environment={"CI_GATE_SERVE_VULN_POLL_SECONDS": "0.2"}) as serve:
        url, admin = serve.url, serve.session
        assert admin.post(f"{url}/v2/accounts", json={"name": "team-b"}, timeout=10).status_code == 200
        assert admin.post(f"{url}/v2/accounts/team-b/users", json={"username": "bob", "password": BOB_PASSWORD},
                          timeout=10).status_code == 200
        bob = requests.Session()
        bob.auth = ("bob", BOB_PASSWORD)
        _watch(admin, url, admin_tag, images.app_v1_image.manifest_digest, serve)
        _watch(bob, url, bob_tag, images.app_v2_image.manifest_digest, serve)
        serve.wait_until(lambda: serve.vuln_watch_images() == 2, "the baseline of both subscribed images")
        state = tmp_path / "data" / "vuln-watch.sqlite"
        assert state.stat().st_mode & 0o077 == 0  # tags and packages of every account: the serve user only
        for session in (admin, bob):  # a baseline records no event
            assert _events(session, url, VULN_UPDATE) == [] and _events(session, url, POLICY_EVAL) == []

        # A daily delta: a high Debian advisory for curl, which only bob's image has.
        delta = tmp_path / "delta" / "DSA-9999-1.json"
        delta.parent.mkdir()
        delta.write_text(json.dumps(osv_record("DSA-9999-1", "curl", "7.88.1-10+deb12u5")))
        import_paths([delta], vuln_db)  # what `ci-gate db import` does
        serve.wait_until(lambda: _events(bob, url, POLICY_EVAL), "bob's policy_eval")
        time.sleep(1.0)  # later polls of the same store record nothing more
        bob_updates, bob_flips = _events(bob, url, VULN_UPDATE), _events(bob, url, POLICY_EVAL)
        admin_updates, admin_flips = _events(admin, url, VULN_UPDATE), _events(admin, url, POLICY_EVAL)

    assert admin_updates == [] and admin_flips == []
    [update] = bob_updates
    assert update["resource"]["id"] == bob_tag
    assert update["details"]["imageDigest"] == images.app_v2_image.manifest_digest
    changes = update["details"]["diff_vulnerability_result"]
    assert [(v["CVE_ID"], v["Package_Name"], v["Severity"], v["Fix_Available"], v["KEV"]) for v in changes["added"]] \
        == [("DSA-9999-1", "curl", "High", "7.88.1-10+deb12u5", False)]
    assert changes["updated"] == [] and changes["removed"] == []
    [flip] = bob_flips
    assert flip["resource"]["id"] == bob_tag
    assert flip["details"]["last_eval"] == {"image_digest": images.app_v2_image.manifest_digest, "status": "pass",
                                            "policy_id": POLICY["id"]}
    assert flip["details"]["curr_eval"] == {"image_digest": images.app_v2_image.manifest_digest, "status": "fail",
                                            "policy_id": POLICY["id"]}
