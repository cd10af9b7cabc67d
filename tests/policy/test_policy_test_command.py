"""`ci-gate policy test DIR`: cases pass, a mismatch exits 1 with a diff, bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from ci_gate.model import FileRecord, ImageConfig, to_dict
from tests.policy.helpers import analysis, dockerfile


def _fixture(directory: Path) -> None:
    image = analysis(config=ImageConfig(user="root"), files=(FileRecord("/usr/bin/su", "file", 0o4755, layer_index=0),),
                     dockerfile=dockerfile("FROM debian:12", "EXPOSE 22"))
    (directory / "fixtures").mkdir()
    (directory / "fixtures" / "app.json").write_text(json.dumps(to_dict(image)))
    (directory / "policy.yaml").write_text(yaml.safe_dump({
        "id": "p", "name": "team policy", "version": "2",
        "rule_sets": [{"id": "rs", "name": "rs", "version": "2", "rules": [
            {"id": "no-root", "gate": "image_user", "trigger": "runs_as_root", "action": "STOP", "params": []},
            {"id": "setuid", "gate": "files", "trigger": "suid_or_guid_set", "action": "WARN", "params": []}]}],
        "allowlists": [{"id": "al", "name": "al", "version": "2", "items": [
            {"id": "su", "gate": "files", "trigger_id": "*", "expires_on": "2026-07-01T00:00:00Z"}]}],
        "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                      "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": ["al"]}],
    }))


def _run(directory: Path) -> subprocess.CompletedProcess[str]:
    # The analysis cache of `image:` cases goes next to the test's folder, never into ~/.cache/ci-gate.
    environment = {**os.environ, "CI_GATE_CACHE_DIR": str(directory.parent / "ci-gate-cache")}
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "policy", "test", str(directory)],
                          capture_output=True, text=True, timeout=120, check=False, env=environment)


def test_passing_cases(tmp_path: Path) -> None:
    _fixture(tmp_path)
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump({"cases": [
        {"name": "root is stopped", "analysis": "fixtures/app.json", "policy": "policy.yaml",
         "now": "2026-06-01T00:00:00Z",
         "expect": {"final_action": "STOP", "findings": ["image_user/runs_as_root",
                                                        {"gate": "files", "allowlisted": True}],
                    "absent": ["healthcheck/missing"], "exact": True}},
        {"name": "the waiver expires", "analysis": "fixtures/app.json", "policy": "policy.yaml",
         "now": "2026-07-01T00:00:00Z",
         "expect": {"final_action": "STOP", "findings": [{"gate": "files", "allowlisted": False, "action": "warn"}]}},
        {"name": "dod pack", "analysis": "fixtures/app.json", "policy": "builtin:dod",
         "expect": {"final_action": "STOP", "findings": [{"rule_id": "dod-2.1-ssh-port"}]}},
    ]}))
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "3 passed, 0 failed"


def test_mismatch_exits_1_with_a_diff(tmp_path: Path) -> None:
    _fixture(tmp_path)
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump({"cases": [
        {"name": "wrong expectation", "analysis": "fixtures/app.json", "policy": "policy.yaml",
         "expect": {"final_action": "GO", "absent": ["image_user/runs_as_root"]}},
    ]}))
    result = _run(tmp_path)
    assert result.returncode == 1
    assert "FAIL  cases.yaml: wrong expectation" in result.stdout
    assert "-final_action: GO" in result.stdout and "+final_action: STOP" in result.stdout
    assert "-does not fire: gate=image_user trigger=runs_as_root" in result.stdout
    assert "+fires: gate=image_user trigger=runs_as_root" in result.stdout


def test_bad_case_files_exit_2(tmp_path: Path) -> None:
    _fixture(tmp_path)
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump({"cases": [{"name": "x", "policy": "policy.yaml",
                                                                    "expect": {"final_action": "GO"}}]}))
    result = _run(tmp_path)
    assert result.returncode == 2
    assert "a case needs 'analysis' (a JSON fixture) or 'image'" in result.stderr
    (tmp_path / "cases.yaml").write_text("cases: 3\n")
    assert _run(tmp_path).returncode == 2
    assert _run(tmp_path / "missing").returncode == 2


def test_case_on_an_image(tmp_path: Path) -> None:
    from tests.support.oci import TarItem, build_oci_layout

    cases = tmp_path / "cases"
    build_oci_layout(cases / "img", [[TarItem("etc/", kind="dir", mode=0o755),
                                      TarItem("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")]],
                     tag="t", config={"User": "0:0"})
    (cases / "cases.yaml").write_text(yaml.safe_dump({"cases": [
        {"name": "uid 0 is root", "image": "oci-dir:img", "policy": "builtin:default",
         "expect": {"final_action": "WARN", "findings": [{"rule_id": "default-root-user"}]}}]}))
    result = _run(cases)
    assert result.returncode == 0, result.stdout + result.stderr
    # The analysis was cached in this test's folder (CI_GATE_CACHE_DIR), not in the user's ~/.cache/ci-gate.
    assert len(list((tmp_path / "ci-gate-cache" / "analysis").glob("*.json"))) == 1
