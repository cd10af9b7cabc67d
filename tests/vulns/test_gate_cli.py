"""`ci-gate gate` end to end on a tiny Debian root filesystem: with a store, and with no data at all."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ci_gate.vulns.store import SCHEMA_VERSION


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
    report = tmp_path / "evaluation.json"
    # Without a store: nothing named, and nothing at the default location (only that may be absent).
    store = ["--vuln-db", str(store_path)] if with_store else []
    result = _gate(f"dir:{root}", "--policy", str(_policy(tmp_path / "policy.json")), *store,
                   "--json", str(report), "--no-cache",
                   env={"CI_GATE_VULN_DB": "", "XDG_DATA_HOME": str(tmp_path / "empty-data-home")})
    text = report.read_text()
    if with_store:
        assert result.returncode == 1, result.stderr
        assert "CVE-2023-5363+libssl3" in text and "3.0.11-1~deb12u2" in text
    else:
        assert result.returncode == 0, result.stderr
        assert "Distro-specific feed data not found for distro namespace: debian:12" in text


def _future_schema_store(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes())
    with sqlite3.connect(target) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    connection.close()
    return target


def _foreign_sqlite(target: Path) -> Path:
    with sqlite3.connect(target) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()
    return target


BAD_STORES = {
    "missing": (lambda tmp, store: tmp / "missing.sqlite", "does not exist: create it with `ci-gate db import"),
    "directory": (lambda tmp, store: tmp, "is a directory, not a store file"),
    "readme": (lambda tmp, store: _write(tmp / "README.md", "# not a store\n"), "not an SQLite database"),
    "empty": (lambda tmp, store: _write(tmp / "empty.sqlite", ""), "(an empty file)"),
    "foreign-sqlite": (lambda tmp, store: _foreign_sqlite(tmp / "other.sqlite"), "not a ci-gate vulnerability store"),
    "future-schema": (lambda tmp, store: _future_schema_store(store, tmp / "future.sqlite"),
                      f"written by a newer ci-gate (store schema 99; "
                      f"this one reads {SCHEMA_VERSION}): upgrade ci-gate"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("kind", sorted(BAD_STORES))
@pytest.mark.parametrize("given_by", ["flag", "environment"])
def test_a_named_store_that_cannot_be_used_fails_closed(tmp_path: Path, store_path: Path, kind: str,
                                                         given_by: str) -> None:
    """Never a silent pass without the data that was asked for: exit 2, one line naming the path and the fix."""
    root = _rootfs(tmp_path / "rootfs")
    stores = tmp_path / "stores"
    stores.mkdir()
    make, expected = BAD_STORES[kind]
    bad = make(stores, store_path)
    report = tmp_path / "evaluation.json"
    flag = ["--vuln-db", str(bad)] if given_by == "flag" else []
    result = _gate(f"dir:{root}", "--policy", str(_policy(tmp_path / "policy.json")), *flag, "--json", str(report),
                   "--no-cache", env={"CI_GATE_VULN_DB": str(bad) if given_by == "environment" else "",
                                      "XDG_DATA_HOME": str(tmp_path / "data-home")})
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ci-gate: error: ") and str(bad) in lines[0] and expected in lines[0], lines[0]
    assert not report.exists()
    assert "GO" not in result.stdout


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


def test_a_bad_store_is_reported_before_the_image_is_read(tmp_path: Path) -> None:
    # Checked before the (slow) analysis: the image here does not even exist, and the store is named.
    missing = tmp_path / "missing.sqlite"
    result = _gate(f"oci-dir:{tmp_path / 'no-image'}", "--vuln-db", str(missing), "--no-cache",
                   env={"CI_GATE_VULN_DB": ""})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"ci-gate: error: --vuln-db {missing} does not exist: create it with "
                                          f"`ci-gate db import OSV-DATA --vuln-db {missing}` or `ci-gate db update "
                                          f"--vuln-db {missing}`, or correct the path"]
