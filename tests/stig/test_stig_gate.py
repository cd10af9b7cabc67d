"""The `stig` policy gate over real `ci-gate stig` results: open CAT I rules STOP the gate with their
DISA ids, allowlisting works on the reported trigger ids, and an unevaluated image never passes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import oci
from tests.support.oci import TarItem

pytestmark = pytest.mark.skipif(shutil.which("oscap") is None, reason="oscap not installed (.ci/run installs it)")


def _cli(*args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATE_")}
    env["CI_GATE_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, check=False, timeout=600)


def _policy(rules: list[dict[str, Any]], allowlist: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": "stig-policy", "name": "stig", "version": "2",
        "rule_sets": [{"id": "rs", "name": "stig rules", "version": "2", "rules": rules}],
        "allowlists": [{"id": "al", "name": "waivers", "version": "2", "items": allowlist or []}],
        "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                      "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": ["al"]}],
    }


def _rule(rule_id: str, trigger: str, **params: str) -> dict[str, Any]:
    return {"id": rule_id, "gate": "stig", "trigger": trigger, "action": "STOP",
            "params": [{"name": name, "value": value} for name, value in params.items()]}


def test_open_cat_i_stops_and_is_allowlistable(rhel8_image: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    policy_file = tmp_path / "policy.json"
    rules = [_rule("cat1", "rule_failed", severity="high", profile="stig"), _rule("ne", "not_evaluated")]
    policy_file.write_text(json.dumps(_policy(rules)))

    before = _cli("gate", rhel8_image, "--policy", str(policy_file), "--json", "first.json", cache=cache, cwd=tmp_path)
    assert before.returncode == 1  # not evaluated yet: never a pass
    findings = json.loads((tmp_path / "first.json").read_text())["evaluations"][0]["details"]["findings"]
    assert [f["trigger"] for f in findings] == ["not_evaluated"]

    assert _cli("stig", rhel8_image, cache=cache, cwd=tmp_path).returncode == 1
    result = _cli("gate", rhel8_image, "--policy", str(policy_file), "--json", "second.json", cache=cache, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    findings = json.loads((tmp_path / "second.json").read_text())["evaluations"][0]["details"]["findings"]
    assert {f["trigger"] for f in findings} == {"rule_failed"}
    telnet = [f for f in findings if "package_telnet-server_removed" in f["message"]]
    assert len(telnet) == 1 and "CAT I, V-230487, RHEL-08-040000, SV-230487r" in telnet[0]["message"]
    assert all(re.search(r"\(CAT I[,;]", f["message"]) for f in findings)  # severity=high: CAT I only
    assert len(findings) >= 2  # e.g. ensure_redhat_gpgkey_installed, which has no DISA id
    json_report = json.loads((tmp_path / "second.json").read_text())
    assert json_report  # the evaluation JSON carries the findings with their DISA ids (asserted above)

    waived = _policy(rules, [{"id": f"w{n}", "gate": "stig", "trigger_id": f["trigger_id"], "reason": "test",
                              "expires_on": "2099-01-01T00:00:00Z"} for n, f in enumerate(findings)])
    policy_file.write_text(json.dumps(waived))
    allowed = _cli("gate", rhel8_image, "--policy", str(policy_file), cache=cache, cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stdout

    only_telnet = _policy([_rule("t", "rule_failed", rule_ids="V-230487")])
    policy_file.write_text(json.dumps(only_telnet))
    # (the GitLab container-scanning report carries vulnerabilities only, not policy findings)
    formats = {"--junit": "r.xml", "--sarif": "r.sarif", "--markdown": "r.md", "--compliance": "r.html",
               "--codequality": "r.cq.json"}
    telnet_only = _cli("gate", rhel8_image, "--policy", str(policy_file), "--json", "third.json",
                       *[part for flag, name in formats.items() for part in (flag, name)], cache=cache, cwd=tmp_path)
    findings = json.loads((tmp_path / "third.json").read_text())["evaluations"][0]["details"]["findings"]
    assert telnet_only.returncode == 1 and len(findings) == 1 and "telnet" in findings[0]["message"]
    for name in formats.values():  # the open CAT I rule with its DISA ids, in every findings report
        text = (tmp_path / name).read_text()
        assert "V-230487" in text and "RHEL-08-040000" in text, name


def test_another_image_digest_is_not_evaluated(rhel8_image: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert _cli("stig", rhel8_image, cache=cache, cwd=tmp_path).returncode == 1
    other = oci.build_oci_layout(tmp_path / "other", [[TarItem("etc/os-release", b"ID=rhel\nVERSION_ID=8.9\n")]],
                                 tag="other")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump(_policy([_rule("ne", "not_evaluated", profile="stig")])))
    result = _cli("gate", f"oci-dir:{other.path}", "--policy", str(policy_file), cache=cache, cwd=tmp_path)
    assert result.returncode == 1


def test_builtin_dod_stops_on_open_cat_i(rhel8_image: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = _cli("gate", rhel8_image, "--policy", "builtin:dod", "--json", "before.json", cache=cache, cwd=tmp_path)
    findings = json.loads((tmp_path / "before.json").read_text())["evaluations"][0]["details"]["findings"]
    assert before.returncode in (1, 2) and not [f for f in findings if f["gate"] == "stig"]
    assert _cli("stig", rhel8_image, cache=cache, cwd=tmp_path).returncode == 1
    after = _cli("gate", rhel8_image, "--policy", "builtin:dod", "--json", "after.json", "--junit", "after.xml",
                 "--sarif", "after.sarif", cache=cache, cwd=tmp_path)
    assert after.returncode == 1, after.stderr
    findings = json.loads((tmp_path / "after.json").read_text())["evaluations"][0]["details"]["findings"]
    stig = [f for f in findings if f["gate"] == "stig"]
    assert stig and {f["rule_id"] for f in stig} == {"dod-stig-cat1-open"}
    assert all(f["action"] == "stop" for f in stig)
    assert any("V-230487, RHEL-08-040000" in f["message"] for f in stig)
    for name in ("after.xml", "after.sarif"):
        assert "V-230487" in (tmp_path / name).read_text()
