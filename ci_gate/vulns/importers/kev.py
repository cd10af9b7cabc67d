"""CISA's Known Exploited Vulnerabilities catalog (`known_exploited_vulnerabilities.json`).

Recognised by its shape, whatever the file is called: a JSON object with `catalogVersion` and a
`vulnerabilities` list whose entries carry `cveID`. `ci-gate db import` stores it next to the OSV
records; the vulnerabilities gate's `known_exploited_vulnerability` parameter reads it. An entry
without a readable CVE id is skipped and counted, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ci_gate.vulns.records import InvalidRecord, normalize_time
from ci_gate.vulns.store import ImportCounts, KnownExploitedCatalog
from ci_gate.vulns.store_writer import KnownExploitedEntry, StoreWriter

_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")


def is_kev_catalog(document: Any) -> bool:
    """True for a CISA KEV catalog document (its `catalogVersion` and `vulnerabilities[].cveID`)."""
    if not isinstance(document, Mapping) or "catalogVersion" not in document:
        return False
    entries = document.get("vulnerabilities")
    return isinstance(entries, list) and (not entries or any(isinstance(e, Mapping) and "cveID" in e
                                                             for e in entries[:10]))


def _text(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    return value.strip() if isinstance(value, str) else ""


def parse_catalog(document: Mapping[str, Any], source: str, counts: ImportCounts
                  ) -> tuple[KnownExploitedCatalog, list[KnownExploitedEntry]]:
    """The catalog and its entries; unusable entries are noted in `counts` and skipped.

    Raises InvalidRecord when the catalog itself has no version or release date."""
    version = document.get("catalogVersion")
    if not isinstance(version, str) or not version.strip():
        raise InvalidRecord("a KEV catalog without a catalogVersion")
    released = normalize_time(document.get("dateReleased"), "dateReleased", required=True)
    entries: dict[str, KnownExploitedEntry] = {}
    for index, entry in enumerate(document.get("vulnerabilities") or []):
        if not isinstance(entry, Mapping):
            counts.note(f"vulnerabilities[{index}]: not an object")
            continue
        cve = _text(entry, "cveID").upper()
        if not _CVE.match(cve):
            counts.note(f"vulnerabilities[{index}]: cveID {entry.get('cveID')!r} is not a CVE id")
            continue
        entries[cve] = KnownExploitedEntry(
            cve_id=cve, date_added=_text(entry, "dateAdded"), due_date=_text(entry, "dueDate"),
            ransomware=_text(entry, "knownRansomwareCampaignUse"), vendor_project=_text(entry, "vendorProject"),
            product=_text(entry, "product"), name=_text(entry, "vulnerabilityName"),
        )
    catalog = KnownExploitedCatalog(catalog_version=version.strip(), date_released=released,
                                    cve_ids=frozenset(entries), source=source)
    return catalog, list(entries.values())


def import_catalog(writer: StoreWriter, name: str, document: Mapping[str, Any], source: str,
                   counts: ImportCounts) -> None:
    """Replace the store's KEV catalog with this one (inside the writer's transaction)."""
    try:
        catalog, entries = parse_catalog(document, source, counts)
    except InvalidRecord as error:
        counts.note(f"{name}: {error}")
        return
    writer.replace_known_exploited(catalog, entries, counts)
    counts.newest_modified = max(counts.newest_modified, catalog.date_released)
