"""`ci-gate serve` refuses admission settings it cannot honour: one line, exit 2, before listening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.admission.conftest import TlsFiles
from tests.support.serve import PASSWORD, free_port


def serve(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "ci_gate.cli", "serve", "--port", str(free_port()), "--data-dir",
               str(tmp_path / "data"), "--workers", "0", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD})


@pytest.mark.parametrize(("config", "expected"), [
    ("defaultMode: policy\n", "needs --tls-cert and --tls-key"),
    ("defaultMode: permissive\n", "defaultMode must be one of policy, analysis, breakglass"),
    ("policySelectors:\n- selector: {resourceType: image, selectorValueRegex: '('}\n  mode: policy\n",
     "policySelectors[0].selector.selectorValueRegex is not a valid regular expression"),
    ("allowlist: {registries: ['*']}\n", "allowlist.registries"),
    ("requestanalysis: true\n", "unknown key 'requestanalysis'"),
    ("[1, 2\n", "is not valid YAML"),
])
def test_bad_admission_config_is_one_line_exit_2(tmp_path: Path, config: str, expected: str) -> None:
    path = tmp_path / "admission.yaml"
    path.write_text(config)
    result = serve(tmp_path, "--admission-config", str(path))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_tls_pair_is_checked(tmp_path: Path, tls_files: TlsFiles) -> None:
    alone = serve(tmp_path, "--tls-cert", str(tls_files.cert))
    assert alone.returncode == 2 and "together" in alone.stderr
    swapped = serve(tmp_path, "--tls-cert", str(tls_files.ca), "--tls-key", str(tls_files.key))
    assert swapped.returncode == 2 and "cannot load --tls-cert" in swapped.stderr
    assert len(swapped.stderr.strip().splitlines()) == 1
