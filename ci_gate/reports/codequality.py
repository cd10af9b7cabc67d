"""GitLab Code Quality report (the CodeClimate subset GitLab reads; its MR widget is in the free tier).

One entry per finding whose effective action is STOP or WARN (allowlisted ones are left out, so an
exception shows as "resolved" in the merge request). The location is the Dockerfile line when the
finding maps to an instruction, else the Dockerfile, else a stable path standing for the image.
Fingerprints are the shared stable finding hash: no line, tag or digest, so editing the Dockerfile
or rebuilding does not churn findings (micheh/phpcs-gitlab#56), and they are unique per finding
(ruff#3441 hid 113 of 120 findings with a per-rule fingerprint).
"""

from __future__ import annotations

from typing import Any

from ci_gate.model import Analysis, Evaluation, Finding
from ci_gate.reports.advice import recommendation
from ci_gate.reports.common import (
    TOOL_NAME,
    dockerfile_uri,
    finding_fingerprint,
    finding_text,
    finding_title,
    image_display_name,
    image_path_uri,
    severity_of,
    truncate,
    worst_first,
)

_VULNERABILITY_SEVERITY = {
    "critical": "critical",
    "high": "major",
    "medium": "minor",
    "low": "info",
    "negligible": "info",
    "unknown": "info",
}


def render_codequality(evaluation: Evaluation, analysis: Analysis) -> list[dict[str, Any]]:
    """The Code Quality report: a JSON array of issues."""
    image = image_display_name(evaluation, analysis)
    issues = []
    for finding in worst_first(evaluation.findings):
        action = finding.effective_action.upper()
        if action not in ("STOP", "WARN"):
            continue
        issues.append(
            {
                "type": "issue",
                "description": truncate(
                    f"{action} {finding_title(finding)}: {finding_text(analysis, finding)} (image {image}). "
                    f"How to fix: {recommendation(finding, analysis)}",
                    2_000,
                ),
                "check_name": f"{TOOL_NAME}/{finding.gate}/{finding.trigger}",
                "fingerprint": finding_fingerprint(evaluation, analysis, finding)[:32],
                "severity": _severity(finding, action),
                "categories": ["Security"],
                "location": _location(evaluation, analysis, finding),
            }
        )
    return issues


def _severity(finding: Finding, action: str) -> str:
    if finding.vulnerability is not None:
        severity = _VULNERABILITY_SEVERITY[severity_of(finding)]
        if action == "STOP" and severity in ("info", "minor"):
            return "major"  # the policy stops the build on it: never show it as a trifle
        return severity
    return "critical" if action == "STOP" else "minor"


def _location(evaluation: Evaluation, analysis: Analysis, finding: Finding) -> dict[str, Any]:
    dockerfile = dockerfile_uri(analysis)
    if dockerfile:
        return {"path": dockerfile, "lines": {"begin": finding.dockerfile_line or 1}}
    in_image = finding.path or (finding.vulnerability.package_path if finding.vulnerability else "")
    return {"path": image_path_uri(evaluation, analysis, in_image or finding.gate), "lines": {"begin": 1}}
