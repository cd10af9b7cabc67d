"""The Jenkins shared library: parsed by Groovy 2.4 (the Groovy Jenkins bundles), and `call()` really
executed with the Jenkins steps stood in by recording closures; `sh` runs the real ci-gate on the
example images, and the pull-request comment goes to the GitHub API stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ci_tools import JAVA_HOME, require_command
from comment_api_servers import FakeGitHub

REPOSITORY = Path(__file__).resolve().parents[2]
LIBRARY = REPOSITORY / "integrations" / "jenkins"
GROOVY_INSTALL = "apt-get install groovy (and set JAVA_HOME to a JDK 17)"


def groovy(*arguments: str) -> subprocess.CompletedProcess[str]:
    require_command("groovy", GROOVY_INSTALL)
    if not Path(JAVA_HOME).is_dir():
        pytest.skip(f"JAVA_HOME {JAVA_HOME} does not exist: {GROOVY_INSTALL}")
    # The build environment is the scenario's: none of the CI variables of the machine running the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "CHANGE_"))}
    env["JAVA_HOME"] = JAVA_HOME
    return subprocess.run(["groovy", *arguments], cwd=LIBRARY, capture_output=True, text=True, env=env,
                          timeout=600)


def test_library_parses_with_jenkins_groovy():
    completed = groovy("test/parseCheck.groovy", "vars/ciGate.groovy", "Jenkinsfile", "test/ciGateHarness.groovy")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("OK   ") == 3


def test_parse_check_catches_a_syntax_error(tmp_path):
    broken = tmp_path / "broken.groovy"
    broken.write_text("def call(Map config) {\n    sh(script: 'x'\n}\n")
    completed = groovy("test/parseCheck.groovy", str(broken))
    assert completed.returncode == 1 and "FAIL" in completed.stdout


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("jenkins-workspace")
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    build_images.build(root / "images")
    build_images.build_vuln_db(root / "images")
    return root


def run_scenarios(tmp_path: Path, scenarios: list[dict]) -> dict:
    scenario_file = tmp_path / "scenarios.json"
    result_file = tmp_path / "results.json"
    scenario_file.write_text(json.dumps(scenarios))
    completed = groovy("test/ciGateHarness.groovy", "vars/ciGate.groovy", str(scenario_file), str(result_file))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(result_file.read_text())


def steps(outcome: dict) -> list[str]:
    return [call["step"] for call in outcome["calls"]]


def test_call_for_pass_stop_and_error(workspace, tmp_path):
    token = FakeGitHub.TOKEN
    with FakeGitHub(repository="acme/app", number=7) as server:
        change = {"CHANGE_ID": "7", "CHANGE_URL": "https://github.com/acme/app/pull/7",
                  "GITHUB_API_URL": server.url, "BUILD_URL": "http://jenkins.example/job/app/1/"}
        results = run_scenarios(tmp_path, [
            {"name": "pass", "workspace": str(workspace), "env": {"BRANCH_NAME": "main"},
             "config": {"image": "oci-dir:images/compliant", "policy": "builtin:dod", "vulnDb": "images/vulns.sqlite",
                        "tag": "registry.example.com/acme/app:1"}},
            {"name": "stop", "workspace": str(workspace), "env": change, "credentials": {"gh-comment": token},
             "config": {"image": "oci-dir:images/noncompliant", "policy": "builtin:dod",
                        "vulnDb": "images/vulns.sqlite", "recordSarif": True,
                        "tag": "registry.example.com/acme/app:pr-7", "credentialsId": "gh-comment",
                        "reportsDir": "reports-stop"}},
            {"name": "error", "workspace": str(workspace), "env": {},
             "config": {"image": "oci-dir:images/does-not-exist", "reportsDir": "reports-error"}},
            {"name": "unknown-option", "workspace": str(workspace), "env": {},
             "config": {"image": "oci-dir:images/compliant", "failOnn": "warn"}},
            {"name": "no-image", "workspace": str(workspace), "env": {}, "config": {}},
        ])
        comments = server.bodies_with("<!-- ci-gate:comment image=registry.example.com/acme/app -->")

    passed = results["pass"]
    assert "error" not in passed, passed
    assert steps(passed) == ["sh", "junit", "archiveArtifacts"]
    sh = passed["calls"][0]
    assert sh["returnStatus"] is True and sh["status"] == 0
    assert "'ci-gate' 'gate' 'oci-dir:images/compliant' '--policy' 'builtin:dod'" in sh["script"]
    assert "'--comment' 'off'" in sh["script"]  # not a change request
    assert passed["calls"][1]["testResults"] == "ci-gate-reports/junit.xml"
    assert passed["calls"][2]["artifacts"] == "ci-gate-reports/**"
    returned = passed["returned"]
    assert returned["exitCode"] == 0 and returned["finalAction"] in ("GO", "WARN") and returned["stopCount"] == "0"
    assert (workspace / "ci-gate-reports" / "junit.xml").is_file()

    stopped = results["stop"]
    assert steps(stopped) == ["withCredentials", "sh", "junit", "archiveArtifacts", "recordIssues", "error"]
    assert stopped["calls"][0]["bindings"] == [{"kind": "string", "credentialsId": "gh-comment",
                                                "variable": "CI_GATE_GITHUB_TOKEN"}]
    sh = stopped["calls"][1]
    assert sh["status"] == 1 and sh["credentials"] == ["CI_GATE_GITHUB_TOKEN"]
    assert "'--comment' 'auto'" in sh["script"] and token not in sh["script"]
    assert stopped["calls"][4]["tools"] == [{"tool": "sarif", "pattern": "reports-stop/ci-gate.sarif",
                                             "id": "ci-gate", "name": "ci-gate"}]
    assert stopped["error"].startswith("ci-gate: policy says STOP for oci-dir:images/noncompliant")
    assert len(comments) == 1 and "STOP" in comments[0]
    assert token not in json.dumps(stopped)

    errored = results["error"]
    assert steps(errored) == ["sh", "junit", "archiveArtifacts", "error"]
    assert errored["calls"][0]["status"] == 2
    assert "could not decide (exit 2)" in errored["error"]

    assert "unknown option 'failOnn'" in results["unknown-option"]["error"]
    assert steps(results["unknown-option"]) == ["error"]
    assert "the image option is required" in results["no-image"]["error"]
