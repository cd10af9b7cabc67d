"""Start-up: each command imports only what it uses (issue 18, docs/architecture.md).

A fresh interpreter runs the real CLI and, as it exits, writes the names of every module it loaded;
the tests read that list. Wall time is for bench/bench_startup.py and bench/bench_analyze.py: a
module list is the part of start-up cost that does not depend on how busy the machine is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.oci import OciImage

_RECORD_MODULES = """
import atexit, json, sys
atexit.register(lambda: open({out!r}, "w").write(json.dumps(sorted(sys.modules))))
from ci_gate.cli import main
main()
"""

HEAVY_FOR_A_CACHED_GATE = ("ci_gate.analyze.catalogers", "ci_gate.analyze.secrets", "ci_gate.reports.html",
                           "ci_gate.reports.markdown", "ci_gate.publish.github", "ci_gate.stig", "rich", "requests",
                           "jinja2", "tenacity", "isal")
"""What a `gate` on a cached analysis with builtin:default, printing to a pipe, never needs: no cataloger,
no secret scanner, no report renderer, no API client, no rich tables (stdout is not a terminal)."""


def _loaded_modules(tmp_path: Path, *arguments: str,
                    **variables: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    environment = {**os.environ, "CI_GATE_CACHE_DIR": str(tmp_path / "cache"), **variables}
    for name in ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "CHANGE_ID", "CI_GATE_OUTPUT"):
        environment.pop(name, None)  # outside a CI: no summary or comment to write
    result = subprocess.run([sys.executable, "-c", _RECORD_MODULES.format(out=str(out)), *arguments],
                            capture_output=True, text=True, timeout=300, env=environment, cwd=tmp_path)
    return result, json.loads(out.read_text())


def _heavy(modules: list[str], heavy: tuple[str, ...]) -> list[str]:
    """The loaded modules that are one of `heavy` or inside one of them."""
    return [name for name in modules if any(name == prefix or name.startswith(prefix + ".") for prefix in heavy)]


def test_a_cached_gate_imports_no_cataloger_renderer_or_client(tmp_path: Path, tiny_oci: OciImage) -> None:
    image = f"oci-dir:{tiny_oci.path}"
    first, analysed = _loaded_modules(tmp_path, "gate", image, "--policy", "builtin:default")
    assert first.returncode in (0, 1), first.stderr
    assert "ci_gate.analyze.catalogers.dpkg" in analysed  # not cached yet: the analysis ran (the test can see it)
    second, cached = _loaded_modules(tmp_path, "gate", image, "--policy", "builtin:default")
    assert second.returncode == first.returncode and second.stdout == first.stdout
    assert _heavy(cached, HEAVY_FOR_A_CACHED_GATE) == []
    assert "ci_gate.policy.gates.ssh_daemon" in cached  # the policy was evaluated in this process


NOT_NEEDED_WITHOUT_A_VULNERABILITY_STORE = ("ci_gate.vulns.matching", "ci_gate.vulns.lookup", "ci_gate.vulns.ranges",
                                            "ci_gate.vulns.versions.dpkg", "ci_gate.vulns.versions.pep440",
                                            "packaging")
"""Without a store the vulnerability rules report "no data" and match nothing: no matcher, no version
comparator (those are imported per scheme, the first time one is asked for)."""


def test_a_cached_gate_without_a_vulnerability_store_loads_no_matcher(tmp_path: Path, tiny_oci: OciImage) -> None:
    image = f"oci-dir:{tiny_oci.path}"
    no_store = {"XDG_DATA_HOME": str(tmp_path / "data"), "CI_GATE_VULN_DB": ""}  # the default store, absent
    first, _ = _loaded_modules(tmp_path, "gate", image, "--policy", "builtin:default", **no_store)
    assert first.returncode in (0, 1), first.stderr
    second, cached = _loaded_modules(tmp_path, "gate", image, "--policy", "builtin:default", **no_store)
    assert second.returncode == first.returncode and second.stdout == first.stdout
    assert "no vulnerability store at" in second.stdout + second.stderr  # the vulnerability rules ran and said why
    assert "ci_gate.policy.gates.vulnerabilities" in cached
    assert _heavy(cached, NOT_NEEDED_WITHOUT_A_VULNERABILITY_STORE) == []


def test_a_report_loads_its_own_renderer_only(tmp_path: Path, tiny_oci: OciImage) -> None:
    result, modules = _loaded_modules(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", "--policy", "builtin:default",
                                      "--sarif", str(tmp_path / "out.sarif"))
    assert result.returncode in (0, 1), result.stderr
    assert json.loads((tmp_path / "out.sarif").read_text())["version"] == "2.1.0"
    assert "ci_gate.reports.sarif" in modules
    assert _heavy(modules, ("ci_gate.reports.html", "ci_gate.reports.junit", "jinja2", "requests")) == []


def test_version_imports_no_command(tmp_path: Path) -> None:
    result, modules = _loaded_modules(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.startswith("ci-gate ")
    ours = [name for name in modules if name.startswith("ci_gate")]
    assert sorted(ours) == ["ci_gate", "ci_gate.cli", "ci_gate.errors"]


NOT_NEEDED_BY_AN_ANALYSIS_WITHOUT_A_RULES_FILE = ("yaml", "ci_gate.bounded_yaml", "xml.etree", "sqlite3", "socket")
"""`analyze` without `--secret-rules` reads no YAML: the built-in secret rules are Python data, and the
YAML parser is imported only to read a rules file (~20 ms of every analysis's start-up). An image without
a pom.xml or an SQLite rpm database (this one: dpkg only) loads no XML parser and no sqlite3; output to a
file needs no socket module."""


def test_a_plain_analysis_loads_no_yaml_xml_or_sqlite(tmp_path: Path, tiny_oci: OciImage) -> None:
    out = tmp_path / "analysis.json"
    result, modules = _loaded_modules(tmp_path, "analyze", f"oci-dir:{tiny_oci.path}", "-o", "json", "--no-cache",
                                      "--file", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["packages"]  # the analysis ran in this process
    assert "ci_gate.secrets.scanner" in modules  # and searched for secrets, with the built-in rules
    assert _heavy(modules, NOT_NEEDED_BY_AN_ANALYSIS_WITHOUT_A_RULES_FILE) == []
