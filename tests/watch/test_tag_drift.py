"""The tag_drift gate on real images: `gate --compare-to IMAGE|sbom:FILE`, and no previous image is no pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci_gate.model import Analysis, ImageIdentity, Location, Package
from ci_gate.policy.gates.tag_drift import package_drift
from tests.watch.conftest import DriftImages, run_cli


def _policy(path: Path, *rules: tuple[str, str, dict[str, str]]) -> Path:
    documents = [{"id": f"r{n}", "gate": "tag_drift", "trigger": trigger, "action": action,
                  "params": [{"name": k, "value": v} for k, v in params.items()]}
                 for n, (trigger, action, params) in enumerate(rules)]
    path.write_text(json.dumps({
        "id": "drift", "name": "drift", "version": "2",
        "rule_sets": [{"id": "rs", "name": "drift", "version": "2", "rules": documents}], "allowlists": [],
        "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                      "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": []}]}))
    return path


ALL_TRIGGERS = (("packages_added", "STOP", {"package_type": "deb"}), ("packages_removed", "WARN", {}),
                ("packages_modified", "WARN", {}), ("base_image_changed", "WARN", {}))


def _gate(tmp_path: Path, image: Path, *extra: str, rules: tuple[Any, ...] = ALL_TRIGGERS
          ) -> tuple[int, list[dict[str, Any]], str]:
    report = tmp_path / "evaluation.json"
    result = run_cli("gate", f"oci-dir:{image}", "--policy", str(_policy(tmp_path / "policy.json", *rules)),
                     "--json", str(report), "--no-cache", *extra)
    assert result.returncode in (0, 1), result.stderr
    text = report.read_text()
    findings = [{"trigger": f["trigger"], "message": f["message"], "action": f["action"]}
                for evaluation in json.loads(text)["evaluations"] for f in evaluation["details"]["findings"]
                if f["gate"] == "tag_drift"]
    return result.returncode, findings, text


def test_added_package_stops_the_newer_image(tmp_path: Path, drift_images: DriftImages) -> None:
    code, findings, _ = _gate(tmp_path, drift_images.app_v2, "--compare-to", f"oci-dir:{drift_images.app_v1}")
    assert code == 1
    added = [f for f in findings if f["trigger"] == "packages_added"]
    assert [f["message"] for f in added] == [
        f"Package curl 7.88.1-10+deb12u4 (deb) was added since the previous image oci-dir:{drift_images.app_v1}"]
    assert added[0]["action"] == "stop"
    assert not [f for f in findings if f["trigger"] in ("packages_removed", "packages_modified")]
    # The dpkg database lies in the bottom (base) layer, which differs between the two images.
    assert [f["trigger"] for f in findings if f["trigger"] == "base_image_changed"] == ["base_image_changed"]


def test_removed_package_and_type_filter(tmp_path: Path, drift_images: DriftImages) -> None:
    code, findings, _ = _gate(tmp_path, drift_images.app_v1, "--compare-to", f"oci-dir:{drift_images.app_v2}")
    assert code == 0  # removed is WARN
    assert [f["message"] for f in findings if f["trigger"] == "packages_removed"] == [
        f"Package curl 7.88.1-10+deb12u4 (deb) was removed since the previous image oci-dir:{drift_images.app_v2}"]
    assert not [f for f in findings if f["trigger"] == "packages_added"]

    code, findings, _ = _gate(tmp_path, drift_images.app_v2, "--compare-to", f"oci-dir:{drift_images.app_v1}",
                              rules=(("packages_added", "STOP", {"package_type": "python"}),))
    assert code == 0 and findings == []


def test_compare_to_a_saved_sbom_and_same_base(tmp_path: Path, drift_images: DriftImages) -> None:
    sboms = tmp_path / "sboms"
    saved = run_cli("gate", f"oci-dir:{drift_images.app_v1}", "--save-sbom", str(sboms), "--fail-on", "never",
                    "--no-cache")
    assert saved.returncode == 0, saved.stderr
    (file,) = sboms.glob("*.json")
    code, findings, _ = _gate(tmp_path, drift_images.app_v2, "--compare-to", f"sbom:{file}")
    assert code == 1
    assert [f["trigger"] for f in findings if f["action"] == "stop"] == ["packages_added"]

    # Same base layers (only a label differs): nothing drifted.
    code, findings, _ = _gate(tmp_path, drift_images.other, "--compare-to", f"sbom:{file}")
    assert code == 0 and findings == []


def test_without_a_previous_image_the_gate_cannot_pass(tmp_path: Path, drift_images: DriftImages) -> None:
    code, findings, _ = _gate(tmp_path, drift_images.app_v2)
    assert code == 1  # the STOP rule could not be evaluated: it keeps its action
    assert {f["trigger"] for f in findings} == {"packages_added", "packages_removed", "packages_modified",
                                                "base_image_changed"}
    assert all("Could not evaluate trigger tag_drift/" in f["message"] for f in findings)


def test_bad_compare_to_is_one_line_and_exit_2(tmp_path: Path, drift_images: DriftImages) -> None:
    result = run_cli("gate", f"oci-dir:{drift_images.app_v2}", "--compare-to", f"sbom:{tmp_path / 'missing.json'}",
                     "--no-cache")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "missing.json" in result.stderr


def test_package_drift_keys_on_type_name_and_place() -> None:
    identity = ImageIdentity(reference="x", scheme="oci-dir", manifest_digest=None, config_digest=None)

    def image(*packages: Package) -> Analysis:
        return Analysis(identity=identity, packages=packages)

    def pkg(name: str, version: str, path: str = "/var/lib/dpkg/status", kind: str = "deb") -> Package:
        return Package(name=name, version=version, type=kind, locations=(Location(path, 0),))

    drift = package_drift(image(pkg("a", "1"), pkg("b", "1"), pkg("c", "1", "/app/c", "python")),
                          image(pkg("a", "2"), pkg("c", "1", "/app/c", "python"), pkg("c", "1", "/other/c", "python")))
    assert [(p.name, p.version) for p in drift.removed] == [("b", "1")]
    assert [(old.version, new.version) for old, new in drift.modified] == [("1", "2")]
    assert [p.locations[0].path for p in drift.added] == ["/other/c"]
