"""The context a Markdown template sees: plain, already-redacted values built from an evaluation
and its analysis (findings, issues with their fixes, the compliance requirements), never model
objects, so a custom template cannot print a secret. ci_gate.reports.markdown renders it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ci_gate import __version__
from ci_gate.model import Analysis, Evaluation, Finding, RuleOutcome
from ci_gate.reports.advice import display_origin, recommendation
from ci_gate.reports.advice_table import FIXING_GUIDE_URL, rule_advice
from ci_gate.reports.common import (
    counts,
    dockerfile_uri,
    expired_for,
    finding_text,
    finding_title,
    image_display_name,
    image_key,
    rule_of,
    security_score,
    severity_of,
    worst_first,
)
from ci_gate.reports.dockerfile_fixes import DockerfileFix, dockerfile_fix, dockerfile_fixes
from ci_gate.reports.issues import Issue, category_counts, issue_recommendation, issue_title, issues
from ci_gate.reports.unchecked import unchecked_rules

ICONS = {"STOP": "🛑", "WARN": "⚠️", "GO": "✅"}

DISA_SECTIONS = {
    "2.1": "No SSH server daemon in the image",
    "2.2": "Run as a non-privileged user",
    "2.3": "No setuid/setgid executables",
    "2.4": "Build commands with known outcomes (no remote fetches)",
    "2.5": "Only non-privileged ports exposed",
    "2.6": "Process HEALTHCHECK defined",
    "2.7": "TLS 1.2 or newer for registry pulls",
    "2.8": "Minimal cached layers",
    "2.9": "No confidential data in build files or history",
    "2.10": "Built from signed base images",
    "2.11": "Only verified packages",
    "2.12": "Only essential capabilities installed",
    "2.13": "Only ports used by the service",
    "2.14": "Built from a DoD-approved base image",
    "2.15": "Superseded images removed",
    "2.16": "Relevant STIG/SRG applied",
    "2.17": "From a trusted and approved source",
    "2.18": "No embedded credentials",
    "3.1": "The platform's registry or runtime socket is not mounted",
    "3.4": "No sensitive host system directories are mounted",
}
"""DISA Container Image Creation and Deployment Guide V2R0.6 §2, and the two §3 items an image's VOLUME
declarations can break."""

CIS_ITEMS = {
    "4.1": "A user for the container has been created",
    "4.2": "Containers use only trusted base images",
    "4.3": "Unnecessary packages are not installed",
    "4.4": "Images are scanned and rebuilt to include security patches",
    "4.5": "Content trust is enabled",
    "4.6": "HEALTHCHECK instructions have been added",
    "4.7": "Update instructions are not used alone",
    "4.8": "setuid and setgid permissions are removed",
    "4.9": "COPY is used instead of ADD",
    "4.10": "Secrets are not stored in Dockerfiles",
    "4.11": "Only verified packages are installed",
    "4.12": "All signed artifacts are validated",
}
"""CIS Docker Benchmark §4 (container images and build files)."""

_REQUIREMENT = re.compile(r"^(DISA|CIS)[\w-]*\s*([0-9]+(?:\.[0-9]+)*)", re.I)
_STATUS_ORDER = ("FAIL", "WARN", "EXCEPTION", "NOT CHECKED", "PASS")




@dataclass(frozen=True)
class FindingView:
    """One finding as the templates see it (all text already redacted)."""

    action: str
    """The effective action: STOP, WARN or GO (allowlisted)."""
    declared_action: str
    """The rule's own action before any exception."""
    gate: str
    """The Anchore gate, e.g. dockerfile."""
    trigger: str
    """The gate's trigger, e.g. exposed_ports."""
    rule_id: str
    """The policy rule that fired."""
    title: str
    """Short label, e.g. `CVE-2024-3094 in xz-utils 5.6.0-1`."""
    text: str
    """The redacted message; for secrets only rule, path, line and preview."""
    location: str
    """`Dockerfile:6`, an in-image path, or empty."""
    severity: str
    """Vulnerability severity (critical … negligible), empty for other findings."""
    score: str
    """CVSS (or severity) score as text, empty for non-vulnerabilities."""
    fixed: str
    """Fixed versions, comma separated, empty when none is known."""
    controls: tuple[str, ...]
    """The rule's controls (NIST 800-53, CCI, DISA guide, CIS)."""
    origin: str
    """base or app layer, when known."""
    exception: dict[str, str] | None
    """The exception in force: id, reason, approved_by, expires_on."""
    expired_on: str
    """When an exception that would have covered this finding expired, else empty."""
    recommendation: str = ""
    """How to fix it: the rule's own recommendation, else ci-gate's advice for the gate and trigger."""
    fix: FixView | None = None
    """The Dockerfile line it maps to and a suggested replacement, when there is one."""
    rules: tuple[str, ...] = ()
    """Every policy rule this finding's cause fires (one row for port 22, not three)."""
    count: int = 1
    """How many findings this row stands for (findings sharing a cause are merged)."""


@dataclass(frozen=True)
class FixView:
    """A suggested Dockerfile change, as templates see it."""

    location: str
    """`Dockerfile:6` or `Dockerfile:6-7`."""
    original: str
    """The line as it is (empty when it may hold a secret)."""
    replacement: str
    """The suggested text; empty means delete the line."""
    exact: bool
    """True when the replacement can be applied as it is."""
    diff: str
    """The change as diff lines (`- old`, `+ new`)."""


@dataclass(frozen=True)
class FixItem:
    """One suggested Dockerfile change and the problems it fixes."""

    title: str
    fix: FixView


def _fix_view(finding: Finding, analysis: Analysis) -> FixView | None:
    fix = dockerfile_fix(finding, analysis, dockerfile_uri(analysis))
    return _as_fix_view(fix) if fix is not None else None


def _as_fix_view(fix: DockerfileFix) -> FixView:
    lines = f"{fix.start_line}" + (f"-{fix.end_line}" if fix.end_line > fix.start_line else "")
    before = f"- {fix.original}" if fix.original else "- (this line: not quoted here, it may hold a secret)"
    after = [f"+ {line}" for line in fix.replacement.splitlines()] if fix.replacement else []
    return FixView(f"{fix.path}:{lines}", fix.original, fix.replacement, fix.exact, "\n".join([before, *after]))


def _fix_items(merged: list[Issue], analysis: Analysis) -> tuple[list[FixItem], dict[str, FixView]]:
    """The combined Dockerfile changes (one per line) with the titles of the problems each fixes, and the
    change that fixes each issue (by issue key)."""
    owner = {id(finding): issue for issue in merged for finding in issue.findings}
    items = []
    by_issue: dict[str, FixView] = {}
    for fix, findings in dockerfile_fixes([f for i in merged for f in i.findings], analysis, dockerfile_uri(analysis)):
        view = _as_fix_view(fix)
        covered = list(dict.fromkeys(owner[id(finding)].key for finding in findings))
        titles = [issue_title(issue, analysis) for issue in merged if issue.key in covered]
        for key in covered:
            by_issue.setdefault(key, view)
        items.append(FixItem("; ".join(titles), view))
    return items, by_issue


def _issue_view(evaluation: Evaluation, analysis: Analysis, issue: Issue, fix: FixView | None = None
                ) -> FindingView:
    """One row for findings that share a cause: the worst one's details, every rule, one fix."""
    view = _view(evaluation, analysis, issue.first)
    expired = [expired_for(evaluation, member) for member in issue.findings if member.allowlisted is None]
    return replace(
        view,
        title=issue_title(issue, analysis),
        expired_on=next((e.expires_on for e in expired if e is not None), ""),
        action=issue.action,
        controls=issue.controls,
        recommendation=issue_recommendation(issue, analysis),
        fix=fix,
        rules=issue.rules,
        count=len(issue.findings),
    )


def _view(evaluation: Evaluation, analysis: Analysis, finding: Finding) -> FindingView:
    dockerfile = dockerfile_uri(analysis)
    if dockerfile and finding.dockerfile_line:
        location = f"{dockerfile}:{finding.dockerfile_line}"
    else:
        location = finding.path or (finding.vulnerability.package_path if finding.vulnerability else "")
    score = security_score(finding)
    exception = None
    if finding.allowlisted is not None:
        match = finding.allowlisted
        exception = {
            "id": f"{match.allowlist_id}/{match.item_id}",
            "name": match.allowlist_name,
            "reason": match.reason,
            "approved_by": match.approved_by,
            "expires_on": match.expires_on,
        }
    expired = expired_for(evaluation, finding)
    return FindingView(
        action=finding.effective_action.upper(),
        declared_action=finding.action.upper(),
        gate=finding.gate,
        trigger=finding.trigger,
        rule_id=finding.rule_id,
        title=finding_title(finding),
        text=finding_text(analysis, finding),
        location=location,
        severity=severity_of(finding) if finding.vulnerability else "",
        score=f"{score:.1f}" if score is not None else "",
        fixed=", ".join(finding.vulnerability.fixed_versions) if finding.vulnerability else "",
        controls=finding.controls,
        origin=display_origin(finding, analysis),
        exception=exception,
        expired_on=expired.expires_on if expired is not None and finding.allowlisted is None else "",
        recommendation=recommendation(finding, analysis),
        fix=_fix_view(finding, analysis),
        rules=(finding.rule_id,) if finding.rule_id else (),
    )


@dataclass(frozen=True)
class RequirementRow:
    """One line of the compliance report: a DoD guide section or CIS item and how the image fares."""

    framework: str
    """`DISA CIDG` or `CIS Docker` or `Policy` (rules without a guide reference)."""
    item: str
    """Section or item number (`2.2`), or `gate/trigger` for plain policy rules."""
    title: str
    """What the requirement asks, in a few words."""
    status: str
    """FAIL, WARN, EXCEPTION (every finding covered by an exception in force), NOT CHECKED (a rule behind it
    could not check anything, and nothing fired) or PASS (checked, nothing found)."""
    evidence: tuple[str, ...]
    """Redacted finding summaries, or what was checked when nothing was found."""
    controls: tuple[str, ...]
    """The other controls the rules cite (NIST 800-53, CCI)."""
    rules: tuple[str, ...]
    """Ids of the policy rules behind this requirement."""
    expired: tuple[str, ...]
    """Expired exceptions touching this requirement, as text."""
    recommendation: str = ""
    """How to fix it, for FAIL and WARN rows."""


def _requirement_keys(controls: Iterable[str]) -> list[tuple[str, str]]:
    keys = []
    for control in controls:
        match = _REQUIREMENT.match(control.strip())
        if match:
            framework = "DISA CIDG" if match.group(1).upper() == "DISA" else "CIS Docker"
            keys.append((framework, match.group(2)))
    return keys


def _requirements(evaluation: Evaluation, analysis: Analysis) -> list[RequirementRow]:
    unchecked = unchecked_rules(evaluation, analysis)
    in_force = [f for f in evaluation.findings if f.effective_action.upper() in ("STOP", "WARN")]
    cause = {id(finding): issue for issue in issues(in_force, analysis) for finding in issue.findings}
    by_rule: dict[str, list[Finding]] = {}
    for finding in evaluation.findings:
        by_rule.setdefault(finding.rule_id or f"{finding.gate}/{finding.trigger}", []).append(finding)
    rules = list(evaluation.rules)
    listed = {rule.rule_id for rule in rules}
    for rule_id, findings in by_rule.items():
        if rule_id not in listed:  # a backend that reports findings but not the rules it checked
            rules.append(rule_of(findings[0], rule_id, fired=len(findings)))
    groups: dict[tuple[str, str], list[RuleOutcome]] = {}
    for rule in rules:
        keys = _requirement_keys(rule.controls) or [("Policy", f"{rule.gate}/{rule.trigger}")]
        for key in keys:
            groups.setdefault(key, []).append(rule)

    rows = []
    for (framework, item), group in groups.items():
        findings = [f for rule in group for f in by_rule.get(rule.rule_id, [])]
        statuses = ["PASS"]
        evidence: list[str] = []
        for finding in worst_first(findings):
            action = finding.effective_action.upper()
            statuses.append({"STOP": "FAIL", "WARN": "WARN"}.get(action, "EXCEPTION"))
            if len(evidence) < 5:
                prefix = "exception in force" if finding.allowlisted else action
                evidence.append(f"{prefix}: {finding_title(finding)} — {finding_text(analysis, finding)}")
        if len(findings) > 5:
            evidence.append(f"… and {len(findings) - 5} more")
        if findings:  # the rules that fired are shown; one that could not check says so too
            evidence.extend(
                f"not checked {rule.gate}/{rule.trigger}: {unchecked[rule.rule_id]}"
                for rule in group
                if rule.rule_id in unchecked
            )
        if not findings:
            for rule in group:
                params = ", ".join(f"{k}={v}" for k, v in sorted(rule.params.items()))
                if rule.rule_id in unchecked:
                    statuses.append("NOT CHECKED")
                    evidence.append(f"not checked {rule.gate}/{rule.trigger}: {unchecked[rule.rule_id]}")
                    continue
                evidence.append(
                    f"checked {rule.gate}/{rule.trigger}"
                    + (f" ({params})" if params else "")
                    + ": nothing found"
                )
        status = min(statuses, key=_STATUS_ORDER.index)
        advice = ""
        if status in ("FAIL", "WARN"):
            firing = [f for f in worst_first(findings) if f.effective_action.upper() in ("STOP", "WARN")]
            issue = cause.get(id(firing[0])) if firing else None
            advice = issue_recommendation(issue, analysis) if issue is not None else ""
        controls = sorted({c for rule in group for c in rule.controls if not _requirement_keys([c])})
        expired = []
        for exception in evaluation.expired_exceptions:
            if any(exception.gate.lower() == rule.gate.lower() for rule in group) and any(
                expired_for(evaluation, f) is exception for f in findings
            ):
                expired.append(f"{exception.allowlist_id}/{exception.item_id} expired {exception.expires_on}")
        title = {"DISA CIDG": DISA_SECTIONS, "CIS Docker": CIS_ITEMS}.get(framework, {}).get(item, "")
        if not title:
            title = group[0].description or f"policy rule {group[0].gate}/{group[0].trigger}"
        rows.append(
            RequirementRow(
                framework,
                item,
                title,
                status,
                tuple(evidence),
                tuple(controls),
                tuple(sorted({rule.rule_id for rule in group})),
                tuple(expired),
                advice,
            )
        )
    framework_order = {"DISA CIDG": 0, "CIS Docker": 1, "Policy": 2}
    rows.sort(key=lambda row: (framework_order.get(row.framework, 3), _number_key(row.item)))
    return rows


def _number_key(item: str) -> tuple[Any, ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[./]", item))


def _distro_name(analysis: Analysis) -> str:
    """`Debian GNU/Linux 12 (bookworm)`: the pretty name, with the version only when it does not say it."""
    distro = analysis.distro
    if distro is None:
        return ""
    name = distro.pretty_name or distro.name or distro.id
    if distro.version_id and distro.version_id not in name:
        name = f"{name} {distro.version_id}"
    return name


def markdown_context(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    """Everything a markdown template may use; every text in it is already redacted."""
    ordered = [_view(evaluation, analysis, finding) for finding in worst_first(evaluation.findings)]
    in_force = [f for f in evaluation.findings if f.effective_action.upper() in ("STOP", "WARN")]
    merged = issues(in_force, analysis)
    fix_items, fix_by_issue = _fix_items(merged, analysis)
    issue_views = [_issue_view(evaluation, analysis, issue, fix_by_issue.get(issue.key)) for issue in merged]
    unchecked = unchecked_rules(evaluation, analysis)
    tally = counts(evaluation)
    final_action = evaluation.final_action.upper()
    return {
        "tool_version": __version__,
        "image": image_display_name(evaluation, analysis),
        "image_key": image_key(evaluation, analysis),
        "digest": evaluation.image_digest,
        "policy_id": evaluation.policy_id,
        "policy_name": evaluation.policy_name or evaluation.policy_id,
        "final_action": final_action,
        "final_action_reason": evaluation.final_action_reason,
        "icon": ICONS.get(final_action, ""),
        "icons": ICONS,
        "counts": tally,
        "findings": [view for view in ordered if view.action in ("STOP", "WARN")],
        "issues": issue_views,
        "issue_counts": {
            action: category_counts([i for i in merged if i.action == action]) for action in ("STOP", "WARN")
        },
        "stop_issues": sum(1 for issue in merged if issue.action == "STOP"),
        "warn_issues": sum(1 for issue in merged if issue.action == "WARN"),
        "fixes": fix_items,
        "unchecked": [
            {"rule_id": rule.rule_id, "gate": rule.gate, "trigger": rule.trigger, "reason": unchecked[rule.rule_id]}
            for rule in evaluation.rules
            if rule.rule_id in unchecked
        ],
        "unchecked_ids": sorted(unchecked),
        "rule_advice": {rule.rule_id: rule_advice(rule.gate, rule.trigger, rule.recommendation)
                        for rule in evaluation.rules},
        "guide_url": FIXING_GUIDE_URL,
        "allowlisted": [view for view in ordered if view.exception is not None],
        "expired": list(evaluation.expired_exceptions),
        "rules": list(evaluation.rules),
        "rules_checked": len(evaluation.rules),
        "rules_fired": sum(1 for rule in evaluation.rules if rule.fired),
        "requirements": _requirements(evaluation, analysis),
        "evaluated_at": evaluation.evaluated_at,
        "backend": evaluation.backend,
        "matched_mapping": evaluation.matched_mapping or "",
        "warnings": list(evaluation.warnings),
        "dockerfile": dockerfile_uri(analysis) or "",
        "distro": _distro_name(analysis),
        "stig_results": _stig_summaries(evaluation, analysis),
    }


def _stig_summaries(evaluation: Evaluation, analysis: Analysis) -> list[Any]:
    from ci_gate.stig.report import summaries

    return list(summaries(evaluation, analysis))
