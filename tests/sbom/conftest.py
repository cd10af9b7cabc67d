"""SBOM fixtures: ci-gate's analysis of the real Debian app image, and syft's SBOMs of the same image."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
from ci_gate.model import Analysis
from tests.support.oci import OciImage
from tests.support.syft import SYFT_TIMEOUT_SECONDS, SyftError, syft_binary


@dataclass(frozen=True)
class SyftSboms:
    """syft's three outputs for one image, written by one scan."""

    json: Path
    cyclonedx: Path
    spdx: Path


@pytest.fixture(scope="session")
def app_analysis(debian_app_oci: OciImage) -> Analysis:
    return analyze_image(f"oci-dir:{debian_app_oci.path}", AnalyzeOptions(use_cache=False))


@pytest.fixture(scope="session")
def syft_sboms(debian_app_oci: OciImage, tmp_path_factory: pytest.TempPathFactory) -> SyftSboms:
    folder = tmp_path_factory.mktemp("syft-sboms")
    sboms = SyftSboms(folder / "syft.json", folder / "cyclonedx.json", folder / "spdx.json")
    result = subprocess.run(
        [str(syft_binary()), "scan", f"oci-dir:{debian_app_oci.path}", "-q", "-o", f"json={sboms.json}",
         "-o", f"cyclonedx-json={sboms.cyclonedx}", "-o", f"spdx-json={sboms.spdx}"],
        capture_output=True, text=True, env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
        stdin=subprocess.DEVNULL, check=False, timeout=SYFT_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise SyftError(f"syft failed: {result.stderr[-2000:]}")
    return sboms
