"""anchore-engine's VulnerabilitySummary of a vulnerability listing item and the `vuln_update` difference
between two listings (`diff_vulnerability_result`: added, removed, updated — keyed by vulnerability, feed
group, package, version and path, as anchore-engine's `catalog/utils.py diff_image_vulnerabilities`).
Shared by `ci-gate watch` and serve's vulnerability watcher (both through `ci_gate.rematch`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_SUMMARY_KEYS = (("CVE_ID", "vuln"), ("Severity", "severity"), ("Vulnerable_Package", "package"),
                 ("Fix_Available", "fix"), ("URL", "url"), ("Package_Name", "package_name"),
                 ("Package_Version", "package_version"), ("Package_Type", "package_type"), ("Feed", "feed"),
                 ("Feed_Group", "feed_group"))


def summary(item: Mapping[str, Any]) -> dict[str, Any]:
    """anchore-engine's VulnerabilitySummary of one vulnerability listing item."""
    return {engine: item.get(ours) for engine, ours in _SUMMARY_KEYS}


def identity(item: Mapping[str, Any]) -> str:
    """What tells one vulnerability of an image from another: vulnerability, feed group, package, version, path."""
    return json.dumps([item.get("vuln"), item.get("feed_group"), item.get("package_name"),
                       item.get("package_version"), item.get("package_path")])


def diff(old: Mapping[str, dict[str, Any]], new: Mapping[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """`{added, removed, updated}` between two identity → summary maps."""
    return {"added": [new[k] for k in sorted(new.keys() - old.keys())],
            "removed": [old[k] for k in sorted(old.keys() - new.keys())],
            "updated": [new[k] for k in sorted(new.keys() & old.keys()) if new[k] != old[k]]}
