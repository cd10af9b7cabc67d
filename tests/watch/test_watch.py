"""`gate --save-sbom` then `ci-gate watch`: an OSV import that adds a CVE for a package of one stored image
sends exactly one vuln_update (anchore-engine's webhook body) to a real receiver, for that image only."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ci_gate.vulns.importers.osv import import_paths
from tests.watch.conftest import DriftImages, Receiver, osv_record, run_cli

pytestmark = pytest.mark.usefixtures("drift_images")


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def saved(tmp_path: Path, drift_images: DriftImages) -> tuple[Path, Path]:
    """A store with one unrelated record, and the three images gated with --save-sbom."""
    store = tmp_path / "vulns.sqlite"
    import_paths([_write(tmp_path / "osv0" / "DLA-0000-1.json", osv_record("DLA-0000-1", "glibc", "2.36-9+deb12u4"))],
                 store)
    sboms = tmp_path / "sboms"
    for image, tag in ((drift_images.app_v1, "registry.example/app:1"), (drift_images.app_v2, "registry.example/app:2"),
                       (drift_images.other, "registry.example/other:1")):
        result = run_cli("gate", f"oci-dir:{image}", "--vuln-db", str(store), "--tag", tag, "--save-sbom", str(sboms),
                         "--fail-on", "never", "--no-cache")
        assert result.returncode == 0, result.stderr
    return store, sboms


def test_save_sbom_writes_one_analysis_per_digest(saved: tuple[Path, Path]) -> None:
    _, sboms = saved
    files = sorted(sboms.glob("*.json"))
    assert len(files) == 3
    for file in files:
        document = json.loads(file.read_text())
        assert file.name == document["identity"]["manifest_digest"].replace(":", "-") + ".json"
        assert document["saved"]["tag"].startswith("registry.example/")
    names = {json.loads(f.read_text())["saved"]["tag"]: {p["name"] for p in json.loads(f.read_text())["packages"]}
             for f in files}
    assert "curl" in names["registry.example/app:2"] and "curl" not in names["registry.example/app:1"]
    assert not list(sboms.glob(".*.tmp"))  # written atomically: no temporary left behind


def test_osv_import_sends_exactly_one_vuln_update_for_the_image_that_has_the_package(
        tmp_path: Path, saved: tuple[Path, Path], receiver: Receiver) -> None:
    store, sboms = saved
    first = run_cli("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store), "--notify", receiver.url)
    assert first.returncode == 0, first.stderr
    assert "baseline recorded for 3 image(s)" in first.stdout
    assert receiver.received == []  # a first run records a baseline, it sends nothing

    # A daily delta: a new Debian advisory for curl (only app:2 has curl), listed by CISA KEV.
    delta = tmp_path / "delta"
    _write(delta / "DSA-9999-1.json", osv_record("DSA-9999-1", "curl", "7.88.1-10+deb12u5",
                                                  aliases=("CVE-2099-0001",)))
    _write(delta / "known_exploited_vulnerabilities.json", {
        "title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2099.01.02",
        "dateReleased": "2099-01-02T12:00:00.000Z", "count": 1,
        "vulnerabilities": [{"cveID": "CVE-2099-0001", "vendorProject": "curl", "product": "curl",
                             "vulnerabilityName": "curl flaw", "dateAdded": "2099-01-02",
                             "shortDescription": "Exploited.", "requiredAction": "Update.", "dueDate": "2099-01-23",
                             "knownRansomwareCampaignUse": "Unknown", "notes": ""}]})
    imported = run_cli("db", "import", str(delta), "--vuln-db", str(store))
    assert imported.returncode == 0, imported.stderr

    # The receiver's URL from the environment this time (as the templates pass it).
    second = run_cli("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store),
                     env={"CI_GATE_NOTIFY_URL": receiver.url})
    assert second.returncode == 0, second.stderr
    assert len(receiver.received) == 1, receiver.received
    headers, body = receiver.received[0]
    assert headers["content-type"] == "application/json"
    payload = body["data"]["notification_payload"]
    assert body["data"]["notification_type"] == "vuln_update" == payload["subscription_type"]
    assert payload["subscription_key"] == "registry.example/app:2"
    app2 = next(f for f in sboms.glob("*.json") if json.loads(f.read_text())["saved"]["tag"].endswith("app:2"))
    assert payload["imageDigest"] == json.loads(app2.read_text())["identity"]["manifest_digest"]
    assert headers["idempotency-key"] == payload["notificationId"] == body["dataId"]
    result = payload["diff_vulnerability_result"]
    assert result["removed"] == [] and result["updated"] == []
    assert result["added"] == [{
        "CVE_ID": "DSA-9999-1", "Severity": "High", "Vulnerable_Package": "curl-7.88.1-10+deb12u4",
        "Fix_Available": "7.88.1-10+deb12u5", "URL": "https://osv.dev/vulnerability/DSA-9999-1", "Package_Name": "curl",
        "Package_Version": "7.88.1-10+deb12u4", "Package_Type": "dpkg", "Feed": "vulnerabilities",
        "Feed_Group": "debian:12", "KEV": True}]

    # Nothing changed since: no event, and the same delta is not sent twice.
    third = run_cli("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store), "--notify", receiver.url)
    assert third.returncode == 0, third.stderr
    assert len(receiver.received) == 1


def test_a_fixed_record_updates_and_a_failed_delivery_is_sent_again(
        tmp_path: Path, saved: tuple[Path, Path], receiver: Receiver) -> None:
    store, sboms = saved
    state = tmp_path / "state" / "watch.sqlite"
    record = osv_record("DSA-9998-1", "openssl", "3.0.13-1~deb12u1", modified="2025-01-02T00:00:00Z")
    import_paths([_write(tmp_path / "osv1" / "DSA-9998-1.json", record)], store)
    watch = ("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store), "--notify", receiver.url,
             "--state", str(state))
    assert run_cli(*watch).returncode == 0  # baseline: all three images have openssl 3.0.11 (affected)

    # The advisory is corrected: openssl 3.0.11 is not affected after all (fixed before it).
    corrected = {**osv_record("DSA-9998-1", "openssl", "3.0.10-1~deb12u1"), "modified": "2025-02-01T00:00:00Z"}
    import_paths([_write(tmp_path / "osv2" / "DSA-9998-1.json", corrected)], store)
    receiver.status = 500
    failed = run_cli(*watch)
    assert failed.returncode == 2
    assert failed.stderr.count("\n") == 1 and "HTTP 500" in failed.stderr and "Traceback" not in failed.stderr
    assert "/hooks/" not in failed.stderr  # a webhook URL's path may be its secret: never printed
    assert receiver.received  # it tried (with retries)

    receiver.status = 200
    receiver.received.clear()
    again = run_cli(*watch)
    assert again.returncode == 0, again.stderr
    keys = sorted(body["data"]["notification_payload"]["subscription_key"] for _, body in receiver.received)
    assert keys == ["registry.example/app:1", "registry.example/app:2", "registry.example/other:1"]
    for _, body in receiver.received:
        result = body["data"]["notification_payload"]["diff_vulnerability_result"]
        assert [entry["CVE_ID"] for entry in result["removed"]] == ["DSA-9998-1"]
        assert result["added"] == [] and result["updated"] == []


def test_watch_fails_closed_on_bad_input(tmp_path: Path, saved: tuple[Path, Path]) -> None:
    store, sboms = saved
    missing = run_cli("watch", "--sbom-dir", str(tmp_path / "nope"), "--vuln-db", str(store), "--notify",
                      "http://127.0.0.1:9/")
    assert missing.returncode == 2 and "--sbom-dir" in missing.stderr and "Traceback" not in missing.stderr
    bad_url = run_cli("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store), "--notify", "ftp://example")
    assert bad_url.returncode == 2 and "--notify" in bad_url.stderr
    assert not (sboms / ".ci-gate-watch.sqlite").exists()  # nothing written for a run that could not start
    no_store = run_cli("watch", "--sbom-dir", str(sboms), "--vuln-db", str(tmp_path / "absent.sqlite"))
    assert no_store.returncode == 2 and "does not exist" in no_store.stderr


def test_watch_applies_vex_as_the_gate_does_and_notices_a_withdrawn_statement(
        tmp_path: Path, saved: tuple[Path, Path], receiver: Receiver, drift_images: DriftImages) -> None:
    store, sboms = saved
    app2 = next(f for f in sboms.glob("*.json") if json.loads(f.read_text())["saved"]["tag"].endswith("app:2"))
    [curl] = [p["purl"] for p in json.loads(app2.read_text())["packages"] if p["name"] == "curl"]
    vex = _write(tmp_path / "vex" / "curl.openvex.json", {
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.test/vex/1", "author": "security",
        "timestamp": "2099-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2099-0002"}, "products": [{"@id": curl.split("@")[0]}],
                        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]})
    watch = ("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store), "--notify", receiver.url)
    assert run_cli(*watch, "--vex", str(vex)).returncode == 0  # the baseline
    # curl gets two advisories; the VEX document says the product is not affected by the first one's CVE
    delta = tmp_path / "delta"
    _write(delta / "DSA-9997-1.json", osv_record("DSA-9997-1", "curl", "7.88.1-10+deb12u6",
                                                  aliases=("CVE-2099-0002",)))
    _write(delta / "DSA-9996-1.json", osv_record("DSA-9996-1", "curl", "7.88.1-10+deb12u6"))
    import_paths(sorted(delta.glob("*.json")), store)

    for _night in range(2):  # the suppressed advisory never alerts, the other once
        result = run_cli(*watch, "--vex", str(vex))
        assert result.returncode == 0, result.stderr
    [(_, body)] = receiver.received
    payload = body["data"]["notification_payload"]
    assert payload["subscription_key"] == "registry.example/app:2"
    assert [e["CVE_ID"] for e in payload["diff_vulnerability_result"]["added"]] == ["DSA-9996-1"]

    # the gate, given the same document, agrees: DSA-9997-1 is suppressed, DSA-9996-1 is not
    evaluation = tmp_path / "evaluation.json"
    gated = run_cli("gate", f"oci-dir:{drift_images.app_v2}", "--vuln-db", str(store), "--vex", str(vex),
                    "--fail-on", "never", "--json", str(evaluation))
    assert gated.returncode == 0, gated.stderr
    report = evaluation.read_text()
    assert '"trigger_id": "DSA-9996-1+curl"' in report and '"trigger_id": "DSA-9997-1+curl"' not in report
    assert "DSA-9997-1 in curl 7.88.1-10+deb12u4 suppressed by VEX" in report

    # the statement is withdrawn (no VEX any more, from $CI_GATE_VEX either): the advisory it hid arrives
    receiver.received.clear()
    withdrawn = run_cli(*watch, env={"CI_GATE_VEX": ""})
    assert withdrawn.returncode == 0, withdrawn.stderr
    [(_, body)] = receiver.received
    assert [e["CVE_ID"] for e in body["data"]["notification_payload"]["diff_vulnerability_result"]["added"]] == [
        "DSA-9997-1"]

    unreadable = run_cli(*watch, "--vex", str(tmp_path / "missing.json"))
    assert unreadable.returncode == 2 and unreadable.stderr.count("\n") == 1 and "VEX" in unreadable.stderr


def test_a_moved_folder_or_touched_files_keep_their_baseline_and_a_rewritten_file_is_re_baselined(
        tmp_path: Path, saved: tuple[Path, Path], receiver: Receiver) -> None:
    store, sboms = saved
    assert run_cli("watch", "--sbom-dir", str(sboms), "--vuln-db", str(store)).returncode == 0  # baseline
    _write(tmp_path / "delta" / "DSA-9995-1.json", osv_record("DSA-9995-1", "curl", "7.88.1-10+deb12u7"))
    import_paths([tmp_path / "delta" / "DSA-9995-1.json"], store)

    # a CI cache restore: the folder (with its state) lands elsewhere, every mtime truncated to seconds
    (tmp_path / "restored").mkdir()
    moved = sboms.rename(tmp_path / "restored" / "sboms")
    for file in moved.glob("*.json"):
        os.utime(file, ns=(0, file.stat().st_mtime_ns // 10**9 * 10**9 - 10**9))
    watch = ("watch", "--sbom-dir", str(moved), "--vuln-db", str(store), "--notify", receiver.url)
    result = run_cli(*watch)
    assert result.returncode == 0, result.stderr
    [(_, body)] = receiver.received  # the pending vuln_update was not lost to a new baseline
    payload = body["data"]["notification_payload"]
    assert payload["subscription_key"] == "registry.example/app:2"
    assert [e["CVE_ID"] for e in payload["diff_vulnerability_result"]["added"]] == ["DSA-9995-1"]

    # a really rewritten analysis (app:2 without curl) is a new baseline: no event about what it lost
    app2 = next(f for f in moved.glob("*.json") if json.loads(f.read_text())["saved"]["tag"].endswith("app:2"))
    document = json.loads(app2.read_text())
    document["packages"] = [p for p in document["packages"] if p["name"] != "curl"]
    size, mtime = app2.stat().st_size, app2.stat().st_mtime_ns
    app2.write_text(json.dumps(document))
    os.utime(app2, ns=(mtime, mtime))  # even when the mtime survives, the size gives it away
    assert app2.stat().st_size != size
    _write(tmp_path / "delta2" / "DSA-9995-1.json",
           {**osv_record("DSA-9995-1", "curl", "7.88.1-10+deb12u3"), "modified": "2099-03-01T00:00:00Z"})
    import_paths([tmp_path / "delta2" / "DSA-9995-1.json"], store)
    receiver.received.clear()
    rewritten = run_cli(*watch)
    assert rewritten.returncode == 0, rewritten.stderr
    assert receiver.received == []
