"""SARIF 2.1.0 that GitHub code scanning accepts (https://docs.github.com/en/code-security/
code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning).

- One run per image, with its own category (`automationDetails.id` = `ci-gate/<image>/`), so the
  uploads for two images never close each other's alerts.
- A rule per policy rule (every evaluated rule, so the driver lists what was checked) and one per
  vulnerability id, each with help text and the rule's controls as tags; rules are unique by id.
- Every result has a location: the Dockerfile line when the finding maps to an instruction of the
  Dockerfile the user gave, otherwise a stable path `image/<repository>/<path in image>` that never
  contains a tag or digest. `partialFingerprints.primaryLocationLineHash` is our own stable hash.
- `security-severity` is a numeric *string* (CVSS score, else a score for the severity).
- Results are capped worst first (GitHub keeps 5,000 per run); the run says so when it cut.
- Allowlisted findings are kept with an accepted external suppression carrying the reason.
"""

from __future__ import annotations

from typing import Any

from ci_gate import __version__
from ci_gate.model import Analysis, Evaluation, Finding, RuleOutcome
from ci_gate.reports.advice import recommendation
from ci_gate.reports.advice_table import rule_advice
from ci_gate.reports.common import (
    TOOL_NAME,
    counts,
    dockerfile_uri,
    expired_for,
    finding_fingerprint,
    finding_text,
    finding_title,
    image_display_name,
    image_path_uri,
    image_slug,
    is_secret,
    rule_of,
    security_score,
    severity_of,
    truncate,
    worst_first,
)
from ci_gate.reports.dockerfile_fixes import dockerfile_fix
from ci_gate.reports.unchecked import unchecked_rules

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_RESULTS = 5_000
"""GitHub stores only the top 5,000 results of a run (and rejects more than 25,000)."""
MAX_RULES = 25_000
MAX_TAGS = 10
"""GitHub shows 10 tags per rule (rejects more than 20)."""
MAX_DESCRIPTION = 1_024
"""GitHub's limit for short and full descriptions."""
MAX_MESSAGE = 2_000


def render_sarif(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    """The SARIF log (a JSON-ready dict) with one run for this image."""
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [_run(evaluation, analysis)]}


def sarif_category(evaluation: Evaluation, analysis: Analysis) -> str:
    """The code-scanning category of this image's run (what `automationDetails.id` declares)."""
    return f"{TOOL_NAME}/{image_slug(evaluation, analysis)}"


def _run(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    ordered = worst_first(evaluation.findings)
    kept = ordered[:MAX_RESULTS]
    rules: dict[str, dict[str, Any]] = {}
    policy_rule_ids = _policy_rule_ids(evaluation.rules)
    unchecked = unchecked_rules(evaluation, analysis)
    for rule in evaluation.rules:
        rule_id = policy_rule_ids[_rule_key(rule.gate, rule.trigger, rule.rule_id)]
        rules.setdefault(rule_id, _policy_rule(rule_id, rule, unchecked.get(rule.rule_id, "")))
    results = []
    for finding in kept:
        rule_id = _result_rule_id(finding, policy_rule_ids)
        if rule_id not in rules:
            rules[rule_id] = _rule_for_finding(rule_id, finding, evaluation, analysis)
        else:
            _raise_rule_severity(rules[rule_id], finding)
        results.append(_result(evaluation, analysis, finding, rule_id))
    rule_list = list(rules.values())[:MAX_RULES]
    index = {rule["id"]: position for position, rule in enumerate(rule_list)}
    for result in results:
        if result["ruleId"] in index:
            result["ruleIndex"] = index[result["ruleId"]]

    tally = counts(evaluation)
    image = image_display_name(evaluation, analysis)
    notifications: list[dict[str, Any]] = [
        {
            "level": "warning",
            "message": {"text": f"rule {rule.rule_id} ({rule.gate}/{rule.trigger}) was NOT checked, which is not a "
                        f"pass: {unchecked[rule.rule_id]}"},
            "descriptor": {"id": policy_rule_ids[_rule_key(rule.gate, rule.trigger, rule.rule_id)]},
        }
        for rule in evaluation.rules
        if rule.rule_id in unchecked
    ]
    if len(ordered) > len(kept):
        notifications.append(
            {
                "level": "warning",
                "message": {
                    "text": f"{len(ordered)} findings; only the worst {len(kept)} are in this SARIF run "
                    "(GitHub keeps at most 5,000 per run). See the JSON report for all of them."
                },
            }
        )
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "fullName": f"{TOOL_NAME} container image policy gate",
                "semanticVersion": __version__,
                "rules": rule_list,
            }
        },
        "automationDetails": {"id": sarif_category(evaluation, analysis) + "/"},
        "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notifications}],
        "columnKind": "utf16CodeUnits",
        "results": results,
        "properties": {
            "image": image,
            "imageDigest": evaluation.image_digest,
            "policyId": evaluation.policy_id,
            "policyName": evaluation.policy_name,
            "finalAction": evaluation.final_action,
            "finalActionReason": evaluation.final_action_reason,
            "findings": tally.total,
            "stop": tally.stop,
            "warn": tally.warn,
            "allowlisted": tally.allowlisted,
            "expiredExceptions": tally.expired,
            "resultsCapped": len(ordered) > len(kept),
            "resultsOmitted": len(ordered) - len(kept),
            "rulesNotChecked": sorted(unchecked),
        },
    }
    from ci_gate.stig.report import sarif_run_properties

    stig = sarif_run_properties(evaluation, analysis)
    if stig:
        run["properties"]["stig"] = stig
    return run


def _rule_key(gate: str, trigger: str, rule_id: str) -> tuple[str, str, str]:
    return (gate, trigger, rule_id)


def _policy_rule_ids(rules: tuple[RuleOutcome, ...]) -> dict[tuple[str, str, str], str]:
    """SARIF rule ids for policy rules: `gate.trigger`, plus `.rule-id` when several rules share it."""
    per_trigger: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        per_trigger.setdefault((rule.gate, rule.trigger), set()).add(rule.rule_id)
    ids = {}
    for rule in rules:
        base = f"{rule.gate}.{rule.trigger}"
        shared = len(per_trigger[(rule.gate, rule.trigger)]) > 1
        ids[_rule_key(rule.gate, rule.trigger, rule.rule_id)] = f"{base}.{rule.rule_id}" if shared else base
    return ids


def _result_rule_id(finding: Finding, policy_rule_ids: dict[tuple[str, str, str], str]) -> str:
    if finding.vulnerability is not None:
        return finding.vulnerability.id
    key = _rule_key(finding.gate, finding.trigger, finding.rule_id)
    if key in policy_rule_ids:
        return policy_rule_ids[key]
    return f"{finding.gate}.{finding.trigger}"


def _tags(*groups: tuple[str, ...] | list[str]) -> list[str]:
    tags: list[str] = []
    for group in groups:
        for tag in group:
            if tag and tag not in tags:
                tags.append(tag)
    return tags[:MAX_TAGS]


def _level(action: str) -> str:
    return {"STOP": "error", "WARN": "warning"}.get(action.upper(), "note")


def _policy_rule(rule_id: str, rule: RuleOutcome, not_checked: str = "") -> dict[str, Any]:
    params = ", ".join(f"{key}={value}" for key, value in sorted(rule.params.items()))
    summary = rule.description or f"Policy rule {rule.gate}/{rule.trigger}" + (
        f" ({params})" if params else ""
    )
    help_lines = [
        f"Policy rule `{rule.rule_id or '-'}` checks gate `{rule.gate}`, trigger `{rule.trigger}` "
        f"and gives **{rule.action}** when it fires.",
    ]
    if params:
        help_lines.append(f"Parameters: {params}.")
    if rule.controls:
        help_lines.append("Controls: " + ", ".join(rule.controls) + ".")
    if not_checked:
        help_lines.append(f"**Not checked in this run** (not a pass): {not_checked}.")
    help_lines.append("**How to fix:** " + rule_advice(rule.gate, rule.trigger, rule.recommendation))
    help_lines.append(
        "If the finding is accepted instead, add an allowlist item with a reason, an approver and an expiry "
        "date."
    )
    help_markdown = "\n\n".join(help_lines)
    return {
        "id": rule_id,
        "name": _camel(f"{rule.gate} {rule.trigger}"),
        "shortDescription": {"text": truncate(f"{rule.gate}/{rule.trigger}: {summary}", MAX_DESCRIPTION)},
        "fullDescription": {
            "text": truncate(
                summary + (f" Controls: {', '.join(rule.controls)}." if rule.controls else ""),
                MAX_DESCRIPTION,
            )
        },
        "help": {"text": help_markdown.replace("`", "").replace("**", ""), "markdown": help_markdown},
        "defaultConfiguration": {"level": _level(rule.action)},
        "properties": {
            "tags": _tags(["container-image", "policy", rule.gate], list(rule.controls)),
            "precision": "very-high",
            "controls": list(rule.controls),
        },
    }


def _rule_for_finding(rule_id: str, finding: Finding, evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    vulnerability = finding.vulnerability
    if vulnerability is None:
        # A finding of a rule the evaluation did not list (e.g. from a remote backend).
        return _policy_rule(rule_id, rule_of(finding, finding.rule_id))
    severity = severity_of(finding)
    score = security_score(finding) or 0.0
    summary = vulnerability.summary or f"{vulnerability.id} ({severity})"
    fixed = ", ".join(vulnerability.fixed_versions)
    help_markdown = (
        f"**{vulnerability.id}** | {severity} | "
        f"`{vulnerability.package_name}` {vulnerability.package_version}"
        + (f" → fixed in {fixed}" if fixed else " → no fix available yet")
        + "\n\n"
        + (f"{vulnerability.summary}\n\n" if vulnerability.summary else "")
        + "**How to fix:** "
        + recommendation(finding, analysis)
        + (f"\n\n{vulnerability.url}" if vulnerability.url else "")
    )
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": "ContainerImageVulnerability",
        "shortDescription": {"text": truncate(f"{vulnerability.id}: {summary}", MAX_DESCRIPTION)},
        "fullDescription": {
            "text": truncate(
                vulnerability.summary or f"{vulnerability.id} affects a package in the image.",
                MAX_DESCRIPTION,
            )
        },
        "help": {"text": help_markdown.replace("**", "").replace("`", ""), "markdown": help_markdown},
        "defaultConfiguration": {"level": _level(finding.action)},
        "properties": {
            "tags": _tags(["security", "vulnerability", "container-image", severity], list(finding.controls)),
            "precision": "very-high",
            "security-severity": f"{max(score, 0.1):.1f}",
        },
    }
    if vulnerability.url.startswith(("http://", "https://")):
        rule["helpUri"] = vulnerability.url
    return rule


def _raise_rule_severity(rule: dict[str, Any], finding: Finding) -> None:
    """A vulnerability rule shared by several packages carries the highest score among them."""
    score = security_score(finding)
    properties = rule.get("properties", {})
    if score is None or "security-severity" not in properties:
        return
    if score > float(properties["security-severity"]):
        properties["security-severity"] = f"{score:.1f}"


def _result(evaluation: Evaluation, analysis: Analysis, finding: Finding, rule_id: str) -> dict[str, Any]:
    image = image_display_name(evaluation, analysis)
    text = finding_text(analysis, finding)
    message = f"{finding.effective_action}: {text} (image {image}"
    if finding.vulnerability is not None and finding.vulnerability.fixed_versions:
        message += f"; fixed in {', '.join(finding.vulnerability.fixed_versions)}"
    message += f"). How to fix: {recommendation(finding, analysis)}"
    expired = expired_for(evaluation, finding)
    if expired is not None and not finding.allowlisted:
        message += f" The exception for this expired on {expired.expires_on}."
    fingerprint = finding_fingerprint(evaluation, analysis, finding)
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "level": _level(finding.effective_action if not finding.allowlisted else finding.action),
        "message": {"text": truncate(message, MAX_MESSAGE)},
        "locations": [_location(evaluation, analysis, finding)],
        "partialFingerprints": {"primaryLocationLineHash": f"{fingerprint[:32]}:1"},
        "properties": {
            "gate": finding.gate,
            "trigger": finding.trigger,
            "triggerId": "(redacted)" if is_secret(finding) else finding.trigger_id,
            "policyRuleId": finding.rule_id,
            "action": finding.action,
            "effectiveAction": finding.effective_action,
            "title": finding_title(finding),
            "controls": list(finding.controls),
        },
    }
    result["properties"]["recommendation"] = recommendation(finding, analysis)
    if finding.gate == "stig":
        from ci_gate.stig.report import sarif_result_properties

        result["properties"].update(sarif_result_properties(finding, analysis))
    if finding.origin:
        result["properties"]["origin"] = finding.origin
    fixes = _fixes(analysis, finding)
    if fixes:
        result["fixes"] = fixes
    if finding.allowlisted is not None:
        match = finding.allowlisted
        justification = (
            f"allowlisted by {match.allowlist_id}/{match.item_id}: {match.reason or 'no reason given'}"
        )
        if match.approved_by:
            justification += f"; approved by {match.approved_by}"
        if match.expires_on:
            justification += f"; expires {match.expires_on}"
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": truncate(justification, MAX_MESSAGE)}
        ]
    return result


def _fixes(analysis: Analysis, finding: Finding) -> list[dict[str, Any]]:
    """A SARIF fix for an exact Dockerfile change (the lines replaced by the suggested text)."""
    fix = dockerfile_fix(finding, analysis, dockerfile_uri(analysis))
    if fix is None or not fix.exact:
        return []
    return [
        {
            "description": {"text": truncate(recommendation(finding, analysis), MAX_MESSAGE)},
            "artifactChanges": [
                {
                    "artifactLocation": {"uri": fix.path},
                    "replacements": [
                        {
                            # A region of whole lines (SARIF §3.30.5: their text, without the last newline).
                            "deletedRegion": {"startLine": fix.start_line, "endLine": fix.end_line},
                            "insertedContent": {"text": fix.replacement},
                        }
                    ],
                }
            ],
        }
    ]


def _location(evaluation: Evaluation, analysis: Analysis, finding: Finding) -> dict[str, Any]:
    dockerfile = dockerfile_uri(analysis)
    if dockerfile and finding.dockerfile_line and finding.dockerfile_line >= 1:
        line = finding.dockerfile_line
        end_line = line
        for instruction in analysis.dockerfile.instructions:
            if instruction.line == line and instruction.end_line >= line:
                end_line = instruction.end_line
        return {
            "physicalLocation": {
                "artifactLocation": {"uri": dockerfile},
                "region": {"startLine": line, "endLine": end_line},
            },
            "message": {"text": f"Dockerfile instruction behind {finding.gate}/{finding.trigger}"},
        }
    in_image = finding.path
    if not in_image and finding.vulnerability is not None:
        in_image = finding.vulnerability.package_path
    uri = image_path_uri(evaluation, analysis, in_image or finding.gate)
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": 1}},
        "logicalLocations": [
            {
                "fullyQualifiedName": truncate(
                    f"{image_display_name(evaluation, analysis)}:{in_image or '/'}", 500
                ),
                "kind": "module",
            }
        ],
    }
    if finding.layer_index is not None:
        location["message"] = {
            "text": f"in image layer {finding.layer_index}"
            + (f" ({finding.origin} layer)" if finding.origin else "")
        }
    return location


def _camel(text: str) -> str:
    words = [word for word in "".join(ch if ch.isalnum() else " " for ch in text).split() if word]
    return "".join(word[:1].upper() + word[1:] for word in words)[:255] or "PolicyRule"
