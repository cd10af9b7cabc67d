"""STIG results in the gate's reports (compliance, comment, summary, JUnit, SARIF) and the
container-level checklist of `builtin:dod`, read back by STIG Manager's own parsers; all from a real
`ci-gate stig` run with oscap on the RHEL 8 fixture (telnet-server installed on purpose)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml
from junitparser import Failure, JUnitXml

from ci_gate.stig.checklists import ASSET_ORDER, CKL_STATUSES, STIG_DATA_ORDER
from tests.reports.ci_tools import MULTITOOL_INSTALL, SARIF_SCHEMA, multitool_errors, require_file
from tests.stig.test_stig import stig_manager_reviews

pytestmark = pytest.mark.skipif(shutil.which("oscap") is None, reason="oscap not installed (.ci/run installs it)")


def _cli(*args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATE_")}
    env["CI_GATE_CACHE_DIR"] = str(cache)
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, check=False, timeout=900)



def test_stig_results_in_every_report_and_the_dod_checklist(rhel8_image: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stig = _cli("stig", rhel8_image, "--json", "stig.json", "--dod-ckl", "dod.ckl", "--dod-cklb", "dod.cklb",
                cache=cache, cwd=tmp_path)
    assert stig.returncode == 1, stig.stderr
    document = json.loads((tmp_path / "stig.json").read_text())
    cats = document["open_by_category"]
    open_rules = [rule for rule in document["rules"] if rule["result"] == "fail"]
    telnet = next(rule for rule in open_rules if rule["rule_id"].endswith("package_telnet-server_removed"))
    assert "yum erase telnet-server" in telnet["fix_text"] and "yum remove" in telnet["fix_script"]
    cat2 = next(rule for rule in open_rules if rule["category"] == "CAT II" and rule["vuln_id"])

    formats = {"--junit": "r.xml", "--sarif": "r.sarif", "--markdown": "r.md", "--compliance": "r.compliance.md"}
    gate = _cli("gate", rhel8_image, "--policy", "builtin:dod", "--json", "gate.json",
                *[part for flag, name in formats.items() for part in (flag, name)], cache=cache, cwd=tmp_path)
    assert gate.returncode == 1, gate.stderr

    # compliance report: every open rule with DISA ids, CCIs and the content's fix; the CAT counts
    compliance = (tmp_path / "r.compliance.md").read_text()
    assert f"**{cats['CAT I']} CAT I**, {cats['CAT II']} CAT II, {cats['CAT III']} CAT III" in compliance
    for rule in open_rules:
        assert rule["rule_id"].removeprefix("xccdf_org.ssgproject.content_rule_").replace("_", "\\_") in compliance
    assert "V-230487, RHEL-08-040000, SV-230487r" in compliance and "CCI-000381" in compliance
    assert "yum erase telnet-server" in compliance
    assert cat2["vuln_id"] in compliance  # CAT II open rules too, though builtin:dod stops only on CAT I
    comment = (tmp_path / "r.md").read_text()
    assert f"**{cats['CAT I']} CAT I**" in comment and "V-230487" in comment and "CCI-000381" in comment
    assert "yum erase telnet-server" in comment  # the finding's fix is the content's fix text

    # JUnit: the rules the policy stops on fail once (the stig gate's cases, with DISA ids, CCIs and the
    # fix); the other open rules are listed in the STIG suite without failing the tab
    junit = JUnitXml.fromfile(str(tmp_path / "r.xml"))
    failing = [case for suite in junit for case in suite if any(isinstance(r, Failure) for r in case.result)]
    stig_failing = [case for case in failing if case.classname.endswith(".stig")]  # the stig gate suite
    assert len(stig_failing) == cats["CAT I"]  # builtin:dod stops on CAT I only: one failure per rule
    telnet_case = next(case for case in stig_failing if case.name.endswith("package_telnet-server_removed"))
    telnet_output = " ".join(f"{result.message} {result.text}" for result in telnet_case.result)
    assert "CCI-000381" in telnet_output and "yum erase telnet-server" in telnet_output
    suite = next(s for s in junit if s.name == "ci-gate: STIG stig")
    cases = {case.name: case for case in suite}
    cat2_case = cases[f"CAT II {cat2['rule_id'].removeprefix('xccdf_org.ssgproject.content_rule_')}"]
    assert not cat2_case.result and "does not stop on it" in (cat2_case.system_out or "")
    assert cat2["vuln_id"] in (cat2_case.system_out or "")
    assert len(cases) == len(open_rules) - cats["CAT I"] + 1
    overview = cases["STIG stig: results"].system_out or ""
    assert f"open {cats['CAT I']} CAT I" in overview and "package_telnet-server_removed" in overview

    # SARIF: counts and open rules in the run, DISA ids and CCIs on the stig results; still valid
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    run = sarif["runs"][0]
    summary = run["properties"]["stig"][0]
    assert summary["openByCategory"] == cats and len(summary["openRules"]) == len(open_rules)
    stig_results = [r for r in run["results"] if r["properties"]["gate"] == "stig"]
    telnet_result = next(r for r in stig_results if r["properties"]["stig"]["rule"] == "package_telnet-server_removed")
    assert telnet_result["properties"]["stig"]["vulnId"] == "V-230487"
    assert "CCI-000381" in telnet_result["properties"]["stig"]["ccis"]
    assert "yum erase telnet-server" in telnet_result["message"]["text"]
    jsonschema.validate(sarif, json.loads(require_file(SARIF_SCHEMA, MULTITOOL_INSTALL).read_text()))
    assert multitool_errors([tmp_path / "r.sarif"], tmp_path) == []

    # the DoD container-level checklist: one item per rule of builtin:dod, statuses as the gate decided
    gate_json = json.loads((tmp_path / "gate.json").read_text())
    fired = {finding["rule_id"] for finding in gate_json["evaluations"][0]["details"]["findings"]}
    assert "dod-stig-cat1-open" in fired
    policy = yaml.safe_load(_cli("policy", "show", "builtin:dod", cache=cache, cwd=tmp_path).stdout)
    rule_ids = {rule["id"] for rule in policy["rule_sets"][0]["rules"]}
    root = ET.parse(tmp_path / "dod.ckl").getroot()
    asset = root.find("ASSET")
    assert asset is not None and [child.tag for child in asset] == list(ASSET_ORDER)
    statuses: dict[str, str] = {}
    for vuln in root.iter("VULN"):
        data = {d.findtext("VULN_ATTRIBUTE"): d.findtext("ATTRIBUTE_DATA") for d in vuln.findall("STIG_DATA")}
        names = [d.findtext("VULN_ATTRIBUTE") for d in vuln.findall("STIG_DATA")]
        assert names[:len(STIG_DATA_ORDER)] == list(STIG_DATA_ORDER)
        assert vuln.findtext("STATUS") in CKL_STATUSES
        statuses[str(data["Rule_ID"])] = str(vuln.findtext("STATUS"))
    assert set(statuses) == rule_ids
    for rule_id, status in statuses.items():
        if rule_id in fired:
            assert status == "Open", rule_id
        else:
            assert status in ("NotAFinding", "Not_Reviewed"), rule_id
    assert statuses["dod-2.1-ssh-server"] == "NotAFinding"  # checked: no SSH daemon in the fixture
    assert statuses["dod-2.10-base-pinned"] == "Not_Reviewed"  # no --dockerfile: not checked, never a pass
    cat1 = next(v for v in root.iter("VULN") if "dod-stig-cat1-open" in ET.tostring(v, encoding="unicode"))
    assert "V-230487" in (cat1.findtext("FINDING_DETAILS") or "")  # the open CAT I rule with its DISA ids

    expected = {rule_id: {"Open": "fail", "NotAFinding": "pass", "Not_Reviewed": "informational"}[status]
                for rule_id, status in statuses.items()}
    parsed = stig_manager_reviews(tmp_path / "dod.ckl", tmp_path / "dod.cklb")
    for reader in ("reviewsFromCkl", "reviewsFromCklb"):
        checklists = parsed[reader]["checklists"]
        assert parsed[reader]["target"] == rhel8_image
        assert len(checklists) == 1
        assert checklists[0]["benchmarkId"] == "Container_Image_Creation_and_Deployment_Guide_ci-gate-dod"
        assert dict(checklists[0]["reviews"]) == expected, reader
