"""The GitLab CI/CD component run end to end with gitlab-ci-local (pinned 4.73.0, shell executor) on a
sample project that includes it twice: the noncompliant image's job fails, the compliant one passes,
the reports are produced and valid, and the merge-request note goes to the GitLab API stand-in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from ci_tools import GITLAB_CI_LOCAL, GITLAB_SCHEMA, multitool_errors, require_command, require_file
from comment_api_servers import FakeGitLab
from junitparser import JUnitXml

REPOSITORY = Path(__file__).resolve().parents[2]
GCL_INSTALL = "npm install --prefix ~/.cache/ci-gate-tools gitlab-ci-local@4.73.0 (and apt-get install rsync)"

SAMPLE_PIPELINE = """\
stages: [build, test]
include:
  - local: templates/ci-gate.yml
    inputs:
      job-name: gate-compliant
      image: oci-dir:images/compliant
      tag: registry.example.com/grp/proj/compliant:1
      dockerfile: examples/images/compliant/Dockerfile
      policy: builtin:dod
      vuln-db: images/vulns.sqlite
      version: preinstalled
      reports-dir: reports/compliant
  - local: templates/ci-gate.yml
    inputs:
      job-name: gate-noncompliant
      image: oci-dir:images/noncompliant
      tag: registry.example.com/grp/proj/noncompliant:1
      dockerfile: examples/images/noncompliant/Dockerfile
      policy: builtin:dod
      vuln-db: images/vulns.sqlite
      version: preinstalled
      reports-dir: reports/noncompliant
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A sample GitLab project (a git repository) using the component, with the example images built."""
    require_file(GITLAB_CI_LOCAL, GCL_INSTALL)
    require_command("rsync", GCL_INSTALL)
    root = tmp_path_factory.mktemp("gitlab-project")
    shutil.copytree(REPOSITORY / "templates", root / "templates")
    shutil.copytree(REPOSITORY / "examples" / "images", root / "examples" / "images")
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    build_images.build(root / "images")
    build_images.build_vuln_db(root / "images")
    (root / ".gitlab-ci.yml").write_text(SAMPLE_PIPELINE)
    (root / ".gitignore").write_text("images/\n.gitlab-ci-local/\nreports/\n")
    git = ["git", "-C", str(root), "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://gitlab.example.invalid/grp/proj.git"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "sample"], check=True)
    return root


def gitlab_ci_local(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    # The jobs see gitlab-ci-local's variables and ours, not the CI variables of the machine running the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "CHANGE_"))}
    return subprocess.run([str(GITLAB_CI_LOCAL), *arguments], cwd=project, capture_output=True, text=True,
                          timeout=600, env=env)


def test_component_passes_the_compliant_image_with_reports(project):
    completed = gitlab_ci_local(project, "--force-shell-executor", "gate-compliant")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert " PASS  gate-compliant" in completed.stdout
    reports = project / "reports" / "compliant"
    names = {p.name for p in reports.iterdir()}
    assert {"junit.xml", "gl-code-quality-report.json", "gl-container-scanning-report.json", "ci-gate.sarif",
            "ci-gate.json", "summary.md", "compliance.md"} <= names
    jsonschema.validate(json.loads((reports / "gl-container-scanning-report.json").read_text()),
                        json.loads(GITLAB_SCHEMA.read_text()))
    cases = [case for suite in JUnitXml.fromfile(str(reports / "junit.xml")) for case in suite]
    assert len(cases) > 20 and all(case.is_passed or case.is_skipped for case in cases)


def test_component_fails_the_noncompliant_image_and_notes_the_merge_request(project, tmp_path):
    with FakeGitLab(project="grp/proj", iid=12) as server:
        variables = {"GITLAB_CI": "true", "CI_API_V4_URL": server.api_url, "CI_MERGE_REQUEST_IID": "12",
                     "CI_MERGE_REQUEST_PROJECT_ID": "grp/proj", "CI_GATE_GITLAB_TOKEN": FakeGitLab.TOKEN,
                     "CI_GATE_PUBLISH_TIMEOUT": "20"}
        arguments = [item for name, value in variables.items() for item in ("--variable", f"{name}={value}")]
        for _ in range(2):  # a re-run updates the same note
            completed = gitlab_ci_local(project, "--force-shell-executor", *arguments, "gate-noncompliant")
            assert completed.returncode == 1, completed.stdout + completed.stderr
            assert " FAIL  gate-noncompliant" in completed.stdout
        notes = server.bodies_with("<!-- ci-gate:comment image=registry.example.com/grp/proj/noncompliant -->")
        assert len(notes) == 1 and "STOP" in notes[0]
        assert FakeGitLab.TOKEN not in completed.stdout + completed.stderr
    reports = project / "reports" / "noncompliant"
    scanning = json.loads((reports / "gl-container-scanning-report.json").read_text())
    jsonschema.validate(scanning, json.loads(GITLAB_SCHEMA.read_text()))
    assert {v["name"] for v in scanning["vulnerabilities"]} == {"CVE-2025-26465", "CVE-2025-26466"}
    assert multitool_errors([reports / "ci-gate.sarif"], tmp_path) == []  # the real run's SARIF, GitHub rules
    quality = json.loads((reports / "gl-code-quality-report.json").read_text())
    assert quality and all(issue["location"]["path"] == "examples/images/noncompliant/Dockerfile"
                           for issue in quality)
    cases = [case for suite in JUnitXml.fromfile(str(reports / "junit.xml")) for case in suite]
    assert sum(1 for case in cases if not case.is_passed and not case.is_skipped) >= 5


def test_expanded_component_and_repository_pipeline_are_valid_gitlab_ci(project, tmp_path):
    check = require_command("check-jsonschema", "pip install check-jsonschema")
    completed = gitlab_ci_local(project, "--preview")
    assert completed.returncode == 0, completed.stderr
    expanded = completed.stdout[completed.stdout.index("---"):]
    document = yaml.safe_load(expanded)
    job = document["gate-noncompliant"]
    assert job["artifacts"]["reports"] == {
        "junit": "reports/noncompliant/junit.xml",
        "codequality": "reports/noncompliant/gl-code-quality-report.json",
        "container_scanning": "reports/noncompliant/gl-container-scanning-report.json",
    }
    assert job["allow_failure"] is False and job["artifacts"]["when"] == "always"
    (tmp_path / "expanded.yml").write_text(expanded)
    header = next(yaml.safe_load_all((REPOSITORY / "templates" / "ci-gate.yml").read_text()))
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(header))
    for path in (tmp_path / "expanded.yml", tmp_path / "spec.yml", REPOSITORY / ".gitlab-ci.yml",
                 REPOSITORY / "examples" / "gitlab" / ".gitlab-ci.yml"):
        result = subprocess.run([check, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
                                 str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    inputs = header["spec"]["inputs"]
    assert {"image", "policy", "dockerfile", "fail-on", "stage", "version"} <= set(inputs)
