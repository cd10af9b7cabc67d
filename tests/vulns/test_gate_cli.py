"""`ci-gate gate` end to end on a tiny Debian root filesystem: with a store, and with no data at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _rootfs(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "etc/os-release").write_text('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
                                         "ID=debian\n")
    (root / "var/lib/dpkg/status").write_text(
        "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.9-1\n"
        "Description: Secure Sockets Layer toolkit - shared libraries\n\n")
    return root


def _policy(path: Path) -> Path:
    rules = [
        {"id": "critical-fixed", "gate": "vulnerabilities", "trigger": "package", "action": "STOP",
         "params": [{"name": "package_type", "value": "all"}, {"name": "severity_comparison", "value": ">="},
                    {"name": "severity", "value": "unknown"}, {"name": "fix_available", "value": "true"}]},
        {"id": "no-data", "gate": "vulnerabilities", "trigger": "vulnerability_data_unavailable", "action": "WARN",
         "params": []},
    ]
    path.write_text(json.dumps({
        "id": "p", "name": "vulns", "version": "2",
        "rule_sets": [{"id": "rs", "name": "r", "version": "2", "rules": rules}], "allowlists": [],
        "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                      "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"], "allowlist_ids": []}]}))
    return path


def _gate(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", *arguments], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("with_store", [True, False])
def test_gate_with_and_without_vulnerability_data(tmp_path: Path, store_path: Path, with_store: bool) -> None:
    root = _rootfs(tmp_path / "rootfs")
    store = store_path if with_store else tmp_path / "missing.sqlite"
    report = tmp_path / "evaluation.json"
    result = _gate(f"dir:{root}", "--policy", str(_policy(tmp_path / "policy.json")), "--vuln-db", str(store),
                   "--json", str(report), "--no-cache", env={"CI_GATE_VULN_DB": ""})
    text = report.read_text()
    if with_store:
        assert result.returncode == 1, result.stderr
        assert "CVE-2023-5363+libssl3" in text and "3.0.11-1~deb12u2" in text
    else:
        assert result.returncode == 0, result.stderr
        assert "Distro-specific feed data not found for distro namespace: debian:12" in text


def test_vex_not_affected_suppresses_the_match_and_says_so(tmp_path: Path, store_path: Path) -> None:
    root = _rootfs(tmp_path / "rootfs")
    vex = tmp_path / "openvex.json"
    vex.write_text(json.dumps({
        "@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex/1",
        "author": "app team", "timestamp": "2026-01-01T00:00:00Z", "version": 1,
        "statements": [{"vulnerability": {"name": "CVE-2023-5363"},
                        "products": [{"@id": "pkg:deb/debian/libssl3"}],
                        "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}]}))
    report = tmp_path / "evaluation.json"
    result = _gate(f"dir:{root}", "--policy", str(_policy(tmp_path / "policy.json")), "--vuln-db", str(store_path),
                   "--vex", str(vex), "--json", str(report), "--no-cache", env={"CI_GATE_VULN_DB": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    assert "CVE-2023-5363+libssl3" not in text
    assert "vulnerable_code_not_in_execute_path" in text
