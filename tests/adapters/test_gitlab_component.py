"""The GitLab CI/CD component run end to end with gitlab-ci-local (pinned 4.73.0, shell executor) the way
users run it: ci-gate's project is published (tag 0.1.0) on a git server on 127.0.0.1, a consumer
project includes the component with `include: component:`, and each job installs ci-gate from that
project at the component's commit into a venv of a Python that has nothing but pip, with the
dependencies from the hash-pinned lock (a wheel folder, no index) and vulnerability data from an OSV
mirror on 127.0.0.1. The compliant image passes, the noncompliant one STOPs (allowed to fail with
exit code 1 only), a crash still fails, the reports are valid, the merge-request note goes to the
GitLab API stand-in."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import pytest
import yaml
from actions_runner import copy_action_checkout
from ci_tools import GITLAB_CI_LOCAL, GITLAB_SCHEMA, multitool_errors, require_command, require_file
from comment_api_servers import FakeGitLab
from git_http import GitHttpServer, commit_tree, git
from install_support import bare_python, clean_path, locked_wheelhouse, offline_pip_env
from junitparser import JUnitXml
from osv_mirror import OsvMirror

REPOSITORY = Path(__file__).resolve().parents[2]
GCL_INSTALL = "npm install --prefix ~/.cache/ci-gate-tools gitlab-ci-local@4.73.0 (and apt-get install rsync)"
COMPONENT_PROJECT = "tools/ci-gate"

# A consumer project, as docs/ci-adapters.md tells users to write it.
CONSUMER_PIPELINE = """\
stages: [build, test]
include:
  - component: $CI_SERVER_FQDN/tools/ci-gate/ci-gate@0.1.0
    inputs:
      ci-gate-project: tools/ci-gate
      job-name: gate-compliant
      image: oci-dir:images/compliant
      tag: registry.example.com/grp/proj/compliant:1
      dockerfile: examples/images/compliant/Dockerfile
      policy: builtin:dod
      vuln-db-source: {mirror}
      reports-dir: reports/compliant
  - component: $CI_SERVER_FQDN/tools/ci-gate/ci-gate@0.1.0
    inputs:
      ci-gate-project: tools/ci-gate
      job-name: gate-noncompliant
      image: oci-dir:images/noncompliant
      tag: registry.example.com/grp/proj/noncompliant:1
      dockerfile: examples/images/noncompliant/Dockerfile
      policy: builtin:dod
      vuln-db-source: {mirror}
      reports-dir: reports/noncompliant
      allow-failure: true
  - component: $CI_SERVER_FQDN/tools/ci-gate/ci-gate@0.1.0
    inputs:
      ci-gate-project: tools/ci-gate
      job-name: gate-missing-image
      image: oci-dir:images/does-not-exist
      vuln-db-source: {mirror}
      reports-dir: reports/missing
      allow-failure: true
"""


@pytest.fixture(scope="module")
def servers():
    with OsvMirror() as mirror, GitHttpServer(Path(tempfile.mkdtemp(prefix="git-http-"))) as git_server:
        yield mirror, git_server


@pytest.fixture(scope="module")
def project(tmp_path_factory, servers) -> Path:
    """The ci-gate project published on a git server, and a consumer project including its component."""
    require_file(GITLAB_CI_LOCAL, GCL_INSTALL)
    require_command("rsync", GCL_INSTALL)
    require_command("git", "apt-get install git")
    mirror, git_server = servers
    root = tmp_path_factory.mktemp("gitlab")
    # ci-gate as its maintainers tag it: this checkout's files at tag 0.1.0.
    component_source = copy_action_checkout(REPOSITORY, root / "ci-gate")
    commit_tree(component_source, "ci-gate", tag="0.1.0")
    git_server.publish(component_source, COMPONENT_PROJECT)

    consumer = root / "app"
    shutil.copytree(REPOSITORY / "examples" / "images", consumer / "examples" / "images")
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    build_images.build(consumer / "images")
    (consumer / ".gitlab-ci.yml").write_text(CONSUMER_PIPELINE.format(mirror=mirror.url))
    (consumer / ".gitignore").write_text("images/\n.gitlab-ci-local/\nreports/\n.ci-gate-cache/\n")
    commit_tree(consumer, "app")
    git(consumer, "remote", "add", "origin", f"{git_server.url}/grp/app.git")
    return consumer


@pytest.fixture(scope="module")
def job_environment(tmp_path_factory) -> dict[str, str]:
    """What the job sees: a Python with only pip (no dev extras, no system packages) as python3, and the
    locked wheels instead of an index; none of the CI variables of the machine running the tests."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "CHANGE_", "PIP_", "PYENV", "PYTHON", "VIRTUAL_ENV"))}
    env.update(offline_pip_env(locked_wheelhouse()))
    env["PATH"] = clean_path(bare_python(tmp_path_factory.mktemp("job-python") / "venv"))
    return env


def gitlab_ci_local(project: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(GITLAB_CI_LOCAL), *arguments], cwd=project, capture_output=True, text=True,
                          timeout=900, env=env)


def job_log(project: Path, job: str) -> str:
    return (project / ".gitlab-ci-local" / "output" / f"{job}.log").read_text()


def test_component_from_its_project_passes_the_compliant_image_with_reports(project, job_environment, servers):
    mirror, git_server = servers
    completed = gitlab_ci_local(project, job_environment, "--force-shell-executor", "gate-compliant")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert " PASS  gate-compliant" in completed.stdout
    # the component came from its project's tag, and ci-gate from the same commit, over git
    assert any(request.startswith("GET /tools/ci-gate.git/info/refs") for request in git_server.requests)
    assert sum(1 for request in git_server.requests if request.startswith("POST /tools/ci-gate.git")) >= 2
    assert "ci-gate 0.1.0" in output
    # vulnerability data by default, from the mirror, stated in the job log
    assert "/Debian/all.zip" in " ".join(mirror.downloads())
    assert "ci-gate: vulnerability data: updated now" in output and f"{mirror.url}/Debian/all.zip" in output
    reports = project / "reports" / "compliant"
    names = {p.name for p in reports.iterdir()}
    assert {"junit.xml", "gl-code-quality-report.json", "gl-container-scanning-report.json", "ci-gate.sarif",
            "ci-gate.json", "summary.md", "compliance.md", "report.html"} <= names
    # the HTML report is kept with the other artifacts: the verdict first, the page whole
    page = (reports / "report.html").read_text()
    assert "<h1>GO: " in page or "<h1>WARN: " in page
    assert page.rstrip().endswith("</html>")
    jsonschema.validate(json.loads((reports / "gl-container-scanning-report.json").read_text()),
                        json.loads(GITLAB_SCHEMA.read_text()))
    cases = [case for suite in JUnitXml.fromfile(str(reports / "junit.xml")) for case in suite]
    assert len(cases) > 20 and all(case.is_passed or case.is_skipped for case in cases)
    # it passes with vulnerability data, not for the lack of it
    rules = json.loads((reports / "ci-gate.json").read_text())["ci_gate"]["rules"]
    unavailable = [rule for rule in rules if rule["trigger"] == "vulnerability_data_unavailable"]
    assert unavailable and all(rule["fired"] == 0 for rule in unavailable)


def test_stop_is_allowed_to_fail_and_notes_the_merge_request(project, job_environment, servers, tmp_path):
    mirror, _ = servers
    downloads_before = len(mirror.downloads())
    with FakeGitLab(project="grp/proj", iid=12) as server:
        variables = {"GITLAB_CI": "true", "CI_API_V4_URL": server.api_url, "CI_MERGE_REQUEST_IID": "12",
                     "CI_MERGE_REQUEST_PROJECT_ID": "grp/proj", "CI_GATE_GITLAB_TOKEN": FakeGitLab.TOKEN,
                     "CI_GATE_PUBLISH_TIMEOUT": "20"}
        arguments = [item for name, value in variables.items() for item in ("--variable", f"{name}={value}")]
        for _ in range(2):  # a re-run updates the same note
            completed = gitlab_ci_local(project, job_environment, "--force-shell-executor", *arguments,
                                        "gate-noncompliant")
            # allow_failure: exit_codes: [1] — a STOP warns, the pipeline goes on
            assert completed.returncode == 0, completed.stdout + completed.stderr
            assert " WARN  gate-noncompliant" in completed.stdout, completed.stdout
        notes = server.bodies_with("<!-- ci-gate:comment image=registry.example.com/grp/proj/noncompliant -->")
        assert len(notes) == 1 and "STOP" in notes[0]
        assert FakeGitLab.TOKEN not in completed.stdout + completed.stderr
    # the store kept in the job's cache folder was already updated today: no download at all
    assert len(mirror.downloads()) == downloads_before
    assert "already updated today (no download)" in job_log(project, "gate-noncompliant")
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


def test_a_crash_is_not_hidden_by_allow_failure(project, job_environment):
    completed = gitlab_ci_local(project, job_environment, "--force-shell-executor", "gate-missing-image")
    # gitlab-ci-local applies exit_codes to the job status as GitLab does (WARN for an allowed code,
    # FAIL otherwise), though its own exit code stays 0 for any job with allow_failure set.
    output = completed.stdout + completed.stderr
    assert " FAIL  gate-missing-image" in output, output
    # The duration is pretty-hrtime's: "850 ms", "12 s", or "1.18 min" when a busy machine slows the job.
    assert re.search(r"gate-missing-image finished in \d+(?:\.\d+)? (?:ms|s|min|h) +FAIL 2", output), output
    assert "ci-gate: error: oci-dir:images/does-not-exist: no such directory" in output


def test_expanded_component_and_repository_pipeline_are_valid_gitlab_ci(project, job_environment, tmp_path):
    check = require_command("check-jsonschema", "pip install check-jsonschema")
    completed = gitlab_ci_local(project, job_environment, "--preview")
    assert completed.returncode == 0, completed.stderr
    expanded = completed.stdout[completed.stdout.index("---"):]
    document = yaml.safe_load(expanded)
    job = document["gate-noncompliant"]
    assert job["artifacts"]["reports"] == {
        "junit": "reports/noncompliant/junit.xml",
        "codequality": "reports/noncompliant/gl-code-quality-report.json",
        "container_scanning": "reports/noncompliant/gl-container-scanning-report.json",
    }
    # warn-only hides a STOP (exit 1) only: a crash or an install error still fails the pipeline
    assert job["allow_failure"] == {"exit_codes": [1]} and job["artifacts"]["when"] == "always"
    assert document["gate-compliant"]["allow_failure"] is False
    assert [cache["paths"] for cache in job["cache"]] == [[".ci-gate-cache/"]]
    # the job installs ci-gate from the component's own commit, not by name from an index
    commit = git(project.parent / "ci-gate", "rev-parse", "HEAD")
    assert job["variables"]["CI_GATE_SOURCE_SHA"] == commit
    (tmp_path / "expanded.yml").write_text(expanded)
    header = next(yaml.safe_load_all((REPOSITORY / "templates" / "ci-gate.yml").read_text()))
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(header))
    for path in (tmp_path / "expanded.yml", tmp_path / "spec.yml", REPOSITORY / ".gitlab-ci.yml",
                 REPOSITORY / "examples" / "gitlab" / ".gitlab-ci.yml"):
        result = subprocess.run([check, "--builtin-schema", "vendor.gitlab-ci", "--data-transform", "gitlab-ci",
                                 str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    inputs = header["spec"]["inputs"]
    assert {"image", "policy", "dockerfile", "fail-on", "stage", "install", "ci-gate-project"} <= set(inputs)
    assert "version" not in inputs and "package" not in inputs
