"""GitLab container-scanning report (security report schema, declaring version 15.0.7).

15.0.7 is what every current GitLab accepts (15.0.0 to 15.2.1 on master, but 17.1/17.2 reject 15.2.x;
GitLab's security-report-schemas repository, gitlab-org/security-products/security-report-schemas).
The document is valid against GitLab's official 15.2.4 schema as well.
Only vulnerability findings fit this report (it needs a package location); policy findings go to
the Code Quality report, the JUnit report and the comment. Allowlisted vulnerabilities stay in the
report (they are still in the image) with the exception in their description.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from ci_gate import __version__
from ci_gate.model import Analysis, Evaluation, Finding
from ci_gate.reports.advice import recommendation
from ci_gate.reports.common import (
    TOOL_NAME,
    finding_text,
    image_display_name,
    image_key,
    severity_of,
    truncate,
    worst_first,
)
from ci_gate.reports.unchecked import unchecked_rules

SCHEMA_VERSION = "15.0.7"
_NAMESPACE = uuid.UUID("8f6b5a36-6a7e-4d9f-9b51-0c1e4b2d7a10")
_GITLAB_SEVERITY = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "negligible": "Info",
    "unknown": "Unknown",
}
_URL = re.compile(r"^(https?|ftp)://.+")


def render_container_scanning(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    """The container-scanning report for one image (a JSON-ready dict)."""
    when = _timestamp(evaluation.evaluated_at)
    analyzer = {"id": TOOL_NAME, "name": TOOL_NAME, "version": __version__, "vendor": {"name": TOOL_NAME}}
    vulnerabilities = []
    seen: set[str] = set()
    for finding in worst_first(evaluation.findings):
        if finding.vulnerability is None:
            continue
        entry = _vulnerability(evaluation, analysis, finding)
        if entry["id"] in seen:
            continue
        seen.add(entry["id"])
        vulnerabilities.append(entry)
    messages = [
        {
            "level": "info",
            "value": f"policy {evaluation.policy_name or evaluation.policy_id}: final "
            f"action {evaluation.final_action} ({evaluation.final_action_reason})",
        }
    ]
    unchecked = unchecked_rules(evaluation, analysis)
    for rule in evaluation.rules:
        if rule.rule_id in unchecked:
            messages.append(
                {"level": "warn", "value": f"rule {rule.rule_id} ({rule.gate}/{rule.trigger}) was not checked: "
                 f"{unchecked[rule.rule_id]}"}
            )
    if evaluation.expired_exceptions:
        messages.append(
            {
                "level": "warn",
                "value": f"{len(evaluation.expired_exceptions)} policy exceptions "
                "have expired and no longer apply",
            }
        )
    return {
        "version": SCHEMA_VERSION,
        "scan": {
            "analyzer": analyzer,
            "scanner": dict(analyzer),
            "type": "container_scanning",
            "start_time": when,
            "end_time": when,
            "status": "success",
            "messages": messages,
        },
        "vulnerabilities": vulnerabilities,
        "remediations": [],
    }


def _vulnerability(evaluation: Evaluation, analysis: Analysis, finding: Finding) -> dict[str, Any]:
    vulnerability = finding.vulnerability
    assert vulnerability is not None
    # One entry per vulnerability and package (whichever policy rules fired on it), stable across builds.
    identity = "\x1f".join(
        (
            image_key(evaluation, analysis),
            vulnerability.id,
            vulnerability.package_name,
            vulnerability.package_version,
            vulnerability.package_path,
        )
    )
    distro = analysis.distro
    operating_system = (
        " ".join(p for p in ((distro.id, distro.version_id) if distro else ()) if p) or "unknown"
    )
    description = finding_text(analysis, finding)
    if vulnerability.summary and vulnerability.summary not in description:
        description = f"{vulnerability.summary}\n\n{description}"
    if finding.allowlisted is not None:
        match = finding.allowlisted
        description += (
            f"\n\nAllowlisted ({match.allowlist_id}/{match.item_id}): {match.reason or 'no reason'}"
            + (f"; approved by {match.approved_by}" if match.approved_by else "")
            + (f"; expires {match.expires_on}" if match.expires_on else "")
        )
    entry: dict[str, Any] = {
        "id": str(uuid.uuid5(_NAMESPACE, identity)),
        "name": truncate(vulnerability.id, 255),
        "description": truncate(description, 1_048_576),
        "severity": _GITLAB_SEVERITY[severity_of(finding)],
        "solution": truncate(recommendation(finding, analysis), 7_000),
        "location": {
            "dependency": {
                "package": {"name": vulnerability.package_name or "unknown"},
                "version": vulnerability.package_version or "unknown",
            },
            "operating_system": operating_system,
            "image": image_display_name(evaluation, analysis),
        },
        "identifiers": [_identifier(vulnerability.id, vulnerability.url)],
    }
    if _URL.match(vulnerability.url or ""):
        entry["links"] = [{"url": vulnerability.url}]
    return entry


def _identifier(vulnerability_id: str, url: str) -> dict[str, str]:
    prefix = vulnerability_id.split("-", 1)[0].lower()
    kind = {"cve": "cve", "ghsa": "ghsa", "osv": "osv", "dsa": "dsa", "dla": "dla", "pysec": "pysec"}.get(
        prefix, "vulnerability"
    )
    identifier = {"type": kind, "name": vulnerability_id, "value": vulnerability_id}
    if _URL.match(url or ""):
        identifier["url"] = url
    elif kind == "cve":
        identifier["url"] = f"https://nvd.nist.gov/vuln/detail/{vulnerability_id}"
    return identifier


def _timestamp(value: str) -> str:
    """`YYYY-MM-DDTHH:MM:SS` without zone or fraction, as the schema's pattern demands."""
    if value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.strftime("%Y-%m-%dT%H:%M:%S")
        except ValueError:
            pass
    return "1970-01-01T00:00:00"
