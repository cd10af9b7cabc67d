"""ci-gate as its wheel installs it, for tests and benchmarks that need the installed form (the wheel holds
the HTML template compiled by its build, build_hooks.py, which a source checkout does not have)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
BUILD_INPUTS = ("pyproject.toml", "README.md", "MANIFEST.in", "build_hooks.py")
"""What the build reads besides the package (the adapters copy the same files)."""


def installed_copy(folder: Path) -> Path:
    """The wheel built from a copy of this checkout (the build writes build/ and *.egg-info next to the
    sources) as the adapters build it (no build isolation, no index), unpacked into `folder/site`, which
    then stands for site-packages. Returns that folder."""
    source = folder / "source"
    shutil.copytree(REPOSITORY / "ci_gate", source / "ci_gate",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    for name in BUILD_INPUTS:
        shutil.copy2(REPOSITORY / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--wheel-dir", str(folder / "dist"), str(source)],
                   check=True, timeout=600, env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    (wheel,) = (folder / "dist").glob("ci_gate-*-py3-none-any.whl")
    site = folder / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site
