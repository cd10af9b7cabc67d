"""The Jenkins shared library: parsed by Groovy 2.4 (the Groovy Jenkins bundles), and `call()` really
executed with the Jenkins steps stood in by recording closures; `sh` is a real /bin/sh in a clean
environment (a Python with nothing but pip, the locked wheels instead of an index, an OSV mirror on
127.0.0.1): the step installs ci-gate from a checkout with the hash-pinned lock, updates the
vulnerability store in the workspace and gates the example images; the pull-request comment goes to
the GitHub API stand-in. The example Jenkinsfile runs as written under a declarative-pipeline harness."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from actions_runner import copy_action_checkout
from ci_tools import JAVA_HOME, require_command
from comment_api_servers import FakeGitHub
from install_support import bare_python, clean_path, locked_wheelhouse, offline_pip_env
from osv_mirror import OsvMirror

REPOSITORY = Path(__file__).resolve().parents[2]
LIBRARY = REPOSITORY / "integrations" / "jenkins"
JENKINSFILE = REPOSITORY / "examples" / "jenkins" / "Jenkinsfile"
GROOVY_INSTALL = "apt-get install groovy (and set JAVA_HOME to a JDK 17)"


def groovy(*arguments: str, agent: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    require_command("groovy", GROOVY_INSTALL)
    if not Path(JAVA_HOME).is_dir():
        pytest.skip(f"JAVA_HOME {JAVA_HOME} does not exist: {GROOVY_INSTALL}")
    # The build environment is the scenario's: none of the CI variables of the machine running the
    # tests, and none of its Python (no PYTHONPATH, no pyenv, no dev extras).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "CHANGE_", "PIP_", "PYENV", "PYTHON", "VIRTUAL_ENV"))}
    env.update(agent or {})
    env["JAVA_HOME"] = JAVA_HOME
    return subprocess.run(["groovy", *arguments], cwd=LIBRARY, capture_output=True, text=True, env=env,
                          timeout=600)


def test_library_parses_with_jenkins_groovy():
    completed = groovy("test/parseCheck.groovy", "vars/ciGate.groovy", str(JENKINSFILE), "test/ciGateHarness.groovy",
                       "test/pipelineHarness.groovy")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("OK   ") == 4


def test_parse_check_catches_a_syntax_error(tmp_path):
    broken = tmp_path / "broken.groovy"
    broken.write_text("def call(Map config) {\n    sh(script: 'x'\n}\n")
    completed = groovy("test/parseCheck.groovy", str(broken))
    assert completed.returncode == 1 and "FAIL" in completed.stdout


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    """A Jenkins agent: a workspace with the example images, a ci-gate checkout, a clean Python."""
    root = tmp_path_factory.mktemp("jenkins-agent")
    workspace = root / "workspace"
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    images = build_images.build(workspace / "images")
    checkout = copy_action_checkout(REPOSITORY, workspace / "ci-gate-source")
    environment = offline_pip_env(locked_wheelhouse())
    environment["PATH"] = clean_path(bare_python(root / "agent-python"))
    with OsvMirror() as mirror:
        yield {"root": root, "workspace": workspace, "images": images, "checkout": checkout, "env": environment,
               "mirror": mirror}


def run_scenarios(agent: dict, tmp_path: Path, scenarios: list[dict]) -> dict:
    scenario_file = tmp_path / "scenarios.json"
    result_file = tmp_path / "results.json"
    for scenario in scenarios:
        scenario["env"] = {**agent["env"], **scenario.get("env", {})}
    scenario_file.write_text(json.dumps(scenarios))
    completed = groovy("test/ciGateHarness.groovy", "vars/ciGate.groovy", str(scenario_file), str(result_file),
                       agent=agent["env"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(result_file.read_text())


def steps(outcome: dict) -> list[str]:
    return [call["step"] for call in outcome["calls"]]


def test_call_for_pass_stop_and_error(agent, tmp_path):
    token = FakeGitHub.TOKEN
    workspace, mirror = str(agent["workspace"]), agent["mirror"]
    venv_ci_gate = str(agent["workspace"] / ".ci-gate" / "venv" / "bin" / "ci-gate")
    with FakeGitHub(repository="acme/app", number=7) as server:
        change = {"CHANGE_ID": "7", "CHANGE_URL": "https://github.com/acme/app/pull/7",
                  "GITHUB_API_URL": server.url, "BUILD_URL": "http://jenkins.example/job/app/1/"}
        results = run_scenarios(agent, tmp_path, [
            {"name": "pass", "workspace": workspace, "env": {"BRANCH_NAME": "main"},
             "config": {"image": "oci-dir:images/compliant", "policy": "builtin:dod", "source": "ci-gate-source",
                        "vulnDbSource": mirror.url, "tag": "registry.example.com/acme/app:1"}},
            {"name": "stop", "workspace": workspace, "env": change, "credentials": {"gh-comment": token},
             "config": {"image": "oci-dir:images/noncompliant", "policy": "builtin:dod", "ciGate": venv_ci_gate,
                        "vulnDbSource": mirror.url, "recordSarif": True, "publishHtml": True,
                        "tag": "registry.example.com/acme/app:pr-7", "credentialsId": "gh-comment",
                        "reportsDir": "reports-stop"}},
            {"name": "error", "workspace": workspace, "env": {},
             "config": {"image": "oci-dir:images/does-not-exist", "ciGate": venv_ci_gate,
                        "vulnDbSource": mirror.url, "reportsDir": "reports-error"}},
            {"name": "missing-store", "workspace": workspace, "env": {},
             "config": {"image": "oci-dir:images/compliant", "ciGate": venv_ci_gate, "updateVulnDb": False,
                        "vulnDb": "no/such/vulns.sqlite", "reportsDir": "reports-missing-store"}},
            {"name": "not-installed", "workspace": workspace, "env": {},
             "config": {"image": "oci-dir:images/compliant", "reportsDir": "reports-not-installed"}},
            {"name": "unknown-option", "workspace": workspace, "env": {},
             "config": {"image": "oci-dir:images/compliant", "failOnn": "warn"}},
            {"name": "no-image", "workspace": workspace, "env": {}, "config": {}},
        ])
        comments = server.bodies_with("<!-- ci-gate:comment image=registry.example.com/acme/app -->")

    passed = results["pass"]
    assert "error" not in passed, passed
    assert steps(passed) == ["sh", "junit", "archiveArtifacts"]
    sh = passed["calls"][0]
    assert sh["returnStatus"] is True and sh["status"] == 0, sh["output"]
    # installed from the checkout with the hash-pinned lock into an isolated venv, not from an index by name
    assert "--require-hashes" in sh["script"] and "'ci-gate-source'/requirements/ci-gate.lock" in sh["script"]
    assert "--system-site-packages" not in sh["script"]
    assert "ci-gate 0.1.0" in sh["output"]
    assert "include-system-site-packages = false" in (agent["workspace"] / ".ci-gate/venv/pyvenv.cfg").read_text()
    # vulnerability data by default, from the mirror, said in the log
    assert "/Debian/all.zip" in " ".join(mirror.downloads())
    assert "ci-gate: vulnerability data: updated now" in sh["output"] and f"{mirror.url}/Debian/all.zip" in sh["output"]
    assert """"$CI_GATE" 'gate' 'oci-dir:images/compliant' '--policy' 'builtin:dod'""" in sh["script"]
    assert "'--comment' 'off'" in sh["script"]  # not a change request
    assert passed["calls"][1]["testResults"] == "ci-gate-reports/junit.xml"
    assert passed["calls"][2]["artifacts"] == "ci-gate-reports/**"
    returned = passed["returned"]
    assert returned["exitCode"] == 0 and returned["finalAction"] in ("GO", "WARN") and returned["stopCount"] == "0"
    assert returned["imageDigest"].startswith("sha256:")
    assert returned["htmlFile"] == "ci-gate-reports/report.html"  # written, archived, ready for publishHTML
    assert (agent["workspace"] / "ci-gate-reports" / "junit.xml").is_file()

    stopped = results["stop"]
    assert steps(stopped) == ["withCredentials", "sh", "junit", "archiveArtifacts", "publishHTML", "recordIssues",
                              "error"]
    assert stopped["calls"][0]["bindings"] == [{"kind": "string", "credentialsId": "gh-comment",
                                                "variable": "CI_GATE_GITHUB_TOKEN"}]
    sh = stopped["calls"][1]
    assert sh["status"] == 1 and sh["credentials"] == ["CI_GATE_GITHUB_TOKEN"]
    # the store in the workspace was updated today already: no second download
    assert "already updated today (no download)" in sh["output"]
    assert "'--comment' 'auto'" in sh["script"] and token not in sh["script"]
    # the HTML report, published as a build page (HTML Publisher) even though the stage fails
    assert stopped["calls"][4]["target"] == {"reportDir": "reports-stop", "reportFiles": "report.html",
                                             "reportName": "ci-gate report", "keepAll": True,
                                             "alwaysLinkToLastBuild": True, "allowMissing": True}
    page = (agent["workspace"] / "reports-stop" / "report.html").read_text()
    assert "<h1>STOP: <span class=\"image\">registry.example.com/acme/app:pr-7</span></h1>" in page
    assert stopped["calls"][5]["tools"] == [{"tool": "sarif", "pattern": "reports-stop/ci-gate.sarif",
                                             "id": "ci-gate", "name": "ci-gate"}]
    assert stopped["error"].startswith("ci-gate: policy says STOP for oci-dir:images/noncompliant")
    assert len(comments) == 1 and "STOP" in comments[0]
    assert token not in json.dumps(stopped)
    assert "CVE-2025-26465" in (agent["workspace"] / "reports-stop" / "ci-gate.json").read_text()

    errored = results["error"]
    assert steps(errored) == ["sh", "junit", "archiveArtifacts", "error"]
    assert errored["calls"][0]["status"] == 2
    assert "could not decide (exit 2)" in errored["error"]

    missing = results["missing-store"]
    assert missing["calls"][0]["status"] == 2
    assert "the vulnerability store no/such/vulns.sqlite does not exist" in missing["calls"][0]["output"]
    not_installed = results["not-installed"]
    assert not_installed["calls"][0]["status"] == 2
    assert "ci-gate is not on PATH" in not_installed["calls"][0]["output"]

    assert "unknown option 'failOnn'" in results["unknown-option"]["error"]
    assert steps(results["unknown-option"]) == ["error"]
    assert "the image option is required" in results["no-image"]["error"]


def test_example_jenkinsfile_runs_as_written_and_passes_the_compliant_image(agent, tmp_path):
    """The example's Gate stage on an agent whose workspace has image.tar (what the Build stage's
    `docker save` writes; no Docker daemon here) and today's store (kept by an earlier build)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    images = agent["images"]
    subprocess.run(["skopeo", "copy", "-q", f"oci:{images['compliant']}", f"docker-archive:{workspace / 'image.tar'}"],
                   check=True, capture_output=True)
    shutil.copy(REPOSITORY / "examples" / "images" / "compliant" / "Dockerfile", workspace / "Dockerfile")
    store = workspace / ".ci-gate" / "vulns.sqlite"
    store.parent.mkdir()
    subprocess.run([sys.executable, "-m", "ci_gate.cli", "db", "update", "--vuln-db", str(store), "--source",
                    agent["mirror"].url], check=True, capture_output=True)
    scenario = {"workspace": str(workspace), "stages": ["Gate", "Push"], "checkoutFrom": str(agent["checkout"]),
                "env": {**agent["env"], "BRANCH_NAME": "feature/x", "GIT_COMMIT": "0123abc"}}
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    completed = groovy("test/pipelineHarness.groovy", "vars/ciGate.groovy", str(JENKINSFILE),
                       str(tmp_path / "scenario.json"), str(tmp_path / "result.json"), agent=agent["env"])
    assert completed.returncode == 0, completed.stdout + completed.stderr
    outcome = json.loads((tmp_path / "result.json").read_text())
    assert outcome["library"] == "ci-gate@v0.1.0"
    calls = outcome["calls"]
    gate_sh = next(call for call in calls if call["step"] == "sh" and "gate" in call["script"])
    assert outcome["result"] == "SUCCESS", gate_sh["output"] + json.dumps(outcome)[-2000:]
    assert gate_sh["status"] == 0
    assert "already updated today (no download)" in gate_sh["output"]
    assert "'--tag' 'registry.example.com/team/app:0123abc'" in gate_sh["script"]
    checkout = next(call for call in calls if call["step"] == "checkout")
    assert checkout["dir"] == ".ci-gate-source"
    echoed = [call["message"] for call in calls if call["step"] == "echo"]
    assert echoed and echoed[-1].startswith(("ci-gate: WARN (0 STOP,", "ci-gate: GO (0 STOP,"))
    # Push runs on main only
    assert {"step": "when", "skipped": True} in calls
    assert not any(call["step"] == "sh" and "docker push" in call["script"] for call in calls)
