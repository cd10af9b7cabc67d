"""CISA's Known Exploited Vulnerabilities catalog: import (recognised by its shape), `db status`,
the schema migration, and the vulnerabilities parameter `known_exploited_vulnerability`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from ci_gate.vulns.importers.osv import import_paths
from ci_gate.vulns.store import SCHEMA_VERSION, VulnerabilityStore
from tests.policy.helpers import rule

from .test_gate import evaluate_rules


def kev_catalog(version: str, released: str, cves: list[str], extra: list[Any] | None = None) -> dict[str, Any]:
    """A catalog in CISA's published shape (fields as in known_exploited_vulnerabilities.json)."""
    return {
        "title": "CISA Catalog of Known Exploited Vulnerabilities",
        "catalogVersion": version,
        "dateReleased": released,
        "count": len(cves),
        "vulnerabilities": [
            {"cveID": cve, "vendorProject": "Vendor", "product": "Product", "vulnerabilityName": f"{cve} flaw",
             "dateAdded": "2021-12-10", "shortDescription": "Exploited in the wild.",
             "requiredAction": "Apply updates per vendor instructions.", "dueDate": "2021-12-24",
             "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": ["CWE-20"]}
            for cve in cves
        ] + (extra or []),
    }


def write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True,
                          env={**os.environ}, timeout=120)


def test_import_and_status(tmp_path: Path, store_path: Path) -> None:
    before = VulnerabilityStore(store_path).status()
    catalog = write(tmp_path / "known_exploited_vulnerabilities.json",
                    kev_catalog("2025.01.10", "2025-01-10T17:01:46.7271Z", ["CVE-2021-44228", "cve-2023-5363"],
                                extra=[{"cveID": "not-a-cve"}, "junk"]))
    imported = cli("db", "import", str(catalog), "--vuln-db", str(store_path))
    assert imported.returncode == 0, imported.stderr
    assert "2 records (2 new" in imported.stderr and "2 skipped" in imported.stderr
    with VulnerabilityStore(store_path) as store:
        status = store.status()
        kev = store.known_exploited()
    assert kev is not None and kev.cve_ids == {"CVE-2021-44228", "CVE-2023-5363"}
    assert (status.kev_catalog_version, status.kev_count) == ("2025.01.10", 2)
    assert status.kev_date_released == "2025-01-10T17:01:46.727100Z"
    # A KEV catalog is no vulnerability sync: stale_feed_data keeps seeing the OSV import's date.
    assert status.updated_at == before.updated_at and status.vulnerability_count == before.vulnerability_count
    shown = cli("db", "status", "--vuln-db", str(store_path))
    assert "CISA KEV:       2025.01.10 (released 2025-01-10T17:01:46.727100Z), 2 CVEs" in shown.stdout
    as_json = json.loads(cli("db", "status", "--vuln-db", str(store_path), "-o", "json").stdout)
    assert as_json["kev_catalog_version"] == "2025.01.10" and as_json["kev_count"] == 2


def test_a_newer_catalog_replaces_an_older_one_never_the_reverse(tmp_path: Path, store_path: Path) -> None:
    newer = write(tmp_path / "newer.json", kev_catalog("2025.02.01", "2025-02-01T00:00:00Z", ["CVE-2021-44228"]))
    older = write(tmp_path / "older.json", kev_catalog("2025.01.01", "2025-01-01T00:00:00Z", ["CVE-2023-5363"]))
    import_paths([newer], store_path)
    import_paths([older], store_path)
    with VulnerabilityStore(store_path) as store:
        kev = store.known_exploited()
    assert kev is not None and kev.catalog_version == "2025.02.01" and kev.cve_ids == {"CVE-2021-44228"}
    # A CVE CISA removed stops counting: the catalog replaces, it does not merge.
    newest = write(tmp_path / "newest.json", kev_catalog("2025.03.01", "2025-03-01T00:00:00Z", ["CVE-2023-5363"]))
    import_paths([newest], store_path)
    with VulnerabilityStore(store_path) as store:
        assert store.known_exploited().cve_ids == {"CVE-2023-5363"}  # type: ignore[union-attr]


def test_a_schema_1_store_is_read_and_migrated_by_the_next_import(tmp_path: Path, store_path: Path) -> None:
    connection = sqlite3.connect(store_path)
    connection.execute("DROP TABLE known_exploited")
    connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()
    with VulnerabilityStore(store_path) as store:
        assert store.known_exploited() is None and store.status().schema_version == "1"
    catalog = write(tmp_path / "kev.json", kev_catalog("2025.01.10", "2025-01-10T00:00:00Z", ["CVE-2021-44228"]))
    import_paths([catalog], store_path)
    with VulnerabilityStore(store_path) as store:
        assert store.status().schema_version == SCHEMA_VERSION == "2"
        assert store.known_exploited() is not None


def _kev_rule(value: str, action: str = "STOP") -> dict[str, Any]:
    return rule("vulnerabilities", "package", {"package_type": "all", "severity_comparison": ">=",
                                                 "known_exploited_vulnerability": value},
                action=action)


def test_known_exploited_vulnerability_selects_by_cve_and_alias(tmp_path: Path, store_path: Path) -> None:
    # log4j is reported by its GHSA id: it is known exploited through its CVE alias.
    import_paths([write(tmp_path / "kev.json", kev_catalog("1", "2025-01-10T00:00:00Z", ["CVE-2021-44228"]))],
                 store_path)
    exploited = evaluate_rules([_kev_rule("true")], store_path)
    assert [f.trigger_id for f in exploited.findings] == ["GHSA-jfh8-c2jp-5v3q+log4j-core-2.14.1.jar"]
    assert exploited.final_action == "STOP"
    others = {f.trigger_id for f in evaluate_rules([_kev_rule("false")], store_path).findings}
    assert "GHSA-jfh8-c2jp-5v3q+log4j-core-2.14.1.jar" not in others and "CVE-2023-5363+libssl3" in others
    # An OS advisory's CVE is checked by its own id.
    import_paths([write(tmp_path / "kev2.json", kev_catalog("2", "2025-02-10T00:00:00Z", ["CVE-2023-5363"]))],
                 store_path)
    assert [f.trigger_id for f in evaluate_rules([_kev_rule("true")], store_path).findings] == [
        "CVE-2023-5363+libssl3"]


def test_without_a_catalog_the_rule_fails_closed(store_path: Path) -> None:
    # Even an allowlist item that covers every vulnerabilities finding does not excuse an unchecked rule.
    evaluation = evaluate_rules(
        [_kev_rule("true")], store_path,
        allowlists=[{"id": "w", "name": "w", "version": "2",
                     "items": [{"id": "everything", "gate": "vulnerabilities", "trigger_id": "*"}]}],
        mappings=[{"id": "m", "name": "all", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"},
                   "rule_set_ids": ["rs"], "allowlist_ids": ["w"]}])
    assert [(f.trigger_id, f.effective_action) for f in evaluation.findings] == [("evaluation_error", "STOP")]
    assert "CISA KEV catalog" in evaluation.findings[0].message
    assert evaluation.final_action == "STOP"
