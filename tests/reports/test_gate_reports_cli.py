"""Every report from ONE real `ci-gate gate` run on the example images, through the CLI: the files
exist, are written atomically (no temporary files left), follow --template, and the SARIF / JUnit
point at the Dockerfile lines of the noncompliant image."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from junitparser import JUnitXml

REPOSITORY = Path(__file__).resolve().parents[2]
REPORTS = {
    "--json": "ci-gate.json", "--junit": "junit.xml", "--sarif": "ci-gate.sarif",
    "--gitlab-report": "gl-container-scanning-report.json", "--codequality": "gl-code-quality-report.json",
    "--markdown": "summary.md", "--compliance": "compliance.md",
}



def gate(images: dict[str, Path], name: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    arguments = [sys.executable, "-m", "ci_gate.cli", "gate", f"oci-dir:{images[name]}", "--policy", "builtin:dod",
                 "--vuln-db", str(images["vuln-db"]), "--tag", f"registry.example.com/acme/{name}:1",
                 "--dockerfile", f"examples/images/{name}/Dockerfile", "--comment", "off", "--no-cache"]
    for flag, file_name in REPORTS.items():
        arguments += [flag, str(out / file_name)]
    # Not inside a CI here: no summaries, outputs or comments from the test's own environment.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
    return subprocess.run([*arguments, *extra], cwd=REPOSITORY, capture_output=True, text=True, env=environment,
                          timeout=300)


def test_one_gate_run_writes_every_report(images, tmp_path):
    template = tmp_path / "team.md.j2"
    template.write_text("Team gate: {{ icon }} {{ final_action }} for {{ image }} "
                        "({{ counts.stop }} STOP){% for f in findings[:3] %}\n- {{ f.title | md }}{% endfor %}\n")
    out = tmp_path / "reports"
    completed = gate(images, "noncompliant", out, "--template", str(template))
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORTS.values())  # nothing half-written left
    summary = (out / "summary.md").read_text()
    assert summary.startswith("Team gate: 🛑 STOP for registry.example.com/acme/noncompliant:1")
    assert "| DISA CIDG | 2.1 |" in (out / "compliance.md").read_text()

    run = json.loads((out / "ci-gate.sarif").read_text())["runs"][0]
    assert run["automationDetails"]["id"] == "ci-gate/registry.example.com-acme-noncompliant/"
    ports = [r for r in run["results"] if r["ruleId"].startswith("dockerfile.exposed_ports")]
    location = ports[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "examples/images/noncompliant/Dockerfile"
    assert location["region"]["startLine"] == 6
    assert all("sha256" not in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
               for r in run["results"])

    cases = [case for suite in JUnitXml.fromfile(str(out / "junit.xml")) for case in suite]
    failed = [case for case in cases if not case.is_passed and not case.is_skipped]
    assert any(case.name.startswith("exposed_ports") for case in failed)
    assert len({(case.classname, case.name) for case in cases}) == len(cases)
    secret_text = "".join((out / name).read_text() for name in REPORTS.values())
    assert "bPxRfiCYEXAMPLEKEY" not in secret_text and "IOSFODNN7EXAMPLE" not in secret_text


def test_compliant_image_passes_with_every_report(images, tmp_path):
    completed = gate(images, "compliant", tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    quality = json.loads((tmp_path / "gl-code-quality-report.json").read_text())
    assert all(issue["severity"] in ("minor", "info") for issue in quality)  # WARNs only
    scanning = json.loads((tmp_path / "gl-container-scanning-report.json").read_text())
    assert scanning["vulnerabilities"] == []
